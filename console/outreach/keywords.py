"""What customers write to stop or restart us, read from a pull before the store applies it.

The sync engine calls `read()` on every pull, on every channel, and adds what it finds to the
pull's `opt_outs`; the store applies them in the transaction that stores the messages
(console/store/consent.py), so a STOP is never kept without its effect. What counts:

- a whole message that is an opt-out or opt-in keyword of its channel (the catalog's words,
  console/channels/catalog/optout.py) or of the workspace (`[outreach] opt_out_words` /
  `opt_in_words`);
- an email to the unsubscribe address (`[outreach] unsubscribe_address`, found in the message's
  own To/Cc/Delivered-To headers), or with an unsubscribe token in its subject: the
  List-Unsubscribe mailto of our campaigns, whichever address the customer sends it from.

What a stop ends is the channel's rule (SMS: every message; elsewhere: marketing). The
confirmation SMS expects is written here, once, when the account's service does not confirm
the word itself, and only for a STOP written in the last day (a first sync of old history
confirms nothing); the store sends it only when the withdrawal is new.
"""

from __future__ import annotations

import re

from console.channels import catalog
from console.channels.catalog.optout import keyword, normal_word
from console.model import InboundMessage, OptOutChange, PullResult
from console.outreach.facts import KEYWORD_SOURCE
from console.outreach.settings import OutreachSettings

ACK_WITHIN = 86400.0  # a STOP older than this when it reaches us is not confirmed any more
TOKEN = re.compile(r"\bunsubscribe\s+(\d+-[0-9a-f]{16})\b", re.IGNORECASE)


def read(result: PullResult, account_kind: str, settings: OutreachSettings, now: float) -> list[OptOutChange]:
    """The opt-outs and re-subscriptions the customers of this pull wrote."""
    changes = []
    for msg in result.messages:
        if msg.direction != "in":
            continue
        change = unsubscribe_mail(msg, settings) if msg.channel == "email" else None
        if change is None:
            change = written(msg, account_kind, settings, now)
        if change is not None:
            changes.append(change)
    return changes


def written(msg: InboundMessage, account_kind: str, settings: OutreachSettings, now: float) -> OptOutChange | None:
    """STOP, START and their kin as a whole message."""
    entry = catalog.channel(msg.channel)
    head = msg.body.lstrip()[:80].split("\n", 1)[0]
    if normal_word(head) not in (entry.opt_out.stop_words | entry.opt_out.start_words | settings.opt_out_words
                                 | settings.opt_in_words):
        return None  # the cheap test first: a keyword starts the message
    word = keyword(entry.opt_out, msg.body, settings.opt_out_words, settings.opt_in_words)
    if word is None:
        return None
    said = normal_word(msg.body)
    source = f"{KEYWORD_SOURCE}{said} on {entry.name}"
    if word == "start":
        return OptOutChange(msg.peer, False, msg.channel, tuple(p for p in entry.opt_out.withdraws if p == "service"),
                            msg.sent_at, source, msg.external_id, restore_marketing=True)
    acknowledge = ""
    try:
        confirmed = catalog.account_kind(account_kind).confirms(msg.channel, said)
    except KeyError:
        confirmed = False
    if entry.opt_out.acknowledge and not confirmed and msg.sent_at >= now - ACK_WITHIN:
        acknowledge = settings.opt_out_reply.replace("{business}", settings.business).replace("{channel}", entry.name)
    return OptOutChange(msg.peer, True, msg.channel, entry.opt_out.withdraws, msg.sent_at, source, msg.external_id,
                        acknowledge)


def unsubscribe_mail(msg: InboundMessage, settings: OutreachSettings) -> OptOutChange | None:
    """Mail to the unsubscribe address, or carrying a token: email marketing ends."""
    found = TOKEN.search(msg.subject or "")
    to_address = False
    if settings.unsubscribe_address and msg.raw:
        end = msg.raw.find(b"\r\n\r\n")
        head = msg.raw[: end if end >= 0 else 8192].lower()
        to_address = settings.unsubscribe_address.encode() in head
    if not found and not to_address:
        return None
    return OptOutChange(msg.peer, True, "email", ("marketing",), msg.sent_at, "wrote to the unsubscribe address",
                        msg.external_id, token=found.group(1) if found else "")
