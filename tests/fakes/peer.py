"""What the shared contract suite (tests/channels/test_contract.py) asks of every service.

Each `fakes.<account kind>` module defines `class Peer(fakes.peer.Peer)`: its fake, driven through
these few verbs. The suite finds it by the account kind's catalog entry, so a new account kind is
tested against the whole contract as soon as its fake module has a Peer.

A clause a service cannot honour by its nature (the demo has no credentials, IMAP has no rate
limit) is named in `cannot` with the reason; the suite reports it as skipped with that reason.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from console.model import Address

ACCOUNT = "acct"  # the account name every contract workspace uses


@dataclass
class Customer:
    """A person on the service, as the peer knows them (`handle`) and as the store will (`address`)."""

    channel: str
    address: Address
    handle: Any = None


class Peer:
    kind = ""  # the account kind (catalog.account_kind)
    channels: tuple[str, ...] = ()  # the channels the contract runs on, one parametrised case each
    # Clause name -> why this service cannot be held to it: "credentials", "rate_limit".
    cannot: dict[str, str] = {}
    # False: the service cannot tell whether a send left (Telegram bots cannot read their own
    # messages back); the suite then checks that such a send is left to a person, never resent.
    reconciles = True

    fake: Any = None

    def new_fake(self) -> Any:
        """The fake, not started yet (see fakes/__init__.py for the shape every fake has)."""
        raise NotImplementedError

    def start(self) -> None:
        self.fake = self.new_fake().start()
        self.people = itertools.count(1)  # numbers for made-up customers

    def stop(self) -> None:
        self.fake.stop()

    @property
    def violations(self) -> list[str]:
        """Requests or answers outside the service's description, seen by the fake."""
        return self.fake.violations

    def account(self, url: str | None = None) -> str:
        """The keys of the `[[accounts]]` table (without kind and name) for an account on this fake,
        or pointed at `url` instead (where nothing answers, for checks that must not reach it)."""
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Credentials that must never appear in an error or a log line."""
        return []

    def customer(self, channel: str) -> Customer:
        """A new person who can write to the business on `channel`."""
        raise NotImplementedError

    def writes(self, customer: Customer, text: str) -> None:
        """The customer writes `text` to the business."""
        raise NotImplementedError

    def received(self, customer: Customer) -> list[str]:
        """External ids (as the adapter records them) of what the business sent the customer, oldest first."""
        raise NotImplementedError

    def refuse_credentials(self) -> None:
        """The account's credentials stop working (revoked, rotated)."""
        raise NotImplementedError

    def rate_limit_next_pull(self, seconds: int) -> float | None:
        """The next call a pull makes is refused for rate limiting, asking to wait about `seconds`;
        returns the wait the adapter should report (None: the service does not say)."""
        raise NotImplementedError
