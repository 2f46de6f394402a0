"""A throw-away Dovecot IMAP server and a capturing SMTP server, both with real TLS.

`Dovecot` runs `/usr/sbin/dovecot -F` with its own base_dir, a Maildir and a passwd-file with one
user, on 127.0.0.1 free ports: implicit TLS (`port`) and STARTTLS (`starttls_port`). Its
certificate is self-signed, made by `openssl` into the temporary directory, so a test can show
that an untrusted certificate is refused and that `ca_file` makes it trusted.

`SmtpServer` is aiosmtpd in a thread with AUTH PLAIN/LOGIN, implicit TLS or STARTTLS, and keeps
every accepted message (`messages`, raw bytes). It can be told to drop the connection right
after accepting a message (`crash_after_accept`), the moment a client cannot know the outcome.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

DOVECOT_SEARCH = ("/usr/sbin/dovecot",)
USER = "shop@acme.test"
PASSWORD = "s3cret-Pa55word"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dovecot_binary() -> str:
    """The dovecot executable, or skip (fail under CI) with the install command."""
    from conftest import need_binary

    return need_binary("dovecot", "sudo apt-get install dovecot-imapd", search=DOVECOT_SEARCH)


def make_certificate(folder: Path, name: str = "server") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost: (cert.pem, key.pem)."""
    from conftest import need_binary

    openssl = need_binary("openssl", "sudo apt-get install openssl")
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class Dovecot:
    def __init__(self, root: Path, binary: str = DOVECOT_SEARCH[0], user: str = USER, password: str = PASSWORD):
        self.root = Path(root)
        self.owns_root = False
        if os.getuid() == 0:
            # As root the mail processes run as `nobody` and must traverse every parent of the
            # Maildir. pytest resets /tmp/pytest-of-root to 0700 whenever any session starts (other
            # runs in parallel included), so keep the whole server in its own traversable directory.
            self.root = Path(tempfile.mkdtemp(prefix="console-dovecot-"))
            self.root.chmod(0o711)
            self.owns_root = True
        self.binary = binary
        self.user, self.password = user, password
        self.port = free_port()
        self.starttls_port = free_port()
        self.home = self.root / "home"
        self.maildir = self.home / "Maildir"
        self.cert, self.key = make_certificate(self.root / "tls")
        self.proc: subprocess.Popen | None = None
        self._write_config()

    # ---- setup ----------------------------------------------------------------------------------
    def _write_config(self) -> None:
        for sub in ("run", "state", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for folder in ("", ".Sent"):
            for leaf in ("cur", "new", "tmp"):
                (self.maildir / folder / leaf).mkdir(parents=True, exist_ok=True)
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:
            # Dovecot never gives mail access to UID 0: as root, the mailbox belongs to `nobody`,
            # and the (private, 0700) temporary directories above it become traversable.
            uid = gid = 65534
            for path in [self.home, *self.home.rglob("*")]:
                os.chown(path, uid, gid)
        self.uid, self.gid = uid, gid
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}:{uid}:{gid}::{self.home}\n")
        # Auth and mail processes run as the current user, so temporary directories need no
        # sharing. As root, imap-login must still drop to Dovecot's unprivileged login user.
        me = __import__("getpass").getuser()
        login = "dovenull" if os.getuid() == 0 else me
        users = f"default_login_user = {login}\ndefault_internal_user = {me}\n"
        (self.root / "dovecot.conf").write_text(f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/log/dovecot.log
instance_name = console-test-{self.port}
protocols = imap
listen = 127.0.0.1
{users}first_valid_uid = 0
first_valid_gid = 0
ssl = required
ssl_cert = <{self.cert}
ssl_key = <{self.key}
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{self.maildir}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.starttls_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
service auth {{
  user = $default_internal_user
}}
service auth-worker {{
  user = $default_internal_user
}}
service anvil {{
  chroot =
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
protocol imap {{
  imap_idle_notify_interval = 1 mins
}}
""")

    # ---- life cycle -----------------------------------------------------------------------------
    def start(self) -> "Dovecot":
        self.proc = subprocess.Popen([self.binary, "-F", "-c", str(self.root / "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_port(self.port)
            _wait_port(self.starttls_port)
        except RuntimeError:
            self.stop()
            raise RuntimeError("dovecot did not start:\n" + self.log())
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        # Children (imap, imap-login) die with the master; wait until the port is free again.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.05)
            except OSError:
                break

    def terminate(self) -> subprocess.Popen | None:
        """Ask Dovecot to stop without waiting (it takes about a second); returns the process to
        wait for before `remove()`."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
        return proc

    def remove(self) -> None:
        """Delete the server's directory if it made its own (as root); call once it has stopped."""
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.root / "log" / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---- mailbox --------------------------------------------------------------------------------
    def folder_path(self, folder: str = "INBOX") -> Path:
        return self.maildir if folder == "INBOX" else self.maildir / ("." + folder.replace("/", "."))

    def deliver(self, raw: bytes, folder: str = "INBOX", seen: bool = False) -> Path:
        """Put one message into the Maildir as a local delivery agent would (tmp/ then new/)."""
        base = self.folder_path(folder)
        for leaf in ("cur", "new", "tmp"):
            (base / leaf).mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}.P{os.getpid()}Q{threading.get_ident() % 100000}.console-test"
        tmp = base / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, self.uid, self.gid)
        final = base / ("cur" if seen else "new") / (name + (":2,S" if seen else ""))
        os.rename(tmp, final)
        return final

    def set_uidvalidity(self, folder: str, value: int) -> None:
        """Make the server announce a new UIDVALIDITY (and renumber UIDs), as after a mailbox
        was recreated or restored from a backup. Dovecot must be stopped."""
        base = self.folder_path(folder)
        for name in ("dovecot.index", "dovecot.index.cache", "dovecot.index.log",
                     "dovecot.index.log.2", "dovecot-uidvalidity"):
            (base / name).unlink(missing_ok=True)
        for stale in base.glob("dovecot-uidvalidity.*"):
            stale.unlink()
        for leaf in ("cur", "new"):
            for path in (base / leaf).iterdir():
                os.rename(path, base / "new" / path.name.split(":", 1)[0])
        for stale in self.maildir.glob("dovecot.list.index*"):
            stale.unlink()
        # Dovecot takes a new mailbox's UIDVALIDITY from the clock (one-second steps, so a quick
        # test could see the old value again); an empty UID list with a `V` header sets it exactly,
        # and every message gets a new UID from 1.
        uidlist = base / "dovecot-uidlist"
        uidlist.write_text(f"3 V{value} N1\n")
        os.chown(uidlist, self.uid, self.gid)

    def remove_all(self, folder: str = "INBOX") -> None:
        base = self.folder_path(folder)
        for leaf in ("cur", "new"):
            for path in (base / leaf).iterdir():
                path.unlink()


class SmtpServer:
    """aiosmtpd with TLS and AUTH, capturing every accepted message."""

    def __init__(self, root: Path, mode: str = "tls", user: str = USER, password: str = PASSWORD):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.mode = mode
        self.cert, self.key = make_certificate(Path(root) / "smtp-tls", "smtp")
        self.messages: list[dict] = []
        self.crash_after_accept = False
        self.port = free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                        "data": envelope.original_content or envelope.content})
                if server.crash_after_accept:
                    # The message is accepted and kept; the client never hears about it.
                    smtp.transport.abort()
                    return "250 never seen"
                return "250 Message accepted for delivery"

        def authenticator(smtp, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password
            # handled=False: aiosmtpd then answers 535 itself (with the default it says nothing at all).
            return AuthResult(success=ok, handled=False)

        # aiosmtpd only counts STARTTLS as TLS for AUTH; with implicit TLS every byte is encrypted anyway.
        kwargs = dict(hostname="127.0.0.1", port=self.port, authenticator=authenticator,
                      auth_require_tls=mode != "tls",
                      server_hostname="localhost", ready_timeout=10)
        if mode == "tls":
            kwargs["ssl_context"] = context
        else:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
        self.controller = Controller(Handler(), **kwargs)

    def start(self) -> "SmtpServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
