"""Outgoing mail: the bytes of a reply and handing them to the SMTP server.

Headers are built from validated `str` values with the email package's SMTP policy, never from a
parsed header object (CVE-2024-6923: an encoded CR/LF in a re-used header could inject `Bcc:`), and
CR, LF and NUL are refused in every address and name. The Message-ID is derived from the outbox's
idempotency key, so a repeated attempt is recognisable in the Sent folder (journal.py). A reply
carries In-Reply-To and a References chain trimmed to its root and last 30 ids, and its subject
follows `reply_subject_for`. A campaign mail carries the List-Unsubscribe headers its outbox row
names.
"""

from __future__ import annotations

import re
import smtplib
import time
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from typing import Callable

from console.channels.email.connection import Connector, close_smtp
from console.channels.email.mailparse import ParsedMail
from console.channels.email.settings import UNSAFE_HEADER, EmailSettings
from console.channels.email.subjects import reply_subject_for
from console.model import ChannelError, Outgoing, PermanentError

MSGID_OK = re.compile(r"^<[!-;=?-~]{1,900}>$")  # printable ASCII without < > or space


class SendInDoubt(ChannelError):
    """The connection broke while the SMTP server was taking the message: it may have left."""


def message_id(settings: EmailSettings, account: str, out: Outgoing) -> str:
    key = out.idempotency_key
    if not key or not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", key):
        raise PermanentError(f"{account}: unusable idempotency key for a Message-ID")
    domain = settings.from_address.rpartition("@")[2]
    return f"<console-{key}@{domain}>"


def thread_of(out: Outgoing, message_id: str) -> str:
    """The thread key of a sent message: its conversation's, or its own for a new thread."""
    return out.thread_key if out.thread_key.startswith("<") else message_id


def build(settings: EmailSettings, account: str, out: Outgoing,
          quoted: ParsedMail | None = None) -> tuple[str, bytes]:
    """(Message-ID, bytes) of the mail for `out`. Raises PermanentError for unsafe input."""
    s = settings
    if out.to.kind != "email":
        raise PermanentError(f"{account}: cannot email a {out.to.kind} address")
    mid = message_id(settings, account, out)
    refs = [r for r in out.thread_external_ids if MSGID_OK.match(r)] if out.thread_key.startswith("<") else []
    subject = one_line(out.subject or (quoted.subject if quoted else ""))
    if refs:
        subject = reply_subject_for(subject)
    to_name = out.to.display_name if not UNSAFE_HEADER.search(out.to.display_name) else ""
    try:
        to = HeaderAddress(display_name=one_line(to_name), addr_spec=_checked(out.to.address, "recipient"))
        sender = HeaderAddress(display_name=s.from_name, addr_spec=s.from_address)
    except (ValueError, IndexError, TypeError) as exc:
        raise PermanentError(f"{account}: not a valid email address ({type(exc).__name__})") from None
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = mid
    if refs:
        msg["In-Reply-To"] = refs[-1]
        msg["References"] = " ".join(refs[:1] + refs[1:][-30:])
    # A campaign's unsubscribe links (console/outreach/messages.py): RFC 2369 and RFC 8058.
    for header, option in (("List-Unsubscribe", "list_unsubscribe"), ("List-Unsubscribe-Post", "list_unsubscribe_post")):
        value = out.options.get(option, "")
        if value and value.isascii() and not UNSAFE_HEADER.search(value):
            msg[header] = value
    body = out.body.replace("\r\n", "\n")
    if s.signature:
        body = body.rstrip("\n") + "\n\n-- \n" + s.signature.strip("\n")
    if out.options.get("quote") == "1" and quoted is not None and quoted.body:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(quoted.date)) if quoted.date else "earlier"
        who = quoted.from_name or quoted.from_addr
        body += f"\n\nOn {when} UTC, {who} wrote:\n" + "\n".join(
            "> " + line if line else ">" for line in quoted.body.strip("\n").split("\n"))
    body = body.replace("\x00", "") + "\n"
    plain = body.isascii() and max(len(line) for line in body.split("\n")) <= 998
    msg.set_content(body, charset="utf-8", cte="7bit" if plain else "quoted-printable")
    try:
        return mid, msg.as_bytes()
    except (ValueError, TypeError, UnicodeError) as exc:  # e.g. a header the policy cannot fold
        raise PermanentError(f"{account}: this message cannot be encoded ({type(exc).__name__})") from None


def smtp_send(connector: Connector, data: bytes, before_data: Callable[[], None] = lambda: None,
              step: Callable[[str], None] = lambda name: None) -> None:
    """Hand `data` to the SMTP server. `before_data` runs between RCPT and DATA (the journal's
    mark); a connection that breaks during DATA raises SendInDoubt."""
    s = connector.settings
    with connector.errors("SMTP"):
        client = connector.smtp()
        try:
            code, _ = client.mail(s.from_address)
            if code >= 400:
                raise smtplib.SMTPSenderRefused(code, b"", s.from_address)
            code, _ = client.rcpt(_recipient(data))
            if code >= 400:
                raise smtplib.SMTPRecipientsRefused({}) if code >= 500 else smtplib.SMTPResponseException(code, b"")
            step("rcpt_accepted")
            before_data()
            step("before_data")
            try:
                code, _ = client.data(data)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                raise SendInDoubt(f"{connector.account}: the connection to the SMTP server broke while it was taking "
                                  f"the message ({type(exc).__name__}); it may have been sent, check before "
                                  "sending it again") from None
            if code >= 400:
                raise smtplib.SMTPResponseException(code, b"")
        finally:
            close_smtp(client)


def one_line(value: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", value or "").strip()


def _checked(value: str, what: str) -> str:
    if not value or UNSAFE_HEADER.search(value) or any(ch in value for ch in "<>,;\" ()"):
        raise PermanentError(f"not a usable {what} address")
    return value


def _recipient(data: bytes) -> str:
    from email import message_from_bytes
    from email.utils import getaddresses

    return getaddresses([message_from_bytes(data).get("To", "")])[0][1]
