"""An email account's settings: the TOML keys of a `kind = "email"` account, checked and typed.

Every value that ends up in a header or a protocol command (host names, the login, the From
address and name, the Sent folder) is refused when it spans more than one line, so nothing read
from the config file can inject a header or an IMAP command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.headerregistry import Address as HeaderAddress
from pathlib import Path

from console.config import AccountConfig, Secret

UNSAFE_HEADER = re.compile(r"[\r\n\x00]")


@dataclass
class EmailSettings:
    imap_host: str
    imap_port: int
    imap_security: str
    username: str
    password: Secret
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_username: str
    from_address: str
    from_name: str = ""
    signature: str = ""
    folders: list[str] = field(default_factory=lambda: ["INBOX"])
    sent_folder: str = "Sent"
    ca_file: str | None = None
    poll_interval: float = 60.0
    idle_timeout: float = 25 * 60.0
    timeout: float = 30.0
    batch_size: int = 500
    parse_workers: int = -1  # -1: one per core beyond the first, at most 2

    def watched_names(self) -> list[str]:
        """The folders a pull reads: the configured ones, then the Sent folder."""
        return list(dict.fromkeys([*self.folders, self.sent_folder]))


def read_settings(account: AccountConfig) -> EmailSettings:
    """The settings of one configured account; raises the account's ConfigError for a bad key."""

    def choice(key: str, default: str, options: tuple[str, ...]) -> str:
        value = account.str(key, default)
        if value not in options:
            raise account.error(key, f"expected one of {', '.join(repr(o) for o in options)}, got {value!r}")
        return value

    def text(key: str, default: str = "") -> str:
        value = account.str(key, default) or ""
        if UNSAFE_HEADER.search(value):
            raise account.error(key, "must be one line (no line breaks)")
        return value

    imap_security = choice("imap_security", "tls", ("tls", "starttls"))
    smtp_security = choice("smtp_security", "tls", ("tls", "starttls"))
    username = text("username") or text("imap_user")
    if not username:
        raise account.error("username", f"missing; expected the IMAP login name (account '{account.name}')")
    from_address = text("from_address") or text("email") or (username if "@" in username else "")
    try:
        parsed_from = HeaderAddress(addr_spec=from_address)
        if not parsed_from.domain:
            raise ValueError
    except Exception:
        raise account.error("from_address", f"expected an email address such as shop@example.com, got {from_address!r}") from None
    ca_file = account.str("ca_file")
    if ca_file is not None:
        path = Path(ca_file).expanduser()
        if not path.is_file():
            raise account.error("ca_file", f"no such file: {path}; give the PEM certificate of the CA to trust")
        ca_file = str(path)
    folders = account.str_list("folders", ["INBOX"])
    if not folders:
        raise account.error("folders", "list at least one folder to watch, e.g. [\"INBOX\"]")
    return EmailSettings(
        imap_host=text("imap_host") or account.str("imap_host", required=True),
        imap_port=account.int("imap_port", 993 if imap_security == "tls" else 143, 1, 65535),
        imap_security=imap_security,
        username=username,
        password=account.secret("password"),
        smtp_host=text("smtp_host") or account.str("smtp_host", required=True),
        smtp_port=account.int("smtp_port", 465 if smtp_security == "tls" else 587, 1, 65535),
        smtp_security=smtp_security,
        smtp_username=text("smtp_username") or username,
        from_address=from_address,
        from_name=text("from_name") or text("display_name"),
        signature=account.str("signature", "") or "",
        folders=folders,
        sent_folder=text("sent_folder", "Sent"),
        ca_file=ca_file,
        poll_interval=account.float("poll_interval", 60.0, minimum=1.0),
        idle_timeout=account.float("idle_timeout", 25 * 60.0, minimum=1.0),
        timeout=account.float("timeout", 30.0, minimum=1.0),
        batch_size=account.int("batch_size", 500, 1, 10_000),
        parse_workers=account.int("parse_workers", -1, -1, 16),
    )
