"""Automation rules as the config writes them (`[[rules]]`): an event, conditions, actions.

    [[rules]]
    name = "cafes"
    on = "conversation_opened"
    text_contains = ["café", "restaurant"]
    add_tag = ["trade"]
    assign = ["ana", "ben"]

Events: `message_received`, `conversation_opened`, `conversation_reopened` (from messages the
store saw), and the time-based `no_reply` and `unassigned` (`after_minutes` since the customer's
unanswered message) and `sla_breaching` (`after_minutes` before an SLA clock is due; 0: when it
is). Conditions (all must hold): `channel`, `account`, `tag`, `not_tag`, `text_contains`,
`text_matches`, `attribute`, `hours` ("inside" / "outside" business hours, at the event).
Actions, applied in this order: `add_tag`, `assign` (an agent, or a list to take in turn),
`add_note`, `reply_template` (one name, or a table per channel), `set_status`, `snooze_minutes`,
`notify`.

Parsing and matching only (pure): console/rules/duty.py finds the events and applies actions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from console.hours import BusinessHours

MESSAGE_EVENTS = ("message_received", "conversation_opened", "conversation_reopened")
TIME_EVENTS = ("no_reply", "unassigned", "sla_breaching")
EVENTS = MESSAGE_EVENTS + TIME_EVENTS
# A rule cannot reopen: every event concerns a conversation that waits on us already, and a
# reopening by a rule would start a clock no customer started (actions never trigger time rules).
STATUSES = ("waiting", "done")
TAG_RE = re.compile(r"^[\w][\w./-]{0,39}$")
DEFAULT_REPLY_EVERY_HOURS = 24


@dataclass(frozen=True)
class Subject:
    """What a rule looks at: one conversation at the moment of one event."""

    conversation_id: int
    customer_id: int
    customer_name: str
    channel: str
    account: str
    status: str
    assignee: str | None
    tags: frozenset[str]
    attributes: dict
    text: str  # the message (message events) or the customer's latest message
    at: float  # when the event happened
    last_inbound_at: float | None = None  # the customer's latest message (the channel's reply window)


@dataclass(frozen=True)
class Rule:
    name: str
    on: str
    after: float = 0.0  # seconds (time-based events)
    channels: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    not_tags: frozenset[str] = frozenset()
    text_contains: tuple[str, ...] = ()
    text_matches: re.Pattern | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    hours: str | None = None  # "inside" | "outside"
    add_tags: tuple[str, ...] = ()
    assign: tuple[str, ...] = ()
    add_note: str | None = None
    reply: tuple[tuple[str, str], ...] = ()  # (channel or "*", template name)
    set_status: str | None = None
    snooze: float | None = None  # seconds
    notify: str | None = None
    notify_to: str | None = None
    reply_every: float = DEFAULT_REPLY_EVERY_HOURS * 3600.0
    line: int | None = field(default=None, compare=False)

    @property
    def time_based(self) -> bool:
        return self.on in TIME_EVENTS

    def template_for(self, channel: str) -> str | None:
        table = dict(self.reply)
        return table.get(channel) or table.get("*")

    def matches(self, subject: Subject, hours: BusinessHours) -> bool:
        if self.channels and subject.channel not in self.channels:
            return False
        if self.accounts and subject.account not in self.accounts:
            return False
        if self.tags and not (self.tags & subject.tags):
            return False
        if self.not_tags & subject.tags:
            return False
        text = subject.text.casefold()
        if self.text_contains and not any(word in text for word in self.text_contains):
            return False
        if self.text_matches is not None and not self.text_matches.search(subject.text):
            return False
        for key, value in self.attributes:
            if str(subject.attributes.get(key, "")).strip().casefold() != value:
                return False
        if self.hours is not None:
            inside = hours.is_open(subject.at)
            if inside != (self.hours == "inside"):
                return False
        return True

    def describe(self) -> str:
        """'on message_received, if text contains wholesale: tag #wholesale, assign ana'."""
        when = self.on.replace("_", " ")
        if self.on in ("no_reply", "unassigned"):
            when += f" after {_span(self.after)}"
        elif self.on == "sla_breaching":
            when += f" ({_span(self.after)} before due)" if self.after else " (when due)"
        conditions = []
        if self.channels:
            conditions.append("channel " + "/".join(sorted(self.channels)))
        if self.accounts:
            conditions.append("account " + "/".join(sorted(self.accounts)))
        if self.tags:
            conditions.append("tagged " + "/".join("#" + t for t in sorted(self.tags)))
        if self.not_tags:
            conditions.append("not tagged " + "/".join("#" + t for t in sorted(self.not_tags)))
        if self.text_contains:
            conditions.append("text contains " + " or ".join(repr(w) for w in self.text_contains))
        if self.text_matches is not None:
            conditions.append(f"text matches /{self.text_matches.pattern}/")
        for key, value in self.attributes:
            conditions.append(f"{key} is {value!r}")
        if self.hours:
            conditions.append(f"{self.hours} business hours")
        return f"{when}{', if ' + ', '.join(conditions) if conditions else ''}: {', '.join(self.planned())}"

    def planned(self, channel: str | None = None) -> list[str]:
        """What the rule does, in words (for a channel: which template it replies with)."""
        out = [f"tag #{t}" for t in self.add_tags]
        if len(self.assign) == 1:
            out.append(f"assign {self.assign[0]}")
        elif self.assign:
            out.append(f"assign in turn to {', '.join(self.assign)}")
        if self.add_note:
            out.append("add a note")
        if self.reply:
            if channel is not None:
                template = self.template_for(channel)
                out.append(f"reply with '{template}'" if template else f"no reply template for {channel}")
            else:
                out.append("reply with " + ", ".join(f"'{t}'" + ("" if c == "*" else f" on {c}") for c, t in self.reply))
        if self.set_status:
            out.append(f"set {self.set_status}")
        if self.snooze:
            out.append(f"snooze {_span(self.snooze)}")
        if self.notify:
            out.append(f"notify {self.notify_to or 'everyone'}")
        return out


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes and minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes and minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


_KEYS = {"name", "on", "after_minutes", "channel", "account", "tag", "not_tag", "text_contains", "text_matches",
         "attribute", "hours", "add_tag", "assign", "add_note", "reply_template", "set_status", "snooze_minutes",
         "notify", "notify_to", "reply_every_hours"}


def parse_rules(tables, err, templates: dict[str, str], accounts: set[str], channels: set[str]) -> list[Rule]:
    """`[[rules]]` tables; `err(index, key, message)` returns the ConfigError to raise."""
    if not isinstance(tables, list):
        raise err(None, "", "expected [[rules]] tables")
    rules, names = [], set()
    for index, table in enumerate(tables):
        def fail(key: str, message: str):
            return err(index, key, message)

        for key in table:
            if key not in _KEYS:
                raise fail(key, f"unknown key; expected one of {', '.join(sorted(_KEYS))}")
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            raise fail("name", 'every rule needs a name, e.g. name = "wholesale"')
        if name in names:
            raise fail("name", f"two rules are named {name!r}; names must be unique")
        names.add(name)
        on = table.get("on")
        if on not in EVENTS:
            raise fail("on", f"expected one of {', '.join(EVENTS)}, got {on!r}")
        after = table.get("after_minutes", 30 if on == "sla_breaching" else None)
        if on in ("no_reply", "unassigned") and after is None:
            raise fail("after_minutes", f"'{on}' needs after_minutes, e.g. after_minutes = 30")
        if after is not None and on not in TIME_EVENTS:
            raise fail("after_minutes", f"only no_reply, unassigned and sla_breaching take after_minutes, not {on}")
        if after is not None and (isinstance(after, bool) or not isinstance(after, (int, float)) or after < 0):
            raise fail("after_minutes", f"expected a number of minutes, got {after!r}")

        def names_list(key: str, check=None) -> frozenset[str]:
            value = table.get(key, [])
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise fail(key, "expected a name or a list of names")
            out = frozenset(v.strip() for v in value)
            for item in out:
                if check is not None and not check(item):
                    raise fail(key, f"unknown {key} {item!r}")
            return out

        tags = frozenset(t.lower().lstrip("#") for t in names_list("tag"))
        not_tags = frozenset(t.lower().lstrip("#") for t in names_list("not_tag"))
        add_tags = tuple(sorted(t.lower().lstrip("#") for t in names_list("add_tag")))
        for tag in (*tags, *not_tags, *add_tags):
            if not TAG_RE.match(tag):
                raise fail("add_tag" if tag in add_tags else "tag",
                           f"'{tag}' is not a tag: use letters, digits, '-', '_', '.' or '/' (at most 40)")
        contains = tuple(w.casefold() for w in sorted(names_list("text_contains")))
        pattern = table.get("text_matches")
        compiled = None
        if pattern is not None:
            if not isinstance(pattern, str) or not pattern:
                raise fail("text_matches", "expected a regular expression as a string")
            try:
                compiled = re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                raise fail("text_matches", f"not a regular expression: {exc}") from None
        attribute = table.get("attribute", {})
        if not isinstance(attribute, dict) or not all(isinstance(v, (str, int, float)) for v in attribute.values()):
            raise fail("attribute", 'expected a table of attribute = value, e.g. attribute = { city = "Berlin" }')
        hours = table.get("hours")
        if hours is not None and hours not in ("inside", "outside"):
            raise fail("hours", f'expected "inside" or "outside" (business hours), got {hours!r}')
        assign = table.get("assign", [])
        assign = [assign] if isinstance(assign, str) else assign
        if not isinstance(assign, list) or not all(isinstance(a, str) and a.strip() for a in assign):
            raise fail("assign", 'expected an agent ("ana") or a list to assign in turn (["ana", "ben"])')
        note = table.get("add_note")
        if note is not None and (not isinstance(note, str) or not note.strip()):
            raise fail("add_note", "expected the note's text")
        reply = table.get("reply_template")
        pairs: list[tuple[str, str]] = []
        if isinstance(reply, str):
            pairs = [("*", reply)]
        elif isinstance(reply, dict):
            for channel, template in reply.items():
                channel = "*" if channel == "default" else channel
                if channel != "*" and channel not in channels:
                    raise fail("reply_template", f"unknown channel {channel!r}; use a channel name or default")
                if not isinstance(template, str):
                    raise fail("reply_template", f"expected a template name for {channel}")
                pairs.append((channel, template))
        elif reply is not None:
            raise fail("reply_template", 'expected a template name, or a table such as { sms = "closed_sms", default = "closed" }')
        for _, template in pairs:
            if template not in templates:
                raise fail("reply_template", f"no template {template!r} in [templates]")
        status = table.get("set_status")
        if status is not None and status not in STATUSES:
            raise fail("set_status", f"expected waiting or done (snooze_minutes snoozes; a rule never reopens), "
                                     f"got {status!r}")
        snooze = table.get("snooze_minutes")
        if snooze is not None and (isinstance(snooze, bool) or not isinstance(snooze, (int, float)) or snooze <= 0):
            raise fail("snooze_minutes", f"expected a positive number of minutes, got {snooze!r}")
        if status and snooze:
            raise fail("snooze_minutes", "give set_status or snooze_minutes, not both")
        notify = table.get("notify")
        if notify is not None and (not isinstance(notify, str) or not notify.strip()):
            raise fail("notify", "expected the notice's text")
        notify_to = table.get("notify_to")
        if notify_to is not None and not isinstance(notify_to, str):
            raise fail("notify_to", "expected an agent's name")
        every = table.get("reply_every_hours", DEFAULT_REPLY_EVERY_HOURS)
        if isinstance(every, bool) or not isinstance(every, (int, float)) or every < 0:
            raise fail("reply_every_hours", f"expected a number of hours, got {every!r}")
        rule = Rule(
            name=name.strip(), on=on, after=float(after or 0) * 60,
            channels=names_list("channel", lambda c: c in channels), accounts=names_list("account", lambda a: a in accounts),
            tags=tags, not_tags=not_tags, text_contains=contains, text_matches=compiled,
            attributes=tuple(sorted((str(k), str(v).strip().casefold()) for k, v in attribute.items())),
            hours=hours, add_tags=add_tags, assign=tuple(a.strip() for a in assign),
            add_note=note.strip() if note else None, reply=tuple(pairs), set_status=status,
            snooze=float(snooze) * 60 if snooze else None, notify=notify.strip() if notify else None,
            notify_to=notify_to, reply_every=float(every) * 3600, line=None,
        )
        if not rule.planned():
            raise fail("add_tag", "the rule does nothing: give it an action (add_tag, assign, add_note, "
                                  "reply_template, set_status, snooze_minutes or notify)")
        rules.append(rule)
    return rules
