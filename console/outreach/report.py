"""A campaign's dry run, progress and report as text, JSON and CSV, for the CLI and the screens.

The numbers come from the store (console/store/campaigns.py `Plan`, `Progress`;
console/store/measure.py `Report`); this module only lays them out, the same way everywhere.
No UI toolkit: the screens turn these lines into `rich.text.Text`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from console.channels import catalog
from console.outreach.reasons import Reason
from console.outreach.zones import workspace_zone

BAR = 30


def moment(at: float | None, zone_setting: str = "") -> str:
    if at is None:
        return "-"
    # The zone is named: the workspace's [outreach] zone need not be this machine's.
    return dt.datetime.fromtimestamp(at, workspace_zone(zone_setting)).strftime("%a %d %b %H:%M %Z")


def names(people, limit: int | None = None) -> str:
    shown = [p.name or f"customer {p.customer_id}" for p in people]
    if limit is not None and len(shown) > limit:
        return ", ".join(shown[:limit]) + f" and {len(shown) - limit} more"
    return ", ".join(shown)


def plan_lines(plan, settings, limit: int | None = None) -> list[str]:
    """The dry run: N selected -> M now, H held until when, every exclusion with its names."""
    step = next(s for s in plan.campaign.steps if s.position == plan.position)
    channels = ", ".join(catalog.channel(c).name for c in step.channels)
    out = [f"{plan.campaign.name}, step {plan.position} ({channels}), as of {moment(plan.at, settings.timezone)}:",
           f"  {plan.selected} selected -> {len(plan.now)} receive now, {len(plan.held)} held, "
           f"{plan.selected - len(plan.now) - len(plan.held)} left out"]
    held: dict[float, list] = {}
    for p in plan.held:
        held.setdefault(p.at, []).append(p)
    for at, people in sorted(held.items()):
        out.append(f"  held until {moment(at, settings.timezone)} ({len(people)}): {names(people, limit)}")
    by_channel = plan.by_channel
    if by_channel:
        out.append("  by channel: " + ", ".join(f"{catalog.channel(c).name} {n}" for c, n in by_channel.most_common()))
    if plan.sms_segments:
        out.append(f"  SMS: {by_channel.get('sms', 0)} message(s), {plan.sms_segments} segment(s), "
                   f"about {settings.currency} {plan.cost:.2f}")
    excluded = plan.excluded
    if excluded:
        out.append("  left out:")
        for reason, people in sorted(excluded.items(), key=lambda item: -len(item[1])):
            out.append(f"    {reason.value} - {reason.label} ({len(people)}): {names(people, limit)}")
    return out


def plan_summary(plan, settings) -> list[str]:
    """The dry run in three lines, for a screen (the rows under it name everyone)."""
    held = f", {len(plan.held)} held until {moment(plan.held_until, settings.timezone)}" if plan.held else ""
    out = [f"{plan.selected} selected -> {len(plan.now)} now{held}, "
           f"{plan.selected - len(plan.now) - len(plan.held)} left out"]
    channels = " · ".join(f"{catalog.channel(c).name} {n}" for c, n in plan.by_channel.most_common())
    if plan.sms_segments:
        channels += f" (SMS: {plan.sms_segments} segment{'s' if plan.sms_segments != 1 else ''}, about {settings.currency} {plan.cost:.2f})"
    out.append(channels or "nobody gets it")
    excluded = sorted(plan.excluded.items(), key=lambda item: -len(item[1]))
    if excluded:
        out.append("left out: " + " · ".join(f"{r.label} {len(people)}" for r, people in excluded) + " (names below)")
    return out


def plan_json(plan) -> str:
    def person(p):
        row = {"customer_id": p.customer_id, "name": p.name, "reason": p.reason.value if p.reason else None,
               "at": p.at, "channel": p.channel, "account": p.account}
        if p.rendered is not None:
            row.update(subject=p.rendered.subject, body=p.rendered.body, segments=p.rendered.segments)
        if p.detail:
            row["detail"] = p.detail
        return row

    return json.dumps({
        "campaign": plan.campaign.name, "step": plan.position, "at": plan.at, "selected": plan.selected,
        "now": len(plan.now), "held": len(plan.held), "held_until": plan.held_until,
        "excluded": {r.value: len(v) for r, v in plan.excluded.items()},
        "by_channel": dict(plan.by_channel), "sms_segments": plan.sms_segments, "cost": plan.cost,
        "recipients": [person(p) for p in plan.rows],
    }, ensure_ascii=False, indent=1)


def progress_bar(progress, width: int = BAR) -> str:
    """'[##########..........] 120/300 sent, 20 held, 2 failed'."""
    total = max(1, progress.total)
    filled = int(width * progress.done / total)
    parts = [f"{progress.sent}/{progress.total} sent"]
    for name in ("sending", "waiting", "held", "failed", "refused", "cancelled"):
        value = getattr(progress, name)
        if value:
            parts.append(f"{value} {name}")
    return f"[{'#' * filled}{'.' * (width - filled)}] " + ", ".join(parts)


def report_lines(report, zone_setting: str = "") -> list[str]:
    """The funnel per step and channel, as a table of text."""
    out = [f"{report.campaign} ({report.state}, launched {moment(report.launched_at, zone_setting)}): replies counted within "
           f"{report.reply_days} days" + (f", converted = {report.convert_on} within {report.convert_days} days"
                                         if report.convert_on else "")]
    head = f"  {'step':<6}{'channel':<11}" + "".join(f"{h:>10}" for h in
                                                      ("targeted", "sent", "delivered", "read", "replied",
                                                       "opted out", "failed", "converted"))
    out.append(head)
    for position in sorted(report.steps):
        rows = list(report.steps[position].items())
        if len(rows) > 1:
            rows.append(("all", report.step_total(position)))
        for channel, f in rows:
            name = catalog.channel(channel).name if channel != "all" else "all"
            read = f.read if read_known(channel) else "-"
            out.append(f"  {position:<6}{name:<11}" + "".join(f"{v:>10}" for v in (
                f.targeted, f.sent, f.delivered, read, f.replied, f.opted_out, f.failed + f.refused, f.converted)))
        left = report.excluded.get(position)
        if left:
            out.append("        left out: " + ", ".join(f"{Reason.of(r).label if Reason.of(r) else r} {n}"
                                                       for r, n in sorted(left.items(), key=lambda kv: -kv[1])))
    if report.holdout:
        line = f"  holdout: {report.holdout} kept out, {report.holdout_converted} converted"
        if report.lift is not None:
            line += f"; lift versus no message: {report.lift * 100:+.1f} points"
        out.append(line)
    return out


def report_json(report) -> str:
    return json.dumps({
        "campaign": report.campaign, "state": report.state, "launched_at": report.launched_at,
        "reply_days": report.reply_days, "convert_on": report.convert_on, "convert_days": report.convert_days,
        "steps": {str(p): {c: {**f.as_dict(), "read": f.read if read_known(c) else None} for c, f in chans.items()}
                  for p, chans in sorted(report.steps.items())},
        "excluded": {str(p): reasons for p, reasons in sorted(report.excluded.items())},
        "holdout": {"size": report.holdout, "converted": report.holdout_converted,
                    "messaged": report.messaged, "messaged_converted": report.messaged_converted,
                    "lift": report.lift},
    }, ensure_ascii=False, indent=1)


def report_csv(report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = False
    for position in sorted(report.steps):
        for channel, funnel in report.steps[position].items():
            numbers = funnel.as_dict()
            if not header:
                writer.writerow(["campaign", "step", "channel", *numbers])
                header = True
            writer.writerow([report.campaign, position, channel, *numbers.values()])
    if not header:
        writer.writerow(["campaign", "step", "channel"])
    return buffer.getvalue()


def read_known(channel: str) -> bool:
    """Whether the channel reports reading ("read where known"): WhatsApp, Messenger, Instagram."""
    return channel == "all" or catalog.channel(channel).reports_read


FUNNEL_ROWS = (("sent", "sent"), ("delivered", "delivered"), ("read", "read"), ("replied", "replied"),
               ("opted_out", "opted out"), ("failed", "failed"), ("refused", "refused at sending"),
               ("converted", "converted"))


def funnel_lines(report, width: int = 24) -> list[tuple[str, str]]:
    """The report as (kind, line) pairs for a screen: a heading per step and channel, then a bar
    per stage of its funnel as a share of those targeted ("—" for read where the channel does
    not say). `kind` is heading, stage or note."""
    out: list[tuple[str, str]] = []
    for position in sorted(report.steps):
        for channel, funnel in report.steps[position].items():
            name = catalog.channel(channel).name
            out.append(("heading", f"Step {position} · {name} · {funnel.targeted} targeted"))
            for field_name, label in FUNNEL_ROWS:
                value = getattr(funnel, field_name)
                if field_name == "refused" and not value:
                    continue
                if field_name == "converted" and not report.convert_on:
                    continue
                if field_name == "read" and not read_known(channel):
                    out.append(("stage", f"  {label:<18}     —  (the channel does not say)"))
                    continue
                share = value / funnel.targeted if funnel.targeted else 0.0
                bar = "█" * round(width * share)
                out.append(("stage", f"  {label:<18}{value:>6} {bar:<{width}} {share * 100:3.0f}%"))
        left = report.excluded.get(position)
        if left:
            words = ", ".join(f"{Reason.of(r).label if Reason.of(r) else r} {n}" for r, n in
                              sorted(left.items(), key=lambda kv: -kv[1]))
            out.append(("note", f"  step {position} left out: {words}"))
    if report.holdout:
        line = f"Holdout: {report.holdout} kept out, {report.holdout_converted} converted"
        if report.lift is not None:
            line += f" · lift versus no message: {report.lift * 100:+.1f} points"
        out.append(("heading", line))
    if not report.steps:
        out.append(("note", "Nothing sent yet: the report fills in as the campaign goes."))
    return out
