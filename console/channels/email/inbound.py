"""A parsed mail as the console's message: identity, direction, peer and thread.

Identity of a message: its Message-ID (`<...>`), or for mail without one a hash of its bytes. A
different mail reusing a stored Message-ID (other sender, Date or Subject: the fingerprint) is
kept by the store as `<id>#<fingerprint>`; copies of one mail (INBOX and Sent, two folders) are
stored once. Thread key: the thread's root Message-ID; `related_keys` (References + In-Reply-To)
let a reply whose References were trimmed still find its conversation; a reply whose headers match
nothing stored joins the same customer's recent conversation with the same subject
(`reply_subject`, subjects.py), the last resort the store applies.

Peer: the sender for inbound mail; for our own mail (found in the Sent folder, or From our
address) the first To recipient, direction "out". A Reply-To that differs from the sender is shown
as a first line of the body ("Reply-To: ..."); replies go to the sender's identity.
"""

from __future__ import annotations

import hashlib
import time

from console.channels.email.mailparse import ParsedMail
from console.channels.email.settings import EmailSettings
from console.channels.email.subjects import reply_subject
from console.model import Address, InboundMessage


def to_inbound(settings: EmailSettings, mail: ParsedMail, raw: bytes, from_sent_folder: bool,
               internal: float | None) -> InboundMessage:
    me = settings.from_address.lower()
    ours = from_sent_folder or mail.from_addr == me
    if ours:
        recipients = [r for r in (*mail.to, *mail.cc) if r[1] != me]
        # Mail to nobody but ourselves (a note, Bcc only): keep it, under a visible placeholder.
        name, addr = recipients[0] if recipients else ("(no recipient)", "undisclosed-recipients@invalid")
    else:
        name, addr = mail.from_name, mail.from_addr
    if not addr:
        name, addr = name or "(no sender)", "unknown-sender@invalid"
    notes = []
    if not ours and mail.reply_to and mail.reply_to[0][1] != addr:
        notes.append(f"Reply-To: {mail.reply_to[0][1]}")
    notes.extend(f"[console: {problem}]" for problem in mail.problems)
    body = mail.body if not notes else "\n".join(notes) + "\n\n" + mail.body
    return InboundMessage(
        external_id=mail.message_id,
        thread_key=mail.thread_root,
        channel="email",
        direction="out" if ours else "in",
        peer=Address("email", addr, name),
        sent_at=mail.date or internal or time.time(),
        body=body,
        subject=mail.subject,
        html=mail.html,
        raw=raw,
        attachments=list(mail.attachments),
        status="sent" if ours else None,
        related_keys=mail.related,
        reply_subject=reply_subject(mail.subject),
        fingerprint=hashlib.sha256(f"{mail.from_addr}\0{mail.date}\0{mail.subject}".encode(
            "utf-8", "surrogatepass")).hexdigest()[:16],
    )
