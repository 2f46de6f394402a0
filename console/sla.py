"""Service-level targets: the policies of the config (`[[sla]]`) and the clocks they run.

A policy sets up to three targets — first response, next response, resolution — counted in
business hours (the workspace's one calendar, console/hours.py) or in calendar hours, and says
which conversations it covers (channels, accounts, customer tags). The first policy that matches
a conversation applies; `[workspace] response_target_minutes` is the default policy that covers
the rest, so every waiting customer has a clock.

A clock runs only while we owe the customer something: from their message we have not answered
(an *owed* interval) until our reply. While we wait on the customer (our reply was the last word)
every clock is paused, and the resolution clock counts only the owed intervals of the episode.

Pure functions: no store, no UI. The engine's SLA duty keeps each open conversation's most
urgent clock in the store (console/store/sla.py); the list, the filter and the rules read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.hours import BusinessHours

SOON = 3600.0  # "breaching soon": due within this many seconds (or already late)
KINDS = ("first_response", "next_response", "resolution")
KIND_LABELS = {"first_response": "first response", "next_response": "next response", "resolution": "resolution"}


@dataclass(frozen=True)
class SlaPolicy:
    name: str
    first_response: float | None = None  # seconds
    next_response: float | None = None
    resolution: float | None = None
    business_hours: bool = True
    channels: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()

    def matches(self, channel: str, account: str, tags) -> bool:
        if self.channels and channel not in self.channels:
            return False
        if self.accounts and account not in self.accounts:
            return False
        if self.tags and not (self.tags & set(tags)):
            return False
        return True

    def target(self, kind: str) -> float | None:
        return {"first_response": self.first_response, "next_response": self.next_response,
                "resolution": self.resolution}[kind]

    def describe(self) -> str:
        parts = [f"{KIND_LABELS[k]} {_minutes(self.target(k))}" for k in KINDS if self.target(k)]
        scope = []
        if self.channels:
            scope.append("channels " + ", ".join(sorted(self.channels)))
        if self.accounts:
            scope.append("accounts " + ", ".join(sorted(self.accounts)))
        if self.tags:
            scope.append("tags " + ", ".join("#" + t for t in sorted(self.tags)))
        hours = "business hours" if self.business_hours else "calendar hours"
        return f"{', '.join(parts) or 'no targets'} ({hours}); {'; '.join(scope) or 'everything else'}"


def _minutes(seconds: float | None) -> str:
    if not seconds:
        return "-"
    minutes = int(seconds // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def default_policy(response_target_minutes: int, business_hours: bool) -> SlaPolicy:
    """`response_target_minutes` as the policy of everything no `[[sla]]` covers."""
    seconds = response_target_minutes * 60.0
    return SlaPolicy("default", seconds, seconds, None, business_hours)


def policy_for(policies: list[SlaPolicy], channel: str, account: str, tags) -> SlaPolicy | None:
    for policy in policies:
        if policy.matches(channel, account, tags):
            return policy
    return None


@dataclass(frozen=True)
class Episode:
    """What a clock needs to know about a conversation's current episode (console/store/episodes.py)."""

    started_at: float
    first_response_at: float | None
    owed_since: float | None  # the customer's first message we have not answered yet
    owed: tuple[tuple[float, float], ...] = ()  # earlier owed intervals of this episode, answered
    resolved_at: float | None = None


@dataclass(frozen=True)
class Clock:
    kind: str
    policy: str
    started_at: float
    due_at: float
    target: float  # seconds of (business or calendar) time the target allows
    business: bool


def clocks(policies: list[SlaPolicy], hours: BusinessHours, channel: str, account: str, tags, episode: Episode,
           now: float) -> list[Clock]:
    """The running clocks of an episode (none while we wait on the customer). Each target comes
    from the first matching policy that sets it: a policy that leaves one out lets the next
    matching policy (finally the default) set it."""
    if episode.owed_since is None or episode.resolved_at is not None:
        return []
    response = "first_response" if episode.first_response_at is None else "next_response"
    out = []
    for kind in (response, "resolution"):
        policy = next((p for p in policies if p.target(kind) and p.matches(channel, account, tags)), None)
        if policy is None:
            continue
        target = policy.target(kind)
        cal = hours if policy.business_hours else None
        if kind == "resolution":
            due, started = _resolution_due(cal, episode, target, now), episode.started_at
        else:
            due, started = _add(cal, episode.owed_since, target), episode.owed_since
        out.append(Clock(kind, policy.name, started, due, target, policy.business_hours))
    return out


def urgent(found: list[Clock]) -> Clock | None:
    return min(found, key=lambda c: c.due_at) if found else None


def _add(cal: BusinessHours | None, t: float, seconds: float) -> float:
    return cal.add(t, seconds) if cal is not None else t + seconds


def _between(cal: BusinessHours | None, a: float, b: float) -> float:
    return cal.business_seconds(a, b) if cal is not None else max(0.0, b - a)


def _resolution_due(cal: BusinessHours | None, episode: Episode, target: float, now: float) -> float:
    """When the owed time of the episode reaches `target`: inside an earlier owed interval (it is
    already late), or, if the current owed interval goes on, that far after now."""
    left = target
    for start, end in (*episode.owed, (episode.owed_since, max(now, episode.owed_since))):
        spent = _between(cal, start, end)
        if spent >= left:
            return _add(cal, start, left)
        left -= spent
    return _add(cal, max(now, episode.owed_since), left)


def time_left(clock: Clock, hours: BusinessHours, now: float) -> float:
    """Seconds of the clock's own time until it is due; negative: late by that much."""
    cal = hours if clock.business else None
    if now <= clock.due_at:
        return _between(cal, now, clock.due_at)
    return -_between(cal, clock.due_at, now)


def grade(clock: Clock, hours: BusinessHours, now: float) -> str:
    """'fine', 'close' (half the target gone) or 'late': the list's green / amber / red."""
    left = time_left(clock, hours, now)
    if left <= 0:
        return "late"
    if left < clock.target / 2:
        return "close"
    return "fine"


_EXAMPLES = {"channels": "sms", "accounts": "support", "tags": "wholesale"}


def parse_policies(tables, err) -> list[SlaPolicy]:
    """`[[sla]]` tables; `err(index, key, message)` returns the ConfigError to raise."""
    if not isinstance(tables, list):
        raise err(None, "", "expected [[sla]] tables")
    known = {"name", "first_response_minutes", "next_response_minutes", "resolution_minutes", "business_hours",
             "channels", "accounts", "tags"}
    policies, names = [], set()
    for index, table in enumerate(tables):
        for key in table:
            if key not in known:
                raise err(index, key, f"unknown key; expected one of {', '.join(sorted(known))}")
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            raise err(index, "name", "every [[sla]] policy needs a name, e.g. name = \"wholesale\"")
        if name in names or name == "default":
            raise err(index, "name", f"{name!r} is taken ('default' is response_target_minutes); names must be unique")
        names.add(name)
        targets = {}
        for key in ("first_response_minutes", "next_response_minutes", "resolution_minutes"):
            value = table.get(key)
            if value is None:
                targets[key] = None
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise err(index, key, f"expected a positive number of minutes, got {value!r}")
            targets[key] = float(value) * 60
        if not any(targets.values()):
            raise err(index, "first_response_minutes",
                      "a policy needs at least one of first_response_minutes, next_response_minutes, resolution_minutes")
        business = table.get("business_hours", True)
        if not isinstance(business, bool):
            raise err(index, "business_hours", f"expected true or false, got {business!r}")
        scope = {}
        for key in ("channels", "accounts", "tags"):
            value = table.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise err(index, key, f"expected a list of names, e.g. {key} = [\"{_EXAMPLES[key]}\"]")
            scope[key] = frozenset(v.strip().lower().lstrip("#") if key == "tags" else v.strip() for v in value)
        policies.append(SlaPolicy(name, targets["first_response_minutes"], targets["next_response_minutes"],
                                  targets["resolution_minutes"], business, scope["channels"], scope["accounts"],
                                  scope["tags"]))
    return policies
