"""The channel catalog: everything known about a channel and an account kind, in one entry each.

A *channel* is how a message travels (SMS, WhatsApp, Messenger...): its name, icon and NO_COLOR
letter, the identity kind of its addresses, how its length is counted and its limit, its reply
window, its opt-out rules. An *account kind* is what a `[[accounts]]` table configures (twilio,
meta...): the channels it carries, its secret keys and its adapter module. The composer, the card,
the config loader and the adapters all read these entries; nothing else spells these facts.

A new channel is one entry here, one adapter module in console/channels/ and one fake in tests/.
Pure data and pure functions: no I/O, no UI toolkit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from console.channels.catalog.length import (LengthRule, LengthSettings, LengthVerdict, judge, length_settings,
                                             mastodon_length)
from console.channels.catalog.sms import MAX_CHARS as SMS_MAX_CHARS
from console.channels.catalog.optout import (START_WORDS, STOP_WORDS, TWILIO_START_WORDS, TWILIO_STOP_WORDS,
                                             OptOut, keyword)
from console.channels.catalog.sms import MAX_SEGMENTS as SMS_MAX_SEGMENTS
from console.model import PermanentError

__all__ = [
    "ChannelEntry", "IdentityEntry", "AccountKind", "OptOut", "WindowState", "LengthRule", "LengthSettings",
    "LengthVerdict", "channel", "channels", "identity", "account_kind", "account_kinds", "secret_keys",
    "measure", "enforce_length", "window_state", "length_settings", "mastodon_length", "keyword", "Pace",
]


@dataclass(frozen=True)
class ChannelEntry:
    id: str
    name: str  # for people: "SMS", "WhatsApp"
    icon: str  # one cell where the terminal allows: "☎"
    letter: str  # the same in plain ASCII, for NO_COLOR and terminals without the symbols
    identity_kind: str  # what kind of address a customer has here (SMS and WhatsApp share "phone")
    length: LengthRule
    # Free text only within this many hours of the customer's last message (None: any time).
    reply_window_hours: int | None = None
    # Meta: after the window, a human agent's reply tagged HUMAN_AGENT for this many days.
    human_agent_days: int | None = None
    # Outside the window, an approved template can still be sent (WhatsApp).
    templates: bool = False
    opt_out: OptOut = OptOut(STOP_WORDS, START_WORDS)
    reports_read: bool = False  # the service says when a message was read (a campaign report's "read")


@dataclass(frozen=True)
class IdentityEntry:
    kind: str
    label: str  # "phone", "Telegram"
    icon: str
    shown_by_name: bool  # the address is an opaque id: show the display name instead


@dataclass(frozen=True)
class Pace:
    """How fast an account may send campaign messages: `messages` per `seconds`."""

    messages: float
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


@dataclass(frozen=True)
class AccountKind:
    id: str
    name: str
    channels: tuple[str, ...]  # channels an account of this kind can carry
    secret_keys: tuple[str, ...]  # each also as <key>_cmd / <key>_env
    module: str  # the adapter: a module exposing configure(account, workspace) -> Channel
    # Opt-out words the service itself confirms to the customer and enforces, per channel:
    # console sends no confirmation of its own for these.
    confirms_opt_out: tuple[tuple[str, frozenset[str]], ...] = ()
    # The service's own limit for campaign sends (Twilio: 1 message per second per long-code
    # sender; SMTP: what a shared mail host tolerates; Meta: 2 calls per second per Page).
    pace: Pace = Pace(1, 1)

    def confirms(self, channel_id: str, word: str) -> bool:
        return any(channel == channel_id and word in words for channel, words in self.confirms_opt_out)


# After STOP, carriers deliver nothing to the number, replies included, until START; and the
# customer expects one confirmation (sent by Twilio itself for its own words).
_SMS_OPT_OUT = OptOut(TWILIO_STOP_WORDS, TWILIO_START_WORDS, ("service", "marketing"), acknowledge=True)

# In the order channels are listed (filters 1-9, a customer's identities).
_CHANNELS = (
    ChannelEntry("email", "email", "✉", "E", "email", LengthRule("none")),
    ChannelEntry("sms", "SMS", "☎", "S", "phone", LengthRule("segments", SMS_MAX_SEGMENTS, "Twilio"),
                 opt_out=_SMS_OPT_OUT),
    # Sent through Twilio, whose Body takes 1,600 characters (WhatsApp itself would take 4,096).
    ChannelEntry("whatsapp", "WhatsApp", "ⓦ", "W", "phone", LengthRule("utf16", SMS_MAX_CHARS, "Twilio"),
                 reply_window_hours=24, templates=True, reports_read=True),
    ChannelEntry("telegram", "Telegram", "✈", "T", "telegram", LengthRule("utf16", 4096)),
    ChannelEntry("instagram", "Instagram", "◎", "I", "instagram", LengthRule("utf8", 1000),
                 reply_window_hours=24, human_agent_days=7, reports_read=True),
    ChannelEntry("messenger", "Messenger", "ⓜ", "F", "messenger", LengthRule("characters", 2000),
                 reply_window_hours=24, human_agent_days=7, reports_read=True),
    ChannelEntry("mastodon", "Mastodon", "🐘", "M", "mastodon", LengthRule("mastodon", 500, "this Mastodon server")),
)
_BY_ID = {entry.id: entry for entry in _CHANNELS}

_IDENTITIES = {entry.kind: entry for entry in (
    IdentityEntry("email", "email", "✉", False),
    IdentityEntry("phone", "phone", "☎", False),
    IdentityEntry("telegram", "Telegram", "✈", True),
    IdentityEntry("instagram", "Instagram", "◎", True),
    IdentityEntry("messenger", "Messenger", "ⓜ", True),
    IdentityEntry("mastodon", "Mastodon", "🐘", True),  # the address is the numeric account id
)}

_ACCOUNT_KINDS = {kind.id: kind for kind in (
    AccountKind("demo", "demo (made-up customers)", ("email", "sms", "whatsapp", "telegram", "instagram", "messenger"),
                (), "console.channels.demo", pace=Pace(5, 1)),
    AccountKind("email", "email (IMAP + SMTP)", ("email",), ("password",), "console.channels.email", pace=Pace(30, 60)),
    AccountKind("twilio", "Twilio (SMS, WhatsApp)", ("sms", "whatsapp"), ("auth_token", "api_secret"),
                "console.channels.twilio", (("sms", TWILIO_STOP_WORDS | TWILIO_START_WORDS),), Pace(1, 1)),
    AccountKind("telegram", "Telegram bot", ("telegram",), ("bot_token",), "console.channels.telegram",
                pace=Pace(10, 1)),
    AccountKind("meta", "Facebook Page (Messenger, Instagram)", ("messenger", "instagram"), ("page_access_token",),
                "console.channels.meta", pace=Pace(2, 1)),
    AccountKind("mastodon", "Mastodon", ("mastodon",), ("access_token",), "console.channels.mastodon",
                pace=Pace(1, 1)),
)}


def channel(channel_id: str) -> ChannelEntry:
    """The entry of a channel. A channel the catalog does not know (stored by an older or newer
    console) gets a plain entry under its own name rather than an error."""
    entry = _BY_ID.get(channel_id)
    if entry is None:
        return ChannelEntry(channel_id, channel_id, "•", "?", channel_id, LengthRule("none"))
    return entry


def channels() -> tuple[ChannelEntry, ...]:
    return _CHANNELS


def identity(kind: str) -> IdentityEntry:
    """How an identity kind is labelled; an unknown kind is shown as its own name."""
    return _IDENTITIES.get(kind) or IdentityEntry(kind, kind, "•", False)


def account_kind(kind: str) -> AccountKind:
    """The entry of an account kind; KeyError for a kind that does not exist."""
    return _ACCOUNT_KINDS[kind]


def account_kinds() -> tuple[AccountKind, ...]:
    return tuple(_ACCOUNT_KINDS.values())


def secret_keys() -> frozenset[str]:
    """Every account kind's secret keys: a config holding one inline is checked for who can read it."""
    return frozenset(key for kind in _ACCOUNT_KINDS.values() for key in kind.secret_keys)


def measure(channel_id: str, text: str, settings: LengthSettings | None = None) -> LengthVerdict:
    """How long `text` is on this channel, and whether it may be sent (see catalog.length)."""
    entry = channel(channel_id)
    return judge(entry.length, entry.name, text, settings)


def enforce_length(channel_id: str, text: str, settings: LengthSettings | None = None) -> LengthVerdict:
    """What adapters call before sending: PermanentError("too_long") with the verdict's sentence
    when the text does not fit. (A blank text is the adapter's to refuse, in its own words.)"""
    verdict = measure(channel_id, text, settings)
    if verdict.refusal:
        raise PermanentError(verdict.refusal, "too_long")
    return verdict


@dataclass(frozen=True)
class WindowState:
    """What a channel's reply window allows at one moment."""

    hours: int | None  # the window's length; None: the channel has no window
    left: float | None  # seconds of free text left (negative: closed that long ago); None without a window
    wrote: bool  # the customer has written at all
    templates: bool  # outside the window an approved template may still be sent
    human_agent_left: float | None  # Meta: seconds a HUMAN_AGENT reply stays allowed; None: no such rule

    @property
    def free_text(self) -> bool:
        return self.hours is None or (self.left is not None and self.left > 0)

    @property
    def human_agent(self) -> bool:
        """Only a HUMAN_AGENT-tagged reply may go now (the window closed, day 7 not reached)."""
        return not self.free_text and self.human_agent_left is not None and self.human_agent_left > 0


def window_state(channel_id: str, last_inbound_at: float | None, now: float | None = None) -> WindowState:
    """The reply window of `channel_id` when the customer last wrote at `last_inbound_at`."""
    entry = channel(channel_id)
    if entry.reply_window_hours is None:
        return WindowState(None, None, bool(last_inbound_at), entry.templates, None)
    now = time.time() if now is None else now
    wrote = bool(last_inbound_at)
    since = now - (last_inbound_at or 0.0) if wrote else None
    left = entry.reply_window_hours * 3600 - since if since is not None else -1.0
    agent = None
    if entry.human_agent_days is not None:
        agent = entry.human_agent_days * 86400 - since if since is not None else -1.0
    return WindowState(entry.reply_window_hours, left, wrote, entry.templates, agent)
