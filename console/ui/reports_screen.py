"""The Reports screen (`ctrl+r`, or "Reports" in the palette): how fast customers get an answer,
which channels bring the work, when the rush comes, and how satisfied they were.

The figures come from console/reports.py, computed in a background job from what the store read
(console/store/metrics.py), for the last 7, 30 or 90 local days (`p`), moved a period back or
forth with `[` and `]`; `v` shows them by channel, by agent or by tag. Where a person would
rather look than read there are plots: arrivals per day and the backlog as Textual Sparklines
(bar heights, so they read without colour), and arrivals by weekday and hour as a grid of shade
glyphs. Everything fits 80 columns; `j`/`k` scroll what does not fit 24 lines.
"""

from __future__ import annotations

import datetime as dt
import time

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Sparkline, Static

from console import reports
from console.reports import Figures, describe_satisfaction, span
from console.ui.guard import Guarded
from console.ui.render import channel_name, safe_line
from console.ui.screens import Scrolling, scroll_bindings

PERIODS = (7, 30, 90)
BREAKDOWNS = ("channel", "agent", "tag")
SHADES = " ·░▒▓█"  # none, then five levels up to the busiest hour


class DaySparkline(Guarded, Sparkline):
    """Textual's Sparkline, one bar per day, measured from zero.

    The Sparkline draws its data's range, min to max: a quiet day of six conversations would look
    like an empty one. Each day's value is given `REPEAT` times after a single 0, and the bars
    summarise with `max`: the 0 sets the bottom of the scale without ever being a bar of its own
    (it shares the first bar with the first day's copies), and every day keeps its width."""

    REPEAT_OVER = 400  # data points at least: more than twice any terminal's width

    def show(self, values: list[int]) -> None:
        repeat = -(-self.REPEAT_OVER // max(1, len(values)))
        self.data = [0] + [v for v in values for _ in range(repeat)] if values else []


class ReportsScreen(Guarded, Scrolling, Screen):
    BINDINGS = [
        Binding("escape,q", "close", "Back to the inbox", id="reports.close"),
        Binding("p", "period", "7 / 30 / 90 days", id="reports.period"),
        Binding("left_square_bracket", "shift(-1)", "Earlier", id="reports.earlier"),
        Binding("right_square_bracket", "shift(1)", "Later", id="reports.later"),
        Binding("v", "breakdown", "By channel / agent / tag", id="reports.breakdown"),
        *scroll_bindings("reports"),
    ]
    SCROLLS = "#reports-body"

    def __init__(self, workspace, days: int = 7, now: float | None = None):
        super().__init__()
        self.workspace = workspace
        self.days = days
        self.shift = 0  # periods back from the one ending today
        self.breakdown = "channel"
        self.report: reports.Report | None = None
        self._now = now

    def compose(self) -> ComposeResult:
        yield Static(id="reports-title")
        with VerticalScroll(id="reports-body"):
            yield Static(Text("Computing the figures…"), id="reports-summary")
            yield Static(id="arrivals-label")
            yield DaySparkline([], id="arrivals", summary_function=max)
            yield Static(id="arrivals-axis")
            yield Static(id="grid")
            yield Static(id="backlog-label")
            yield DaySparkline([], id="backlog", summary_function=max)
            yield Static(id="backlog-axis")
            yield Static(id="breakdown")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#reports-body").focus()
        self.load()

    # ---- the period -------------------------------------------------------------------------------
    def span_dates(self) -> tuple[dt.date, dt.date]:
        today = self.workspace.business_hours.local_date(self._now or time.time())
        last = today + dt.timedelta(days=self.days * self.shift)  # shift <= 0: periods back
        return last - dt.timedelta(days=self.days - 1), last

    def load(self) -> None:
        ws = self.workspace
        first, last = self.span_dates()
        now = self._now or time.time()
        self._title(first, last, busy=True)

        def job(store):
            start, end, _ = reports.period(ws.business_hours, first, last)
            return reports.build(store.report_data(start, end), ws.business_hours, ws.policies, first, last, now)

        self.app.background.run(job, self.show, what="compute the report", key="report")

    def _title(self, first: dt.date, last: dt.date, busy: bool = False) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" Reports ", style="bold reverse")
        text.append(f" {first:%d %b} – {last:%d %b %Y} ({self.days} days) · by {self.breakdown}")
        text.append(f" · {self.workspace.business_hours.zone_name}", style="dim")
        if busy:
            text.append(" · computing…", style="dim")
        self.query_one("#reports-title", Static).update(text)

    # ---- showing ------------------------------------------------------------------------------------
    def show(self, report: reports.Report) -> None:
        self.report = report
        self._title(report.days[0], report.days[-1])
        self.query_one("#reports-summary", Static).update(summary_text(report))
        self.query_one("#arrivals-label", Static).update(
            _label("New conversations per day", report.per_day))
        self.query_one("#arrivals", DaySparkline).show(report.per_day)
        self.query_one("#arrivals-axis", Static).update(axis(report.days))
        self.query_one("#grid", Static).update(grid_text(report))
        self.query_one("#backlog-label", Static).update(
            _label("Backlog (not resolved at the end of each day)", report.backlog))
        self.query_one("#backlog", DaySparkline).show(report.backlog)
        self.query_one("#backlog-axis", Static).update(axis(report.days))
        self.query_one("#breakdown", Static).update(breakdown_table(report, self.breakdown))

    # ---- keys ---------------------------------------------------------------------------------------
    def action_close(self) -> None:
        self.app.pop_screen()

    def action_period(self) -> None:
        self.days = PERIODS[(PERIODS.index(self.days) + 1) % len(PERIODS)] if self.days in PERIODS else PERIODS[0]
        self.shift = 0
        self.load()

    def action_shift(self, step: int) -> None:
        if step > 0 and self.shift >= 0:
            self.app.bell()
            self.app.notify("This is the latest period: it ends today.", timeout=2)
            return
        self.shift += step
        self.load()

    def action_breakdown(self) -> None:
        self.breakdown = BREAKDOWNS[(BREAKDOWNS.index(self.breakdown) + 1) % len(BREAKDOWNS)]
        if self.report is not None:
            self._title(self.report.days[0], self.report.days[-1])
            self.query_one("#breakdown", Static).update(breakdown_table(self.report, self.breakdown))


# ---- what the sections say (plain functions of a report, tested directly) ---------------------------
def _label(title: str, values: list[int]) -> Text:
    text = Text(title, style="bold")
    if values:
        text.append(f"   min {min(values)} · max {max(values)} · total {sum(values)}" if "Backlog" not in title
                    else f"   min {min(values)} · max {max(values)} · now {values[-1]}", style="dim")
    return text


def axis(days: list[dt.date], width: int = 76) -> Text:
    """The first, middle and last day under a plot."""
    if not days:
        return Text()
    first, last = f"{days[0]:%a %d %b}", f"{days[-1]:%a %d %b}"
    middle = f"{days[len(days) // 2]:%d %b}" if len(days) > 2 else ""
    gap = max(1, width - len(first) - len(last) - len(middle))
    left = gap // 2
    return Text(first + " " * left + middle + " " * (gap - left) + last, style="dim", no_wrap=True)


def summary_text(report: reports.Report) -> Text:
    o = report.overall
    text = Text()

    def row(label: str, value: str) -> None:
        text.append(f"{label:<16}", style="bold")
        text.append(value + "\n")

    row("Conversations", f"{o.conversations:,} new ({o.reopened:,} reopened)"
        + (f" · {o.unanswered:,} not answered" if o.unanswered else ""))
    fr = o.first_response
    row("First response", f"median {span(fr.median)} · p90 {span(fr.p90)} (business hours)"
        if fr.count else "no answers in this period")
    if fr.count:
        row("", f"median {span(fr.median_calendar)} · p90 {span(fr.p90_calendar)} (calendar)"
            + (f" · {o.within_target:.0%} within SLA" if o.within_target is not None else ""))
    rs = o.resolution
    row("Resolution", f"median {span(rs.median)} · p90 {span(rs.p90)} (business hours)"
        if rs.count else "nothing resolved in this period")
    if rs.count:
        row("", f"median {span(rs.median_calendar)} · p90 {span(rs.p90_calendar)} (calendar) · {rs.count:,} resolved")
    row("Waiting now", f"{o.waiting or 0} customer{'s' if (o.waiting or 0) != 1 else ''}"
        + (f", the longest for {span(o.oldest_wait)}" if o.oldest_wait else ""))
    agents = " · ".join(f"{safe_line(name, 16).plain} {count:,}" for name, count in
                        sorted(report.replies_by_agent.items(), key=lambda kv: -kv[1])[:4])
    row("Replies", f"{o.replies:,}" + (f": {agents}" if agents else ""))
    row("Satisfaction", describe_satisfaction(o.satisfaction))
    if not report.business_hours:
        text.append("No [business_hours] in the config: business time is calendar time.\n", style="dim")
    text.rstrip()
    return text


def shade(count: int, busiest: int) -> str:
    if count <= 0 or busiest <= 0:
        return SHADES[0]
    return SHADES[min(len(SHADES) - 1, 1 + (count * (len(SHADES) - 2)) // busiest)]


def grid_text(report: reports.Report) -> Text:
    """Arrivals by weekday (rows) and local hour (columns, two cells each), as shade glyphs."""
    busiest = max((n for row in report.grid for n in row), default=0)
    text = Text("Arrivals by weekday and hour", style="bold")
    text.append(f"   busiest hour {busiest} · ' ' none  · ░ ▒ ▓ █ more\n", style="dim")
    text.append("     " + "".join(f"{h:<12}" for h in (0, 6, 12, 18)) + "\n", style="dim")
    for weekday, row in enumerate(report.grid):
        text.append(f"{reports.WEEKDAY_NAMES[weekday]:<5}", style="bold")
        text.append("".join(shade(n, busiest) * 2 for n in row))
        text.append(f" {sum(row):>4}\n", style="dim")
    text.rstrip()
    return text


def breakdown_table(report: reports.Report, name: str) -> Table | Text:
    rows = report.breakdown(name)
    title = {"channel": "By channel", "agent": "By agent (who answered first)", "tag": "By customer tag"}[name]
    if not rows:
        return Text(f"{title}: nothing in this period.", style="dim")
    table = Table(title=Text(title + " · times in business hours", style="bold"), title_justify="left",
                  box=None, pad_edge=False, expand=False, padding=(0, 1))
    table.add_column("", no_wrap=True, max_width=16)
    table.add_column("new", justify="right")
    table.add_column("first resp. med·p90", no_wrap=True)
    table.add_column("resolved med·p90", no_wrap=True)
    table.add_column("replies", justify="right")
    table.add_column("wait", justify="right")
    table.add_column("rating", justify="right")
    for key, fig in rows.items():
        label = channel_name(key) if name == "channel" else (f"#{key}" if name == "tag" else key)
        table.add_row(safe_line(label, 16), f"{fig.conversations:,}", _pair(fig.first_response),
                      _pair(fig.resolution), "" if name == "tag" else f"{fig.replies:,}",
                      "" if fig.waiting is None else str(fig.waiting), _rating(fig))
    return table


def _pair(d: reports.Durations) -> str:
    return f"{span(d.median)}·{span(d.p90)}" if d.count else "-"


def _rating(fig: Figures) -> str:
    sat = fig.satisfaction
    return f"{sat.average:.1f}" if sat.count else "-"
