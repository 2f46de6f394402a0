"""Connections to the mail servers, and what their failures mean for people.

`Connector` opens IMAP (implicit TLS or STARTTLS) and SMTP connections for one account, always
with a socket timeout and a verified certificate (`ca_file` adds a CA to trust), and turns every
library exception into the console's typed errors with one sentence: AuthError for a refused
login or an untrusted certificate, TransientError for what a retry may fix, PermanentError for a
message the SMTP server refused. Neither the password nor a server response containing it ever
reaches an exception or a log.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from typing import Callable

from console.channels.email.settings import EmailSettings
from console.config import ConfigError
from console.model import AuthError, ChannelError, PermanentError, TransientError


class Connector:
    def __init__(self, account: str, settings: EmailSettings):
        self.account = account
        self.settings = settings
        self.idle_ok = False  # the IMAP server offers IDLE (known after the first login)

    def context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.settings.ca_file)
        except (OSError, ssl.SSLError):
            raise ChannelError(f"{self.account}: cannot read ca_file {self.settings.ca_file}; give a PEM certificate") from None

    def password(self) -> str:
        return self.settings.password.get()

    def imap(self):
        """A logged-in `imapclient.IMAPClient`."""
        from imapclient import IMAPClient

        s = self.settings
        with self.errors("IMAP"):
            if s.imap_security == "tls":
                conn = IMAPClient(s.imap_host, s.imap_port, ssl=True, ssl_context=self.context(), timeout=s.timeout)
            else:
                conn = IMAPClient(s.imap_host, s.imap_port, ssl=False, timeout=s.timeout)
                conn.starttls(self.context())
            try:
                conn.normalise_times = False
                conn.login(s.username, self.password())
                caps = conn.capabilities()
            except BaseException:
                quietly(conn.shutdown)
                raise
        self.idle_ok = b"IDLE" in caps
        return conn

    def smtp(self) -> smtplib.SMTP:
        """A logged-in SMTP client (the caller quits it); call inside `errors("SMTP")`."""
        s = self.settings
        if s.smtp_security == "tls":
            client = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, context=self.context(), timeout=s.timeout)
        else:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout)
        try:
            client.ehlo()
            if s.smtp_security == "starttls":
                client.starttls(context=self.context())
                client.ehlo()
            client.login(s.smtp_username, self.password())
        except BaseException:
            close_smtp(client)
            raise
        return client

    def errors(self, what: str) -> "_ErrorMap":
        """A context that re-raises any library exception as the console's error ("IMAP" or "SMTP")."""
        return _ErrorMap(self, what)

    def translate(self, exc: Exception, what: str) -> ChannelError:
        from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

        s = self.settings
        host, port = (s.imap_host, s.imap_port) if what == "IMAP" else (s.smtp_host, s.smtp_port)
        key = s.password.key
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = getattr(exc, "verify_message", "") or "verification failed"
            hint = (f"the CA in ca_file ({s.ca_file}) did not sign it" if s.ca_file
                    else "if this server uses its own CA, set ca_file to that CA's certificate")
            return AuthError(f"{self.account}: the {what} server {host}:{port} presented a certificate that is not "
                             f"trusted ({reason}); {hint}")
        if isinstance(exc, (LoginError, smtplib.SMTPAuthenticationError)):
            return AuthError(f"{self.account}: the {what} server refused the username or password; check {key}")
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return AuthError(f"{self.account}: the SMTP server does not offer login on {host}:{port}; "
                             "check smtp_port and smtp_security")
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return TransientError(f"{self.account}: the {what} server {host}:{port} did not answer in "
                                  f"{s.timeout:.0f}s")
        if isinstance(exc, ssl.SSLError):
            return TransientError(f"{self.account}: TLS with {host}:{port} failed ({exc.reason or 'ssl error'}); "
                                  f"check {what.lower()}_security and the port")
        if isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            if 500 <= code < 600:
                return PermanentError(f"{self.account}: the SMTP server refused the message ({code})", str(code))
            return TransientError(f"{self.account}: the SMTP server is busy ({code}); will retry")
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return PermanentError(f"{self.account}: the SMTP server refused the recipient")
        if isinstance(exc, (smtplib.SMTPException, IMAPClientAbortError, OSError, EOFError)):
            detail = type(exc).__name__ if not isinstance(exc, OSError) else (exc.strerror or type(exc).__name__)
            return TransientError(f"{self.account}: lost the connection to {host}:{port} ({detail})")
        if isinstance(exc, IMAPClientError):
            return TransientError(f"{self.account}: the IMAP server said: {self.server_text(exc)}")
        return ChannelError(f"{self.account}: {what} failed ({type(exc).__name__})")

    def server_text(self, exc: Exception) -> str:
        """A server's error text, short, printable, and never containing the password."""
        text = exc.args[0] if exc.args else ""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        text = re.sub(r"[^\x20-\x7e]+", " ", str(text))[:200]
        try:
            secret = self.settings.password.get() if self.settings.password.source != "cmd" else ""
        except Exception:
            secret = ""
        if secret and secret in text:
            text = text.replace(secret, "***")
        return text


class _ErrorMap:
    def __init__(self, connector: Connector, what: str):
        self.connector, self.what = connector, what

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, (ChannelError, ConfigError)):
            return False
        raise self.connector.translate(exc, self.what) from None


def quietly(action: Callable[[], object]) -> None:
    """Run a clean-up step whose failure changes nothing (closing a broken connection)."""
    try:
        action()
    except Exception:
        pass


def close_imap(conn) -> None:
    if conn is not None:
        quietly(conn.logout)
        quietly(conn.shutdown)


def close_smtp(client: smtplib.SMTP) -> None:
    quietly(client.quit)
    quietly(client.close)
