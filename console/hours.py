"""The workspace's business hours: one calendar (opening hours per weekday, holidays, a time zone)
that the reports, the SLA clocks, the out-of-hours rules and the campaign sending windows share.

Pure arithmetic on UTC epoch seconds: no store, no UI, no clock of its own. The interface other
parts use is small on purpose:

- `is_open(t)`: whether the shop is open at `t`;
- `next_open(t)`: `t` itself when open, else the next moment it opens (`math.inf` if never);
- `business_seconds(a, b)`: how many open seconds lie between `a` and `b`;
- `add(t, seconds)`: the moment `seconds` of open time after `t` (SLA due times);
- `ledger(a, b)`: the same as `business_seconds` for many intervals inside [a, b] at once, by
  bisection over the open intervals (the reports measure tens of thousands of them).

Hours are local wall-clock times in `zone`, so a day that gains or loses an hour to daylight
saving keeps its 09:00 opening. A holiday closes the whole local date. A calendar with no hours
configured is `always_open()`: business time is then calendar time.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 86400.0
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# How far `next_open` and `add` look ahead before deciding a calendar is never open (a year of
# holidays in a row is a typo, not a shop).
_HORIZON_DAYS = 800


class HoursError(ValueError):
    """A business-hours setting that cannot be understood; the message says what is expected."""


def local_zone_name() -> str:
    """The machine's IANA time zone (TZ, /etc/timezone, /etc/localtime), else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                ZoneInfo(name)
                return name
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return "UTC"


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name; HoursError naming it when it does not exist."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"unknown time zone {name!r}; use an IANA name such as Europe/London or "
                         "America/New_York") from None


def parse_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """'09:00-12:30, 13:30-17:00' -> ((540, 750), (810, 1020)) in minutes; 'closed' or '' -> ()."""
    if text.strip().lower() in ("", "closed"):
        return ()
    ranges = []
    for part in text.split(","):
        match = _RANGE.match(part)
        if not match:
            raise HoursError(f"expected opening hours like \"09:00-17:30\" (several separated by commas), "
                             f"or \"closed\"; got {part.strip()!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 1440:
            raise HoursError(f"{part.strip()!r} is not a time of day (00:00 to 24:00)")
        if end <= start:
            raise HoursError(f"{part.strip()!r} ends before it starts; split a shift past midnight over two days")
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        if start < end:
            raise HoursError(f"the ranges in {text!r} overlap")
    return tuple(ranges)


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours per weekday (Monday first, minutes of the local day), holidays and a zone."""

    zone_name: str = "UTC"
    week: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7
    holidays: frozenset[dt.date] = frozenset()
    always: bool = False  # open all the time: business time is calendar time
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", zone(self.zone_name))

    @classmethod
    def always_open(cls, zone_name: str = "UTC") -> "BusinessHours":
        return cls(zone_name, ((0, 1440),) * 7, frozenset(), always=True)

    @property
    def tz(self) -> ZoneInfo:
        return self._zone

    @property
    def configured(self) -> bool:
        """Whether the workspace has opening hours (else every moment is business time)."""
        return not self.always

    # ---- one day ------------------------------------------------------------------------------
    def _day_intervals(self, day: dt.date) -> tuple[tuple[float, float], ...]:
        """The open intervals of one local date, as UTC epoch seconds (cached: the list's badges
        and the reports ask about the same days again and again)."""
        return _day_intervals(self, day)

    def _compute_day(self, day: dt.date) -> tuple[tuple[float, float], ...]:
        if day in self.holidays:
            return ()
        return tuple((self._at(day, start), self._at(day, end)) for start, end in self.week[day.weekday()])

    def _at(self, day: dt.date, minute: int) -> float:
        if minute >= 1440:
            day, minute = day + dt.timedelta(days=1), minute - 1440
        moment = dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self._zone)
        return moment.timestamp()

    def local_date(self, t: float) -> dt.date:
        return dt.datetime.fromtimestamp(t, self._zone).date()

    def intervals(self, a: float, b: float):
        """Open intervals overlapping [a, b), clipped to it, in order."""
        if b <= a:
            return
        if self.always:
            yield a, b
            return
        day = self.local_date(a) - dt.timedelta(days=1)  # a shift of yesterday may run into today
        last = self.local_date(b)
        while day <= last:
            for start, end in self._day_intervals(day):
                if end > a and start < b:
                    yield max(start, a), min(end, b)
            day += dt.timedelta(days=1)

    # ---- the interface ------------------------------------------------------------------------
    def is_open(self, t: float) -> bool:
        if self.always:
            return True
        for start, end in self._day_intervals(self.local_date(t)):
            if start <= t < end:
                return True
        return False

    def next_open(self, t: float) -> float:
        """`t` when open at `t`, else the next moment the shop opens (math.inf if it never does)."""
        if self.always:
            return t
        day = self.local_date(t)
        for _ in range(_HORIZON_DAYS):
            for start, end in self._day_intervals(day):
                if t < end:
                    return max(start, t)
            day += dt.timedelta(days=1)
        return math.inf

    def next_close(self, t: float) -> float:
        """When the current opening ends (t itself when closed; math.inf when always open)."""
        if self.always:
            return math.inf
        for start, end in self._day_intervals(self.local_date(t)):
            if start <= t < end:
                return end
        return t

    def business_seconds(self, a: float, b: float) -> float:
        """Open seconds between `a` and `b` (0 when b <= a)."""
        if b <= a:
            return 0.0
        if self.always:
            return b - a
        return sum(end - start for start, end in self.intervals(a, b))

    def add(self, t: float, seconds: float) -> float:
        """The moment at which `seconds` of open time have passed since `t`."""
        if self.always:
            return t + seconds
        left = seconds
        day = self.local_date(t) - dt.timedelta(days=1)
        for _ in range(_HORIZON_DAYS):
            for start, end in self._day_intervals(day):
                start = max(start, t)
                if end <= start:
                    continue
                if end - start >= left:
                    return start + left
                left -= end - start
            day += dt.timedelta(days=1)
        return math.inf

    def ledger(self, a: float, b: float) -> "Ledger":
        """Business seconds between any two moments inside [a, b], by bisection."""
        return Ledger(self, a, b)

    def describe_now(self, t: float) -> str:
        """'open until 17:30' / 'closed, opens Mon 09:00' / 'open all hours'."""
        if self.always:
            return "open all hours (no [business_hours] configured)"
        if self.is_open(t):
            until = self.next_close(t)
            return f"open until {dt.datetime.fromtimestamp(until, self._zone):%H:%M}"
        opens = self.next_open(t)
        if opens == math.inf:
            return "closed (no opening hours)"
        return f"closed, opens {dt.datetime.fromtimestamp(opens, self._zone):%a %H:%M}"


@functools.lru_cache(maxsize=8192)
def _day_intervals(hours: BusinessHours, day: dt.date) -> tuple[tuple[float, float], ...]:
    return hours._compute_day(day)


class Ledger:
    """Cumulative open seconds over a span, for O(log n) `between(a, b)` inside it.

    Moments outside the span are clamped to it, so build the ledger over everything measured."""

    def __init__(self, hours: BusinessHours, a: float, b: float):
        self.always = hours.always
        self.a, self.b = a, b
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.before: list[float] = []  # open seconds before each interval
        total = 0.0
        if not self.always:
            for start, end in hours.intervals(a, b):
                self.starts.append(start)
                self.ends.append(end)
                self.before.append(total)
                total += end - start

    def until(self, t: float) -> float:
        """Open seconds from the span's start to `t`."""
        index = bisect.bisect_right(self.starts, t) - 1
        if index < 0:
            return 0.0
        return self.before[index] + min(t, self.ends[index]) - self.starts[index]

    def between(self, a: float, b: float) -> float:
        if b <= a:
            return 0.0
        if self.always:
            return b - a
        return self.until(b) - self.until(a)


def parse_holidays(values: list) -> frozenset[dt.date]:
    days = set()
    for value in values:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            days.add(value)
            continue
        try:
            days.add(dt.date.fromisoformat(str(value)))
        except ValueError:
            raise HoursError(f"expected dates like \"2026-12-25\", got {value!r}") from None
    return frozenset(days)


def parse_settings(table, err) -> BusinessHours:
    """`[business_hours]`: `timezone`, one key per weekday, `holidays`. Without the table the
    shop is always open (in the machine's zone). `err(key, message)` returns the ConfigError."""
    if table is None:
        return BusinessHours.always_open(local_zone_name())
    if not isinstance(table, dict):
        raise err("", "expected a [business_hours] table")
    known = {"timezone", "holidays", *WEEKDAYS}
    for key in table:
        if key not in known:
            raise err(key, f"unknown key; expected timezone, holidays or a weekday ({', '.join(WEEKDAYS)})")
    name = table.get("timezone", local_zone_name())
    if not isinstance(name, str):
        raise err("timezone", f"expected an IANA zone name such as \"Europe/London\", got {name!r}")
    week = []
    for day in WEEKDAYS:
        value = table.get(day, "closed")
        if not isinstance(value, str):
            raise err(day, f'expected opening hours as a string, e.g. {day} = "09:00-17:30" or "closed"')
        try:
            week.append(parse_ranges(value))
        except HoursError as exc:
            raise err(day, str(exc)) from None
    holidays = table.get("holidays", [])
    if not isinstance(holidays, list):
        raise err("holidays", 'expected a list of dates, e.g. holidays = ["2026-12-25", 2026-12-26]')
    try:
        hours = BusinessHours(name, tuple(week), parse_holidays(holidays))
    except HoursError as exc:
        raise err("timezone" if "zone" in str(exc) else "holidays", str(exc)) from None
    if not any(week):
        raise err("monday", "the shop is never open: give at least one weekday opening hours")
    return hours
