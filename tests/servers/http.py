"""The HTTP plumbing of the local fakes: a threaded HTTP/1.1 server on a free port of 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


def serve(handle: Callable[[BaseHTTPRequestHandler, str], None]) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; every GET, POST and DELETE goes to `handle(request, method)`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body in one segment: no Nagle / delayed-ACK stall per call

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            handle(self, "GET")

        def do_POST(self) -> None:
            handle(self, "POST")

        def do_DELETE(self) -> None:
            handle(self, "DELETE")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # the OS picks a free port
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def url(server: ThreadingHTTPServer | None) -> str:
    """The base URL a client library is pointed at."""
    assert server is not None, "the fake is not started"
    return f"http://127.0.0.1:{server.server_address[1]}"


def stop(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


_NOT_LISTENING: list[socket.socket] = []


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing answers: its port stays bound by this process but never
    listens, so every connection is refused at once (and no other test can take the port)."""
    if not _NOT_LISTENING:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        _NOT_LISTENING.append(sock)
    return f"http://127.0.0.1:{_NOT_LISTENING[0].getsockname()[1]}"
