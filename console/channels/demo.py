"""The demo account kind: made-up bakery customers behind the same contract as every real channel.

The first pull seeds six weeks of history in batches (with progress, like a long first sync of a
real mailbox); later pulls bring what the made-up customers do meanwhile: now and then a new
question (`chatter`), and now and then an answer to one of our replies. Replies go through the
outbox like any other and are "delivered" a moment later. Nothing touches the network.

Several demo accounts of one workspace share one set of people (same seed, same anchor time in
the cursor), each account carrying only its own channels, so a customer who emails and texts is
one person across the mail and phone accounts.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

from console.demo_data import ANSWERS, ITEMS, DAYS, NEW_QUESTIONS, Dataset, DemoMessage, Person, build, demo_pdf
from console.channels import catalog
from console.model import (Address, InboundMessage, Outgoing, PermanentError, PullResult, SendResult,
                           StatusUpdate)

BATCH = 500
CHATTER_EVERY = (90.0, 240.0)  # seconds between two new questions from made-up customers
CHATTER_OPEN = 4  # at most this many of them waiting for an answer at once
DEMO_CHANNELS = catalog.account_kind("demo").channels
# The made-up service lives in this process: one dataset per (seed, anchor) for every demo account,
# and what each account sent, so that an engine restarted in the same process reconciles its sends
# (after a real crash the service is gone too, and sending again harms nobody).
_DATASETS: dict[tuple[int, float], Dataset] = {}
_ANCHORS: dict[int, float] = {}  # seed -> the anchor the first demo account of this process chose
_SENT: dict[tuple[int, str], dict[str, tuple[Address, SendResult]]] = {}  # (seed, account) -> key -> send


def dataset(seed: int, anchor: float) -> Dataset:
    key = (seed, anchor)
    if key not in _DATASETS:
        _DATASETS[key] = build(seed, anchor)
    return _DATASETS[key]


def world(seed: int) -> Dataset:
    """The people and messages the demo accounts with `seed` pull from in this process. A message
    appended to its `messages` is what a made-up customer writes next (the contract tests do)."""
    return dataset(seed, _ANCHORS.setdefault(seed, float(int(time.time()))))


def sent_to(seed: int, account: str, peer: Address) -> list[str]:
    """External ids of what the demo account sent to `peer`, oldest first: the service's side."""
    return [result.external_id for to, result in _SENT.get((seed, account), {}).values() if to == peer]


def configure(account, workspace) -> "DemoChannel":
    channels = account.str_list("channels", ["email", "sms", "whatsapp"])
    if not channels:
        raise account.error("channels", f"list at least one of {', '.join(DEMO_CHANNELS)}")
    for channel in channels:
        if channel not in DEMO_CHANNELS:
            raise account.error("channels", f"unknown channel {channel!r}; expected some of {', '.join(DEMO_CHANNELS)}")
    # Approved WhatsApp templates, as a Twilio account has them (name = any id): the composer
    # offers them when the 24-hour window is closed; the demo "sends" them like any reply.
    for name, ident in account.table("templates").items():
        if not isinstance(ident, str) or not ident.strip():
            raise account.error("templates", f"template {name!r}: expected an id string")
    return DemoChannel(
        account=account.name,
        channels=tuple(dict.fromkeys(channels)),
        seed=account.int("seed", 7, minimum=0),
        poll_interval=account.float("poll_interval", 5.0, minimum=0.01),
        chatter=account.bool("chatter", True),
        reply_delay=account.float("reply_delay", 20.0),
    )


@dataclass
class _Pending:
    due: float
    message: InboundMessage | None = None
    status: StatusUpdate | None = None


class DemoChannel:
    kind = "demo"

    def __init__(self, account: str, channels: tuple[str, ...], seed: int = 7, poll_interval: float = 5.0,
                 chatter: bool = True, reply_delay: float = 20.0):
        self.account, self.channels, self.seed = account, channels, seed
        self.poll_interval, self.chatter, self.reply_delay = poll_interval, chatter, reply_delay
        self._rng = random.Random(f"{seed}:{account}:{time.time()}")
        self._pending: list[_Pending] = []
        self._sent = _SENT.setdefault((seed, account), {})  # idempotency key -> (recipient, result)
        self._serial = 0
        # Chatter is lively but bounded: a new question every few minutes at most, and never more
        # than CHATTER_OPEN of them unanswered at once (a reply to that customer counts).
        self._next_question = time.time() + self._rng.uniform(20, 60)
        self._asking: set[str] = set()

    # ---- the contract ---------------------------------------------------------------------------
    async def pull(self, cursor: str | None) -> PullResult:
        state = _load(cursor)
        if state is None:
            # Every demo account seeded by this process anchors at the same time, so they share people.
            anchor = _ANCHORS.setdefault(self.seed, float(int(time.time())))
            state = {"seed": self.seed, "anchor": anchor, "done": 0, "live": 0}
        data = dataset(int(state["seed"]), float(state["anchor"]))
        mine = [m for m in data.messages if m.channel in self.channels]
        if state["done"] < len(mine):
            batch = mine[state["done"]:state["done"] + BATCH]
            state["done"] += len(batch)
            result = PullResult(
                messages=[self._inbound(data.people[m.person], m) for m in batch],
                more=state["done"] < len(mine), progress=(state["done"], len(mine)))
            result.cursor = json.dumps(state)
            return result
        result = PullResult()
        now = time.time()
        for item in [p for p in self._pending if p.due <= now]:
            self._pending.remove(item)
            if item.message:
                result.messages.append(item.message)
            if item.status:
                result.status_updates.append(item.status)
        if self.chatter and now >= self._next_question and len(self._asking) < CHATTER_OPEN:
            state["live"] += 1
            question = self._new_question(data, state)
            self._asking.add(question.peer.address)
            result.messages.append(question)
            self._next_question = now + self._rng.uniform(*CHATTER_EVERY)
        result.cursor = json.dumps(state)
        return result

    async def send(self, out: Outgoing) -> SendResult:
        if out.channel not in self.channels:
            raise PermanentError(f"the demo account '{self.account}' does not carry {out.channel}")
        if catalog.channel(out.channel).identity_kind != out.to.kind:
            raise PermanentError(f"cannot send {out.channel} to a {out.to.kind} address")
        if not out.body.strip() and not out.options.get("template"):
            raise PermanentError("the demo cannot send an empty message", "empty")
        if not out.options.get("template"):
            catalog.enforce_length(out.channel, out.body)  # the same limits as the real services
        self._serial += 1
        self._asking.discard(out.to.address)
        result = SendResult(f"demo-{out.idempotency_key or out.outbox_id}", "sent", sent_at=time.time())
        self._sent[out.idempotency_key] = (out.to, result)
        now = time.time()
        self._pending.append(_Pending(now + min(2.0, self.reply_delay),
                                      status=StatusUpdate(result.external_id, "delivered")))
        if self._rng.random() < 0.35:  # now and then the customer answers
            self._serial += 1
            text = self._rng.choice(ANSWERS).format(item=self._rng.choice(ITEMS))
            self._pending.append(_Pending(now + self.reply_delay, message=InboundMessage(
                external_id=f"demo-answer-{result.external_id}", thread_key=out.thread_key or
                f"{out.channel}:{out.to.address}", channel=out.channel, direction="in", peer=out.to,
                sent_at=now + self.reply_delay, body=text,
                subject=("Re: " + out.subject.removeprefix("Re: ")) if out.subject else "",
                related_keys=tuple(k for k in (out.thread_key, result.external_id) if k))))
        return result

    async def fetch_attachment(self, external_id: str, ref: str) -> bytes:
        """A small, valid PDF standing in for the demo's quotes and price lists."""
        if not ref.startswith("demo:"):
            raise PermanentError("not a demo attachment")
        return demo_pdf(ref[5:])

    async def reconcile(self, out: Outgoing) -> SendResult | None:
        # The demo "service" lives in this process: after a crash it certainly has nothing.
        found = self._sent.get(out.idempotency_key)
        return found[1] if found else None

    async def check(self) -> str:
        return f"demo: {', '.join(self.channels)} (no network)"

    async def close(self) -> None:
        self._pending.clear()

    # ---- helpers --------------------------------------------------------------------------------
    def _inbound(self, person: Person, m: DemoMessage) -> InboundMessage:
        return InboundMessage(
            external_id=m.external_id, thread_key=m.thread_key, channel=m.channel, direction=m.direction,
            peer=m.sender or person.address(m.channel), sent_at=m.at, body=m.body, subject=m.subject,
            attachments=list(m.attachments), status="delivered" if m.direction == "out" else None,
            peer_links=() if m.sender else person.links(m.channel))

    def _new_question(self, data: Dataset, state: dict) -> InboundMessage:
        people = [p for p in data.people if set(p.channels) & set(self.channels)]
        person = self._rng.choice(people)
        channel = next(c for c in person.channels if c in self.channels)
        text = self._rng.choice(NEW_QUESTIONS).format(item=self._rng.choice(ITEMS), day=self._rng.choice(DAYS))
        ident = f"demo-live-{self.account}-{int(state['anchor'])}-{state['live']}"
        peer = person.address(channel)
        if channel == "email":
            return InboundMessage(f"<{ident}@{person.email.split('@')[1]}>", f"<{ident}@{person.email.split('@')[1]}>",
                                  channel, "in", peer, time.time(), text, subject=text[:40],
                                  peer_links=person.links(channel))
        return InboundMessage(ident, f"{channel}:{peer.address}", channel, "in", peer, time.time(), text,
                              peer_links=person.links(channel))


def _load(cursor: str | None) -> dict | None:
    if not cursor:
        return None
    try:
        state = json.loads(cursor)
        return {"seed": int(state["seed"]), "anchor": float(state["anchor"]), "done": int(state["done"]),
                "live": int(state.get("live", 0))}
    except (ValueError, KeyError, TypeError):
        return None  # an unreadable cursor re-seeds; the store de-duplicates
