"""The demo account kind's peer: the made-up service lives inside console.channels.demo itself
(`demo.world(seed)`, the people and messages it pulls from; `demo.sent_to`, what it was sent), so
its "fake" only picks people and has them write. Each Peer takes a seed of its own, so tests never
share made-up customers."""

from __future__ import annotations

import itertools
import time

from console.channels import demo
from console.demo_data import DemoMessage
from fakes import peer

_SEEDS = itertools.count(90_001)


class Peer(peer.Peer):
    kind = "demo"
    channels = ("sms", "whatsapp", "telegram", "messenger", "instagram", "email")
    cannot = {"credentials": "the demo has no credentials to refuse",
              "rate_limit": "the demo never limits anyone"}

    def start(self) -> None:
        self.seed = next(_SEEDS)
        self.world = demo.world(self.seed)
        self._chosen: set[int] = set()
        self._messages = itertools.count(1)

    def stop(self) -> None:
        pass

    @property
    def violations(self) -> list[str]:
        return []

    def account(self, url: str | None = None) -> str:
        channels = ", ".join(f'"{c}"' for c in self.channels)
        return f"seed = {self.seed}\nchannels = [{channels}]\nchatter = false\nreply_delay = 0.0\npoll_interval = 0.01\n"

    def customer(self, channel: str) -> peer.Customer:
        # Never the demo's customer who texted STOP: the store rightly refuses to reply to them.
        stopped = {m.person for m in self.world.messages if m.direction == "in"
                   and m.body.strip().upper() in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")}
        person = next(p for p in self.world.people if channel in p.channels and p.number not in self._chosen
                      and p.number not in stopped)
        self._chosen.add(person.number)
        return peer.Customer(channel, person.address(channel), person)

    def writes(self, customer: peer.Customer, text: str) -> None:
        ident = f"demo-peer-{self.seed}-{next(self._messages)}"
        if customer.channel == "email":
            ident = f"<{ident}@{customer.address.address.split('@')[1]}>"
        thread = ident if customer.channel == "email" else f"{customer.channel}:{customer.address.address}"
        self.world.messages.append(DemoMessage(ident, thread, customer.channel, "in", customer.handle.number,
                                               time.time(), text, "Hello" if customer.channel == "email" else ""))

    def received(self, customer: peer.Customer) -> list[str]:
        return demo.sent_to(self.seed, peer.ACCOUNT, customer.address)
