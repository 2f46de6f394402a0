"""The plain data outreach decisions are made on, shared by the store and the decisions.

The store (console/store/) gathers these facts with SQL and writes what was decided; the rest of
console/outreach/ decides, reading the channel catalog. This module knows neither: it imports
nothing of the channels, so the store can use it and still know no channel's rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from console.outreach.reasons import Reason

PURPOSES = ("service", "marketing")  # what a consent record is about
SEND_PURPOSES = ("service", "marketing", "test", "ack")  # what an outbox row is for
# The source of an opt-out the customer wrote starts so ("wrote STOP on SMS"): their START undoes it.
KEYWORD_SOURCE = "wrote "


@dataclass(frozen=True)
class Identity:
    id: int
    kind: str
    address: str


@dataclass(frozen=True)
class Route:
    """One way to reach a customer on a channel: from this account, to this identity."""

    channel: str
    account: str
    identity_id: int
    conversation_id: int | None
    last_used: float  # the customer's last message here (0: never wrote here)


@dataclass
class Recipient:
    """What restraint needs to know about one customer (console/store/restraint.py gathers it)."""

    customer_id: int
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    identities: list[Identity] = field(default_factory=list)
    consent: dict[tuple[int, str, str], str] = field(default_factory=dict)  # (identity, channel, purpose) -> state
    last_inbound: dict[str, float] = field(default_factory=dict)  # channel -> the customer's last message
    open_conversation: bool = False
    last_service_reply_at: float | None = None  # our last non-marketing message to them
    marketing_times: list[float] = field(default_factory=list)  # marketing sends to them (and queued ones)
    routes: list[Route] = field(default_factory=list)  # most recently used first

    @property
    def last_inbound_at(self) -> float | None:
        return max(self.last_inbound.values()) if self.last_inbound else None

    def identity(self, identity_id: int) -> Identity | None:
        return next((i for i in self.identities if i.id == identity_id), None)

    def phones(self) -> list[str]:
        return [i.address for i in self.identities if i.kind == "phone"]

    def consent_state(self, identity_id: int, channel: str, purpose: str) -> str:
        """'granted', 'withdrawn' or '' (never asked: service is implied, marketing is not)."""
        return self.consent.get((identity_id, channel, purpose), "")


@dataclass(frozen=True)
class Send:
    """One message as restraint sees it."""

    purpose: str  # service | marketing | test | ack
    channel: str
    identity_id: int
    template: bool = False  # an approved WhatsApp template (options["template"])
    tag: str = ""  # a Meta message tag (options["tag"])
    campaign_started: float | None = None  # the campaign's launch, for its stop conditions


@dataclass(frozen=True)
class Verdict:
    reason: Reason | None  # None: it may go at `at`
    at: float  # when it may go: now, or the end of quiet hours (reason HELD)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def held(self) -> bool:
        return self.reason is Reason.HELD


# ---- importing customers ---------------------------------------------------------------------------
@dataclass
class ImportRow:
    number: int  # the line in the file (the header is line 1)
    name: str = ""
    email: str = ""
    phone: str = ""
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    consents: list[tuple[str, str, str]] = field(default_factory=list)  # (channel, identity kind, state)
    source: str = ""
    text: str = ""
    at: float = 0.0


@dataclass
class Refusal:
    number: int
    reason: str


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    consents: int = 0
    refused: list[Refusal] = field(default_factory=list)
    dry_run: bool = False

    def lines(self) -> list[str]:
        would = " would be made" if self.dry_run else ""
        head = (f"{self.rows} row(s): {self.created} new customer(s){would}, {self.updated} updated, "
                f"{self.consents} consent(s) recorded, {len(self.refused)} refused"
                + (" (dry run: nothing was written)" if self.dry_run else ""))
        return [head] + [f"line {r.number}: refused: {r.reason}" for r in self.refused]
