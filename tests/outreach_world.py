"""Customers for the outreach tests: people who wrote on some channels, with or without consent.

A plain module (like tests/workspace.py) so tests in any folder import it by name.
"""

from __future__ import annotations

import time

from console.model import Address, InboundMessage, PullResult
from console.outreach import keywords
from console.outreach.campaign import Campaign, ChannelText, Step
from console.outreach.settings import OutreachSettings, Senders

ANYTIME = OutreachSettings(quiet_start=0, quiet_end=0, business="Crumb & Co.", timezone="Europe/Berlin")
SENDERS = Senders({"email": "mail", "sms": "phone", "whatsapp": "phone", "telegram": "tg"},
                  {"mail": "shop@crumb.example"}, {"phone": {"follow_up": "HX1"}},
                  {"mail": "email", "phone": "twilio", "tg": "telegram"})
ACCOUNTS = {"email": "mail", "sms": "phone", "whatsapp": "phone", "telegram": "tg"}
KINDS = {"email": "email", "sms": "phone", "whatsapp": "phone", "telegram": "telegram"}
_serial = iter(range(1, 10**9))


def address(channel: str, n: int) -> Address:
    kind = KINDS[channel]
    text = {"email": f"person{n}@example.com", "phone": f"+4930555{n:04d}", "telegram": str(7000 + n)}[kind]
    return Address(kind, text, f"Person {n}")


def pull(store, account: str, result: PullResult, kind: str = "demo") -> int:
    """Apply a pull as the engine does: with the opt-outs its customers wrote (keywords.read)."""
    result.opt_outs.extend(keywords.read(result, kind, store.outreach, time.time()))
    return store.apply_pull(account, result)


def wrote(store, channel: str, n: int, body: str = "hello", ago: float = 10 * 86400, account: str | None = None,
          kind: str = "demo"):
    """Customer `n` writes on `channel` (to an account of `kind`); returns their customer id."""
    peer = address(channel, n)
    at = time.time() - ago
    ext = f"{channel}-{n}-{next(_serial)}"
    # One person on every channel: a new identity of theirs joins the customer they already are.
    links = tuple(address(c, n) for c in ("email", "sms", "telegram") if KINDS[c] != peer.kind)
    msg = InboundMessage(ext if channel != "email" else f"<{ext}@example.com>",
                         f"{channel}:{peer.address}" if channel != "email" else f"<{ext}@example.com>",
                         channel, "in", peer, at, body, subject="Hello" if channel == "email" else "",
                         peer_links=links)
    pull(store, account or ACCOUNTS[channel], PullResult([msg]), kind)
    row = store.db.query_one("SELECT id, customer_id FROM identity WHERE kind = ? AND address = ?",
                             (peer.kind, peer.address))
    return row["customer_id"]


def identity_id(store, channel: str, n: int) -> int:
    peer = address(channel, n)
    return store.db.query_one("SELECT id FROM identity WHERE kind = ? AND address = ?", (peer.kind, peer.address))[0]


def customer(store, n: int, channels=("sms",), consent=("sms",), done: bool = True) -> int:
    """Customer `n`, who wrote on `channels` long ago (conversations closed), with marketing
    consent on `consent`."""
    cid = None
    for channel in channels:
        cid = wrote(store, channel, n)
    for channel in consent:
        store.set_consent(identity_id(store, channel, n), channel, "marketing", "granted", "asked in shop",
                          "news from Crumb & Co.", at=time.time() - 30 * 86400)
    if done:
        store.set_status("done", customer_id=cid)
    return cid


def campaign(store, name: str = "Spring menu", query: str = "", steps=None, **kw) -> int:
    segment_id = store.save_segment(f"{name} people", query or "not:tag:nobody")
    steps = steps or [Step(1, 0, "last_used", ("sms", "email"),
                           {"sms": ChannelText(body="Hi {first_name|there}, spring menu!"),
                            "email": ChannelText("Spring menu", "Hi {first_name|there}, the spring menu is here.")})]
    return store.save_campaign(Campaign(None, name, segment_id, steps=steps, **kw))


def outbox(store, purpose: str = "marketing") -> list[dict]:
    return [dict(r) for r in store.db.query(
        """SELECT o.*, m.channel, m.body, c.customer_id, i.address FROM outbox o JOIN message m ON m.id = o.message_id
           JOIN conversation c ON c.id = m.conversation_id JOIN identity i ON i.id = m.identity_id
           WHERE o.purpose = ? ORDER BY o.id""", (purpose,))]
