"""The `[outreach]` settings: quiet hours, the frequency cap, unsubscribing, opt-out words, pacing.

Read from the config file by console/config.py, which hands this module the table and a way to
make errors that name the file, the line and the key. The defaults are the restraint a small
business would choose anyway: no marketing between 20:00 and 09:00 in the recipient's time, at
most one marketing message per customer in three days across every channel. Nothing here can
loosen what the law and the channels require: US numbers never get marketing outside
08:00-21:00 local whatever `quiet_hours` says (console/outreach/zones.py), and the opt-out words
of the channel catalog always count; the words here are added to them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from console.channels import catalog

DEFAULT_QUIET = "20:00-09:00"
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
KEYS = {"quiet_hours", "timezone", "cap_messages", "cap_days", "unsubscribe_address", "unsubscribe_url",
        "unsubscribe_text", "opt_out_words", "opt_in_words", "opt_out_reply", "pacing", "test_addresses",
        "sms_segment_price", "currency"}
DEFAULT_OPT_OUT_REPLY = ("You will get no more messages from {business} on {channel}. "
                         "Reply START to subscribe again.")
DEFAULT_UNSUBSCRIBE_TEXT = "You get this because you agreed to news from {business}. To stop: {how}."


@dataclass(frozen=True)
class OutreachSettings:
    quiet_start: int = 20 * 60  # minutes after local midnight when quiet hours begin
    quiet_end: int = 9 * 60  # ... and end (quiet hours may run over midnight)
    timezone: str = ""  # recipients whose zone is unknown; "" = this machine's zone
    cap_messages: int = 1
    cap_days: float = 3.0
    unsubscribe_address: str = ""  # mail to it unsubscribes the sender; "" = the account's own address
    unsubscribe_url: str = ""  # an HTTPS endpoint: List-Unsubscribe-Post One-Click (RFC 8058)
    unsubscribe_text: str = DEFAULT_UNSUBSCRIBE_TEXT
    opt_out_words: frozenset[str] = frozenset()
    opt_in_words: frozenset[str] = frozenset()
    opt_out_reply: str = DEFAULT_OPT_OUT_REPLY
    pacing: dict[str, catalog.Pace] = field(default_factory=dict)  # account name or kind -> pace
    test_addresses: tuple[tuple[str, str], ...] = ()  # (identity kind, address)
    sms_segment_price: float = 0.0083
    currency: str = "USD"
    business: str = "us"  # the workspace's name, for texts
    # A hook for sending only in the business's own hours (issue 13's calendar): given a moment,
    # the first moment at or after it when the business is open. None: any hour outside quiet
    # hours will do.
    business_open: Callable[[float], float] | None = field(default=None, compare=False)

    @property
    def cap_seconds(self) -> float:
        return self.cap_days * 86400

    def pace(self, account: str, kind: str) -> catalog.Pace:
        """The account's pace: its own `[outreach.pacing]` entry, its kind's, else the catalog's."""
        found = self.pacing.get(account) or self.pacing.get(kind)
        if found is not None:
            return found
        try:
            return catalog.account_kind(kind).pace
        except KeyError:
            return catalog.Pace(1, 1)


def parse_rate(text: str) -> catalog.Pace | None:
    """'1/s', '30/min', '100/hour' -> a Pace; None when it is not a rate."""
    match = _RATE.match(text) if isinstance(text, str) else None
    if not match or float(match.group(1)) <= 0:
        return None
    seconds = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
    return catalog.Pace(float(match.group(1)), seconds[match.group(2)])


def parse_quiet(text: str) -> tuple[int, int] | None:
    """'20:00-09:00' -> (1200, 540); 'off' -> (0, 0); None when unreadable."""
    if text.strip().lower() in ("off", "none", ""):
        return 0, 0
    start, sep, end = text.partition("-")
    a, b = _CLOCK.match(start.strip()), _CLOCK.match(end.strip())
    if not sep or not a or not b:
        return None
    return int(a.group(1)) * 60 + int(a.group(2)), int(b.group(1)) * 60 + int(b.group(2))


def from_table(section: dict[str, Any], error: Callable[[str, str], Exception], business: str = "us",
               pacing_error: Callable[[str, str], Exception] | None = None) -> OutreachSettings:
    """The settings of an `[outreach]` table. `error(key, message)` makes the exception to raise
    (console/config.py: one that names the file, the line and the key)."""
    for key in section:
        if key not in KEYS:
            raise error(key, f"unknown key; expected one of {', '.join(sorted(KEYS))}")
    values: dict[str, Any] = {"business": business}

    def text(key: str) -> str | None:
        if key not in section:
            return None
        value = section[key]
        if not isinstance(value, str):
            raise error(key, f"expected a string, got {type(value).__name__} {value!r}")
        return value

    quiet = text("quiet_hours")
    if quiet is not None:
        parsed = parse_quiet(quiet)
        if parsed is None:
            raise error("quiet_hours", f"expected two times like \"20:00-09:00\" (or \"off\"), got {quiet!r}")
        values["quiet_start"], values["quiet_end"] = parsed
    zone = text("timezone")
    if zone:
        from console.outreach.zones import zone_named

        if zone_named(zone) is None:
            raise error("timezone", f"unknown time zone {zone!r}; use a name like Europe/Berlin or America/New_York")
        values["timezone"] = zone
    for key, minimum in (("cap_messages", 0), ("cap_days", 0)):
        if key in section:
            value = section[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
                raise error(key, f"expected a number of at least {minimum}, got {value!r}")
            values[key] = int(value) if key == "cap_messages" else float(value)
    address = text("unsubscribe_address")
    if address:
        if not _EMAIL.match(address.strip()):
            raise error("unsubscribe_address", f"expected an email address, got {address!r}")
        values["unsubscribe_address"] = address.strip().lower()
    url = text("unsubscribe_url")
    if url:
        if not url.startswith("https://") or any(c in url for c in " <>\r\n,"):
            raise error("unsubscribe_url", "expected an https:// address (One-Click unsubscribe needs HTTPS)")
        values["unsubscribe_url"] = url.rstrip("/")
    for key in ("unsubscribe_text", "opt_out_reply"):
        value = text(key)
        if value is not None:
            if not value.strip():
                raise error(key, "must not be empty")
            values[key] = value
    for key in ("opt_out_words", "opt_in_words"):
        if key in section:
            values[key] = _words(section[key], lambda message, key=key: error(key, message))
    if "test_addresses" in section:
        values["test_addresses"] = _test_addresses(section["test_addresses"],
                                                   lambda message: error("test_addresses", message))
    if "sms_segment_price" in section:
        price = section["sms_segment_price"]
        if isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0:
            raise error("sms_segment_price", f"expected a price per SMS segment like 0.0083, got {price!r}")
        values["sms_segment_price"] = float(price)
    currency = text("currency")
    if currency is not None:
        values["currency"] = currency.strip() or "USD"
    if "pacing" in section:
        table = section["pacing"]
        if not isinstance(table, dict):
            raise error("pacing", 'expected a table like [outreach.pacing] with phone = "1/s"')
        pacing = {}
        for name, rate in table.items():
            pace = parse_rate(rate)
            if pace is None:
                raise (pacing_error or error)(name, f'expected a rate like "1/s" or "30/min", got {rate!r}')
            pacing[name] = pace
        values["pacing"] = pacing
    return OutreachSettings(**values)


def _words(value: Any, error: Callable[[str], Exception]) -> frozenset[str]:
    """A list of words, or a table of lists per language ({ de = ["STOPP"], es = ["BAJA"] })."""
    lists = value.values() if isinstance(value, dict) else [value]
    words: set[str] = set()
    for words_of in lists:
        if not isinstance(words_of, list) or not all(isinstance(w, str) and w.strip() for w in words_of):
            raise error('expected lists of words per language, e.g. { de = ["STOPP", "ABMELDEN"] }')
        words.update(catalog.optout.normal_word(w) for w in words_of)
    return frozenset(w for w in words if w)


def _test_addresses(value: Any, error: Callable[[str], Exception]) -> tuple[tuple[str, str], ...]:
    from console.identity import normalize

    if not isinstance(value, list):
        raise error('expected a list like ["email:ana@crumb.example", "phone:+15551230000"]')
    out = []
    kinds = {entry.identity_kind for entry in catalog.channels()}
    for item in value:
        kind, sep, address = item.partition(":") if isinstance(item, str) else ("", "", "")
        if not sep or kind not in kinds or not address.strip():
            raise error(f"expected kind:address with a kind among {', '.join(sorted(kinds))}, got {item!r}")
        out.append((kind, normalize(kind, address)))
    return tuple(out)


@dataclass(frozen=True)
class Senders:
    """Which configured account a campaign message leaves from, for a customer who never wrote on
    that channel (one who did gets it from the account they wrote to), and what each account
    offers: its own email address (the unsubscribe mailto when `unsubscribe_address` is not
    set), its approved WhatsApp templates, its kind (for pacing)."""

    accounts: dict[str, str] = field(default_factory=dict)  # channel -> account name
    addresses: dict[str, str] = field(default_factory=dict)  # account -> its email address
    templates: dict[str, dict[str, str]] = field(default_factory=dict)  # account -> name -> template id
    kinds: dict[str, str] = field(default_factory=dict)  # account -> kind

    def mailto(self, account: str, settings: OutreachSettings) -> str:
        return settings.unsubscribe_address or self.addresses.get(account, "")


def senders_for(workspace) -> Senders:
    """The senders of a workspace's enabled accounts, the first account of a channel first."""
    accounts: dict[str, str] = {}
    addresses, templates, kinds = {}, {}, {}
    for account in workspace.accounts:
        kinds[account.name] = account.kind
        raw = account.raw
        if isinstance(raw.get("email"), str):
            addresses[account.name] = raw["email"].strip().lower()
        table = raw.get("templates")
        if isinstance(table, dict):
            templates[account.name] = {str(k): str(v) for k, v in table.items()}
        try:
            carried = raw.get("channels") if account.kind == "demo" else catalog.account_kind(account.kind).channels
        except KeyError:
            carried = ()
        for channel in carried or catalog.account_kind(account.kind).channels:
            accounts.setdefault(channel, account.name)
    return Senders(accounts, addresses, templates, kinds)
