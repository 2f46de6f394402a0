"""A campaign as data: its steps, each with a text per channel and a rule for the channel.

A step says what to send on each channel it has a text for (an email's subject and body, an
SMS, a WhatsApp approved template with its variables or a text, a Telegram, Mastodon,
Messenger or Instagram text), which channel a customer gets it on (`last_used`: the channel
they last wrote on, then the step's order; `order`: the step's order), and how long after the
previous step it follows (per recipient: after *their* previous message went). Stored as JSON
by console/store/campaigns.py; no I/O here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

RULES = ("last_used", "order")
STATES = ("draft", "running", "paused", "cancelled", "finished")


@dataclass
class ChannelText:
    subject: str = ""  # email
    body: str = ""
    template: str = ""  # WhatsApp: an approved template's name (the account's [accounts.templates])
    variables: tuple[str, ...] = ()  # its {{1}}, {{2}}..., each with placeholders

    def to_json(self) -> dict:
        out: dict = {"body": self.body}
        if self.subject:
            out["subject"] = self.subject
        if self.template:
            out["template"] = self.template
            out["variables"] = list(self.variables)
        return out

    @classmethod
    def from_json(cls, data: dict) -> "ChannelText":
        return cls(str(data.get("subject", "")), str(data.get("body", "")), str(data.get("template", "")),
                   tuple(str(v) for v in data.get("variables", ())))

    @property
    def empty(self) -> bool:
        return not (self.body.strip() or self.template)


@dataclass
class Step:
    position: int = 1
    delay_seconds: float = 0.0  # after the recipient's previous step went
    rule: str = "last_used"
    order: tuple[str, ...] = ()  # preferred channels, first first; the fallback order
    texts: dict[str, ChannelText] = field(default_factory=dict)
    id: int | None = None

    @property
    def channels(self) -> list[str]:
        """The channels this step has a text for, in its order then the catalog's."""
        from console.channels import catalog  # here: the store loads campaigns and knows no channel

        have = [c for c, t in self.texts.items() if not t.empty]
        ranked = [c for c in self.order if c in have]
        rest = [e.id for e in catalog.channels() if e.id in have and e.id not in ranked]
        return ranked + rest + [c for c in have if c not in ranked and c not in rest]

    def candidates(self, last_used: str | None) -> list[str]:
        """The channels to try for one customer, in order (restraint takes the first usable)."""
        channels = self.channels
        if self.rule == "last_used" and last_used in channels:
            return [last_used] + [c for c in channels if c != last_used]
        return channels

    def texts_json(self) -> str:
        return json.dumps({c: t.to_json() for c, t in self.texts.items() if not t.empty}, sort_keys=True)

    @staticmethod
    def texts_from(raw: str) -> dict[str, ChannelText]:
        try:
            data = json.loads(raw or "{}")
        except ValueError:
            return {}
        return {str(c): ChannelText.from_json(t) for c, t in data.items() if isinstance(t, dict)}


@dataclass
class Campaign:
    id: int | None
    name: str
    segment_id: int | None = None
    segment_name: str = ""
    state: str = "draft"
    steps: list[Step] = field(default_factory=list)
    reply_days: int = 7  # a message from the customer within this many days counts as a reply
    convert_on: str = ""  # "tag:ordered" or "attribute:last_order": set within convert_days = converted
    convert_days: int = 7
    holdout: float = 0.0  # share of the segment kept out at random, to measure the lift
    launched_at: float | None = None
    finished_at: float | None = None
    launched_by: str = ""

    @property
    def editable(self) -> bool:
        return self.state == "draft"


def delay_words(seconds: float) -> str:
    """'at once', '3 days', '2 h'."""
    if seconds <= 0:
        return "at once"
    if seconds % 86400 == 0:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 60)} min"


def parse_delay(text: str) -> float | None:
    """'3d', '12h', '30m', '0' -> seconds; None when unreadable."""
    text = text.strip().lower().replace(" ", "")
    if text in ("0", "now", "atonce"):
        return 0.0
    for suffix, size in (("days", 86400), ("day", 86400), ("d", 86400), ("h", 3600), ("m", 60), ("w", 604800)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * size
    return None


def convert_rule_problem(text: str) -> str:
    """Why a `convert_on` value is unusable ('' when fine): tag:NAME or attribute:NAME."""
    kind, sep, name = text.strip().partition(":")
    if not text.strip():
        return ""
    if not sep or kind not in ("tag", "attribute") or not name.strip():
        return "conversion is written tag:NAME (a tag set) or attribute:NAME (an attribute set), e.g. tag:ordered"
    return ""
