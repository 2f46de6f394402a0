"""The figures of a period, from what the store read (console/store/metrics.py `report_data`).

For a period of local days in the business calendar's zone: new conversations per day; first
response time and resolution time, median and 90th percentile, in business hours and in calendar
hours, and the share of first responses within the SLA target; customers waiting now and the
oldest wait; replies per agent; arrivals by weekday and hour; the backlog (conversations not
resolved) at the end of each day; satisfaction ratings. Overall, and per channel, per agent
(the agent who answered first) and per tag (of the customer).

A *conversation* here is an episode (console/store/episodes.py): one need of a customer, from
their first message to its resolution. Percentiles interpolate linearly between ranks (the
median of 2, 4 and 6, 8 is 5). Pure: no store, no UI; `to_dict`, `csv_rows` and `text` give the
same figures to scripts and people (`console report`).
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import math
from dataclasses import dataclass, field

from console.hours import BusinessHours
from console.sla import SlaPolicy

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ELSEWHERE = "(elsewhere)"  # replies the store learnt of with no agent: another mail client, the history


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) of sorted `values`, interpolating between ranks; None when empty."""
    if not values:
        return None
    position = (len(values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


@dataclass
class Durations:
    """Median and p90 of a set of durations, in business and in calendar seconds."""

    count: int = 0
    median: float | None = None
    p90: float | None = None
    median_calendar: float | None = None
    p90_calendar: float | None = None

    @classmethod
    def of(cls, business: list[float], calendar: list[float]) -> "Durations":
        business, calendar = sorted(business), sorted(calendar)
        return cls(len(business), percentile(business, 0.5), percentile(business, 0.9),
                   percentile(calendar, 0.5), percentile(calendar, 0.9))


@dataclass
class Satisfaction:
    ratings: list[int] = field(default_factory=lambda: [0] * 5)  # how many 1s, 2s ... 5s

    @property
    def count(self) -> int:
        return sum(self.ratings)

    @property
    def average(self) -> float | None:
        return sum((n + 1) * c for n, c in enumerate(self.ratings)) / self.count if self.count else None

    @property
    def satisfied(self) -> float | None:
        """Share of 4s and 5s."""
        return (self.ratings[3] + self.ratings[4]) / self.count if self.count else None


@dataclass
class Figures:
    conversations: int = 0
    reopened: int = 0
    first_response: Durations = field(default_factory=Durations)
    unanswered: int = 0
    within_target: float | None = None  # share of first responses within their SLA target
    resolution: Durations = field(default_factory=Durations)
    replies: int = 0
    waiting: int | None = None  # customers waiting now (overall and per channel)
    oldest_wait: float | None = None  # seconds the longest-waiting customer has waited
    satisfaction: Satisfaction = field(default_factory=Satisfaction)


@dataclass
class Report:
    start: float
    end: float
    days: list[dt.date]
    zone: str
    business_hours: bool  # whether a calendar is configured (else business = calendar time)
    overall: Figures
    by_channel: dict[str, Figures]
    by_agent: dict[str, Figures]
    by_tag: dict[str, Figures]
    per_day: list[int]  # new conversations per local day
    grid: list[list[int]]  # arrivals [weekday][hour], local time
    backlog: list[int]  # conversations not resolved at the end of each day
    replies_by_agent: dict[str, int]

    def breakdown(self, name: str) -> dict[str, Figures]:
        return {"overall": {"all": self.overall}, "channel": self.by_channel, "agent": self.by_agent,
                "tag": self.by_tag}[name]

    # ---- for scripts ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "period": {"from": self.days[0].isoformat() if self.days else None,
                       "until": self.days[-1].isoformat() if self.days else None,
                       "time_zone": self.zone, "start": self.start, "end": self.end,
                       "business_hours_configured": self.business_hours},
            "overall": _figures_dict(self.overall),
            "by_channel": {k: _figures_dict(v) for k, v in self.by_channel.items()},
            "by_agent": {k: _figures_dict(v) for k, v in self.by_agent.items()},
            "by_tag": {k: _figures_dict(v) for k, v in self.by_tag.items()},
            "per_day": [{"date": d.isoformat(), "new_conversations": n, "backlog": b}
                        for d, n, b in zip(self.days, self.per_day, self.backlog)],
            "arrivals_by_weekday_hour": {WEEKDAY_NAMES[w]: row for w, row in enumerate(self.grid)},
            "replies_by_agent": self.replies_by_agent,
        }

    def csv_rows(self) -> list[list]:
        """One row per (breakdown, name): the same figures as the JSON, durations in seconds."""
        head = ["breakdown", "name", "conversations", "reopened", "first_response_count",
                "first_response_median_business_s", "first_response_p90_business_s",
                "first_response_median_calendar_s", "first_response_p90_calendar_s", "unanswered",
                "first_response_within_target", "resolved", "resolution_median_business_s",
                "resolution_p90_business_s", "resolution_median_calendar_s", "resolution_p90_calendar_s",
                "replies", "waiting_now", "oldest_wait_s", "ratings", "rating_average", "satisfied_share"]
        rows = [head]
        for breakdown in ("overall", "channel", "agent", "tag"):
            for name, fig in self.breakdown(breakdown).items():
                fr, rs, sat = fig.first_response, fig.resolution, fig.satisfaction
                rows.append([breakdown, name, fig.conversations, fig.reopened, fr.count, _r(fr.median), _r(fr.p90),
                             _r(fr.median_calendar), _r(fr.p90_calendar), fig.unanswered, _r(fig.within_target, 3),
                             rs.count, _r(rs.median), _r(rs.p90), _r(rs.median_calendar), _r(rs.p90_calendar),
                             fig.replies, "" if fig.waiting is None else fig.waiting, _r(fig.oldest_wait),
                             sat.count, _r(sat.average, 2), _r(sat.satisfied, 3)])
        return rows

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows(self.csv_rows())
        writer.writerow([])
        writer.writerow(["date", "new_conversations", "backlog"])
        for day, new, backlog in zip(self.days, self.per_day, self.backlog):
            writer.writerow([day.isoformat(), new, backlog])
        return out.getvalue()

    def text(self) -> str:
        """The report for a person reading a terminal or a mail (`console report`)."""
        o = self.overall
        lines = [f"Report {self.days[0]} to {self.days[-1]} ({self.zone})" if self.days else "Report",
                 f"  new conversations   {o.conversations} ({o.reopened} reopened)",
                 f"  first response      {describe(o.first_response)}"
                 + (f"; {o.within_target:.0%} within target" if o.within_target is not None else "")
                 + (f"; {o.unanswered} unanswered" if o.unanswered else ""),
                 f"  resolution          {describe(o.resolution)}",
                 f"  waiting now         {o.waiting or 0} customers"
                 + (f", the longest for {span(o.oldest_wait)}" if o.oldest_wait else ""),
                 f"  replies             {o.replies}",
                 f"  satisfaction        {describe_satisfaction(o.satisfaction)}",
                 "", "  new per day         " + " ".join(str(n) for n in self.per_day),
                 "  backlog per day     " + " ".join(str(n) for n in self.backlog)]
        for title, table in (("channel", self.by_channel), ("agent", self.by_agent), ("tag", self.by_tag)):
            if not table:
                continue
            lines += ["", f"  by {title}:"]
            for name, fig in table.items():
                lines.append(f"    {name:<16} {fig.conversations:>5} conv · first response {describe(fig.first_response)}"
                             f" · resolved {fig.resolution.count} · replies {fig.replies}")
        if not self.business_hours:
            lines += ["", "  (no [business_hours] configured: business time is calendar time)"]
        return "\n".join(lines) + "\n"


def _r(value: float | None, digits: int = 0):
    if value is None:
        return ""
    return round(value, digits) if digits else round(value)


def _durations_dict(d: Durations) -> dict:
    return {"count": d.count, "median_business_seconds": _r(d.median), "p90_business_seconds": _r(d.p90),
            "median_calendar_seconds": _r(d.median_calendar), "p90_calendar_seconds": _r(d.p90_calendar)}


def _figures_dict(fig: Figures) -> dict:
    sat = fig.satisfaction
    return {"conversations": fig.conversations, "reopened": fig.reopened,
            "first_response": {**_durations_dict(fig.first_response), "unanswered": fig.unanswered,
                               "within_target": _r(fig.within_target, 3)},
            "resolution": _durations_dict(fig.resolution), "replies": fig.replies,
            "waiting_now": fig.waiting, "oldest_wait_seconds": _r(fig.oldest_wait),
            "satisfaction": {"ratings": sat.count, "by_rating": {str(n + 1): c for n, c in enumerate(sat.ratings)},
                             "average": _r(sat.average, 2), "satisfied_share": _r(sat.satisfied, 3)}}


def span(seconds: float | None) -> str:
    """'45s', '12m', '3h 20m', '2d 4h': durations for people."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def describe(d: Durations) -> str:
    if not d.count:
        return "-"
    return (f"median {span(d.median)}, p90 {span(d.p90)} (business); "
            f"{span(d.median_calendar)}, {span(d.p90_calendar)} (calendar); n={d.count}")


def describe_satisfaction(sat: Satisfaction) -> str:
    if not sat.count:
        return "no ratings"
    return f"{sat.average:.1f} / 5 from {sat.count} ratings, {sat.satisfied:.0%} satisfied (4-5)"


# ---- the period -----------------------------------------------------------------------------------
def period(hours: BusinessHours, first: dt.date, last: dt.date) -> tuple[float, float, list[dt.date]]:
    """[start, end) of local days `first`..`last` (inclusive) in the calendar's zone."""
    if last < first:
        first, last = last, first
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return _midnight(hours, first), _midnight(hours, last + dt.timedelta(days=1)), days


def last_days(hours: BusinessHours, count: int, now: float) -> tuple[float, float, list[dt.date]]:
    today = hours.local_date(now)
    return period(hours, today - dt.timedelta(days=count - 1), today)


def _midnight(hours: BusinessHours, day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=hours.tz).timestamp()


# ---- computing ----------------------------------------------------------------------------------
@dataclass
class _Bucket:
    first_business: list[float] = field(default_factory=list)
    first_calendar: list[float] = field(default_factory=list)
    within: int = 0
    judged: int = 0
    resolution_business: list[float] = field(default_factory=list)
    resolution_calendar: list[float] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)


def build(data, hours: BusinessHours, policies: list[SlaPolicy], first: dt.date, last: dt.date,
          now: float) -> Report:
    """The report of local days `first`..`last` from `data` (console.store.metrics.ReportData)."""
    start, end, days = period(hours, first, last)
    earliest = min([start, *(r[5] for r in data.resolved)])
    ledger = hours.ledger(earliest, max(end, now))
    midnights = [_midnight(hours, d) for d in days] + [end]
    overall, channels, agents, tags = _Bucket(), {}, {}, {}
    conversation_tags = data.conversation_tags

    def bucket_of(table: dict, key) -> _Bucket:
        bucket = table.get(key)
        if bucket is None:  # made only when new: a dataclass per row was a fifth of the time
            bucket = table[key] = _Bucket()
        return bucket

    def buckets(channel: str, agent: str | None, conversation_id: int) -> list[_Bucket]:
        found = [overall, bucket_of(channels, channel)]
        if agent is not None:
            found.append(bucket_of(agents, agent))
        for tag in conversation_tags.get(conversation_id, ()):
            found.append(bucket_of(tags, tag))
        return found

    per_day = [0] * len(days)
    grid = [[0] * 24 for _ in range(7)]
    hour_starts, hour_slots = _hours(hours, start, end)
    starts, resolutions = [], []
    for conversation_id, channel, account, kind, started_at, first_at, responder in data.started:
        starts.append(started_at)
        day = bisect.bisect_right(midnights, started_at) - 1
        if 0 <= day < len(days):
            per_day[day] += 1
        slot = bisect.bisect_right(hour_starts, started_at) - 1
        if slot >= 0:
            weekday, hour = hour_slots[slot]
            grid[weekday][hour] += 1
        agent = (responder or ELSEWHERE) if first_at is not None else None
        tagged = conversation_tags.get(conversation_id, ())
        target = None
        if first_at is not None:
            policy = next((p for p in policies if p.first_response and p.matches(channel, account, tagged)), None)
            target = policy
        for bucket in buckets(channel, agent, conversation_id):
            fig = bucket.figures
            fig.conversations += 1
            fig.reopened += kind == "reopened"
            if first_at is None:
                fig.unanswered += 1
                continue
            business = ledger.between(started_at, first_at)
            calendar = max(0.0, first_at - started_at)
            bucket.first_business.append(business)
            bucket.first_calendar.append(calendar)
            if target is not None:
                bucket.judged += 1
                bucket.within += (business if target.business_hours else calendar) <= target.first_response
    for conversation_id, channel, account, responder, first_at, started_at, resolved_at in data.resolved:
        resolutions.append(resolved_at)
        for bucket in buckets(channel, (responder or ELSEWHERE) if first_at is not None else None, conversation_id):
            bucket.resolution_business.append(ledger.between(started_at, resolved_at))
            bucket.resolution_calendar.append(max(0.0, resolved_at - started_at))
    replies_by_agent: dict[str, int] = {}
    for author, channel, count in data.replies:
        name = author or ELSEWHERE
        replies_by_agent[name] = replies_by_agent.get(name, 0) + count
        overall.figures.replies += count
        bucket_of(channels, channel).figures.replies += count
        bucket_of(agents, name).figures.replies += count
    for conversation_id, channel, responder, rating in data.ratings:
        if 1 <= (rating or 0) <= 5:
            for bucket in buckets(channel, responder or ELSEWHERE, conversation_id):
                bucket.figures.satisfaction.ratings[rating - 1] += 1
    for channel, customers, oldest in data.waiting:
        bucket = overall if channel == "" else bucket_of(channels, channel)
        bucket.figures.waiting = customers
        bucket.figures.oldest_wait = max(0.0, now - oldest) if oldest is not None and customers else None
    for assignee, conversations, oldest in data.waiting_by_agent:
        fig = bucket_of(agents, assignee).figures
        fig.waiting = conversations
        fig.oldest_wait = max(0.0, now - oldest) if oldest is not None else None
    starts.sort()
    resolutions.sort()
    backlog = [data.open_at_start + bisect.bisect_left(starts, t) - bisect.bisect_left(resolutions, t)
               for t in midnights[1:]]
    done = {}
    for name, table in (("channel", channels), ("agent", agents), ("tag", tags)):
        done[name] = {key: _finish(bucket) for key, bucket in sorted(table.items(), key=lambda kv: _order(kv))}
    return Report(start, end, days, hours.zone_name, hours.configured, _finish(overall), done["channel"],
                  done["agent"], done["tag"], per_day, grid, backlog, dict(sorted(replies_by_agent.items())))


def _order(item) -> tuple:
    name, bucket = item
    return (-bucket.figures.conversations, -bucket.figures.replies, name)


def _finish(bucket: _Bucket) -> Figures:
    fig = bucket.figures
    fig.first_response = Durations.of(bucket.first_business, bucket.first_calendar)
    fig.resolution = Durations.of(bucket.resolution_business, bucket.resolution_calendar)
    fig.within_target = bucket.within / bucket.judged if bucket.judged else None
    return fig


def _hours(hours: BusinessHours, start: float, end: float) -> tuple[list[float], list[tuple[int, int]]]:
    """The UTC start of every local hour in [start, end), with its (weekday, hour)."""
    starts, slots = [], []
    t = start
    while t < end:
        local = dt.datetime.fromtimestamp(t, hours.tz)
        starts.append(t)
        slots.append((local.weekday(), local.hour))
        t = (local.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)).timestamp()
        if t <= starts[-1]:  # a repeated hour when clocks go back: step by the UTC hour
            t = starts[-1] + 3600
    return starts, slots
