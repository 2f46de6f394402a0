"""A real terminal for the real program: `console` in a pseudo-terminal, read through pyte.

The installed `console` command runs as its own process on a pty of a fixed size; what it writes
goes through a terminal emulator (pyte), so a test reads the screen a person would see, line by
line, and types keys as a person would (bytes on the pty: `\\x13` for ctrl+s, `\\x1b[A` for up).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import threading
import time
from pathlib import Path

import pyte

KEYS = {
    "enter": "\r", "tab": "\t", "escape": "\x1b", "space": " ", "backspace": "\x7f",
    "up": "\x1b[A", "down": "\x1b[B", "right": "\x1b[C", "left": "\x1b[D",
    "home": "\x1b[H", "end": "\x1b[F", "pageup": "\x1b[5~", "pagedown": "\x1b[6~", "delete": "\x1b[3~",
    "question_mark": "?", "slash": "/", "number_sign": "#", "left_square_bracket": "[",
    "right_square_bracket": "]",
}


def key_bytes(key: str) -> bytes:
    """What a terminal sends for a key named as Textual names it."""
    if key in KEYS:
        return KEYS[key].encode()
    if key.startswith("ctrl+") and len(key) == 6 and key[5].isalpha():
        return bytes([ord(key[5].lower()) - 96])
    if len(key) == 1:
        return key.encode()
    raise ValueError(f"no bytes known for the key {key!r}")


class Terminal:
    """One program on a pty of `cols` x `rows`, its screen kept by pyte as it writes."""

    def __init__(self, argv: list[str], env: dict[str, str], cols: int = 80, rows: int = 24,
                 cwd: Path | None = None):
        self.cols, self.rows = cols, rows
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self._lock = threading.Lock()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the program, with the pty as its terminal
            try:
                if cwd:
                    os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.status: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not ready:
                if not self.alive():
                    return
                continue
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.raw.extend(data)
                self.stream.feed(data)

    # ---- what is on screen ----------------------------------------------------------------------
    def lines(self) -> list[str]:
        with self._lock:
            return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.lines())

    def after_exit(self) -> str:
        """What the program printed once it left the full screen (its last words), as plain text."""
        raw = bytes(self.raw)
        cut = raw.rfind(b"\x1b[?1049l")
        tail = raw[cut + 8:] if cut >= 0 else raw
        return re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-B]|\x1b[=>]", "",
                      tail.decode("utf-8", "replace")).strip()

    def flowing(self) -> str:
        """The screen with pane borders dropped and lines joined: to find a phrase that wraps."""
        return " ".join(self.text().translate({ord(c): " " for c in "▕▌▏│▔▁"}).split())

    def wait_for(self, what, timeout: float = 15.0, every: float = 0.05) -> bool:
        """Wait until `what` (a string on screen, or a predicate of the screen text) holds."""
        check = (lambda text: what in text) if isinstance(what, str) else what
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if check(self.text()) or (isinstance(what, str) and what in self.flowing()):
                return True
            if not self.alive():
                return False
            time.sleep(every)
        return False

    def settle(self, quiet: float = 0.3, timeout: float = 5.0) -> None:
        """Wait until nothing has been written for `quiet` seconds."""
        end = time.monotonic() + timeout
        last = len(self.raw)
        still_since = time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.05)
            now = len(self.raw)
            if now != last:
                last, still_since = now, time.monotonic()
            elif time.monotonic() - still_since >= quiet:
                return

    # ---- typing ---------------------------------------------------------------------------------
    def press(self, *keys: str, pause: float = 0.08) -> None:
        for key in keys:
            os.write(self.fd, key_bytes(key))
            # A lone ESC must not run into the next key (it would read as alt+key).
            time.sleep(max(pause, 0.25) if key == "escape" else pause)

    def type(self, text: str, pause: float = 0.01) -> None:
        for char in text:
            os.write(self.fd, char.encode())
            time.sleep(pause)

    # ---- the process ----------------------------------------------------------------------------
    def alive(self) -> bool:
        if self.status is not None:
            return False
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.status = -1
            return False
        if pid == 0:
            return True
        self.status = os.waitstatus_to_exitcode(status)
        return False

    def wait_exit(self, timeout: float = 10.0) -> int | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive():
                return self.status
            time.sleep(0.05)
        return None

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def hang_up(self) -> None:
        """The terminal goes away (an SSH session drops, a window is closed): the master side
        closes, and the kernel sends SIGHUP to the program, whose terminal now fails with EIO."""
        fd, self.fd = self.fd, -1
        os.close(fd)

    def close(self) -> None:
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait_exit(5)
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass


TRACEBACK = re.compile(r"Traceback|Error: |\bexception\b", re.IGNORECASE)
