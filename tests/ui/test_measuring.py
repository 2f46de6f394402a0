"""Measuring and automation in the app (Pilot, 80x24, the demo workspace): SLA badges on the
rows, the "breaching soon" filter, the Reports screen, the health and automation panel, the
"needs me" count, notifications, and rule actions in the timeline."""

from __future__ import annotations

import time

from console.model import Address, InboundMessage, PullResult
from console.sla_duty import SlaDuty
from console.store import ListFilter, Plan
from console.ui.app import ConsoleApp
from console.ui.reports_screen import ReportsScreen
from console.ui.status_screen import StatusScreen
from conftest import ready, until

SIZE = (80, 24)


def list_lines(app) -> list[str]:
    widget = app.conversations
    return [widget.render_line(y).text for y in range(widget.size.height)]


async def test_rows_carry_their_sla_badge_and_the_clock_follows_the_policy(demo):
    ws, store = demo
    SlaDuty(ws, store).step()
    rows = store.attach_clocks(store.list_rows(ListFilter("open"), 0, 50), ListFilter("open"))
    assert any(r.clock for r in rows), "the engine's SLA duty gives waiting customers a clock"
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await until(pilot, lambda: any(("due " in line or "late " in line) for line in list_lines(app)), "a badge")
        lines = list_lines(app)
        first = rows[0]
        assert ("late " if first.clock.due_at < time.time() else "due ") in lines[1]  # on the row's second line
        assert all(len(line) <= app.conversations.size.width for line in lines)


async def test_breaching_soon_filter_lists_only_late_or_nearly_late_customers(demo):
    ws, store = demo
    SlaDuty(ws, store).step()
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        everyone = app.conversations.total
        await pilot.press("B")
        await until(pilot, lambda: app.conversations.filter.breaching is not None and app.conversations.counted,
                    "the filter")
        await until(pilot, lambda: app.conversations.total < everyone, "fewer rows")
        now = time.time()
        for index in range(app.conversations.total):
            row = app.conversations.row_at(index)
            if row is not None:
                assert row.clock is not None and row.clock.due_at <= now + 3600
        assert "breaching" in str(app.inbox.query_one("#tabs").render())
        await pilot.press("B")
        await until(pilot, lambda: app.conversations.total == everyone, "everyone again")


async def test_reports_screen_shows_the_figures_and_moves_through_periods(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ReportsScreen) and app.screen.report is not None,
                    "the report")
        screen = app.screen
        assert screen.report.overall.conversations > 0
        summary = str(screen.query_one("#reports-summary").render())
        assert "First response" in summary and "median" in summary and "p90" in summary
        assert "Mon" in str(screen.query_one("#grid").render())
        week = screen.report.days
        await pilot.press("p")
        await until(pilot, lambda: screen.report is not None and len(screen.report.days) == 30, "30 days")
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: screen.report.days[-1] < week[0], "the 30 days before")
        await pilot.press("v")
        assert screen.breakdown == "agent"
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.inbox, "back to the inbox")


async def test_status_panel_names_each_accounts_state_and_the_rules(demo):
    ws, store = demo
    store.set_account_state("phone", "demo", "retrying", "Twilio asks to slow down: 429 Too Many Requests (retrying in 30s)")
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("H")
        await until(pilot, lambda: isinstance(app.screen, StatusScreen)
                    and "Accounts" in str(app.screen.query_one("#status-body").render()), "the panel")
        body = str(app.screen.query_one("#status-body").render())
        assert "retrying — Twilio asks to slow down" in body and "last synced" in body
        assert "wholesale: message received" in body and "last fired" in body
        assert "Business hours" in body
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.inbox, "closed")


async def test_needs_me_counts_open_customers_mine_or_nobodys(demo):
    ws, store = demo
    rows = store.list_rows(ListFilter("open"), 0, 100)
    others = {r.customer_id for r in rows if r.assignee not in (None, ws.agent)}
    assert store.needs_me(ws.agent) == len(rows) - len(others)  # the demo gives some to ben
    taken = next(r.customer_id for r in rows if r.assignee is None)
    store.assign(taken, "someone-else")
    expected = len(rows) - len(others) - 1
    assert store.needs_me(ws.agent) == expected
    store.assign(next(iter(others)), ws.agent)
    assert store.needs_me(ws.agent) == expected + 1
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await until(pilot, lambda: f"needs me {expected + 1}" in str(app.inbox.query_one("#header-right").render()),
                    "the count")


async def test_a_new_message_rings_and_notifies_without_the_customers_words(demo, tmp_path, monkeypatch):
    ws, store = demo
    calls = tmp_path / "calls"
    notifier = tmp_path / "notify-send"
    notifier.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" >> {calls}\n")
    notifier.chmod(0o755)
    monkeypatch.setattr("console.ui.actions.attention.desktop_notifier", lambda: str(notifier))
    app = ConsoleApp(ws, store)
    bells = []
    monkeypatch.setattr(app, "bell", lambda: bells.append(1))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await until(pilot, lambda: app.inbox._seen_event is not None, "the console watching")
        store.apply_pull("phone", PullResult(messages=[InboundMessage(
            "hostile-1", "sms:+15559990000", "sms", "in",
            Address("phone", "+15559990000", "<b>Eve</b>\x1b]0;owned\x07 [@click=app.quit]x[/]"), time.time(),
            "my secret order number is 4411")]))
        await until(pilot, lambda: bells, "the bell")
        await until(pilot, lambda: calls.exists() and calls.read_text().count("\n") >= 3, "the desktop notification")
        sent = calls.read_text()
        assert "\x1b" not in sent and "<b>" not in sent and "&lt;b&gt;Eve" in sent
        assert "4411" not in sent  # never the message itself
        assert app.is_running


async def test_rule_actions_show_in_the_timeline(demo):
    ws, store = demo
    row = store.list_rows(ListFilter("open"), 0, 1)[0]
    store.apply_firing(Plan("wholesale", "test", row.conversation_id, time.time(), add_tags=("wholesale",),
                            assign="ana"))
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        events = [e for e in app.timeline.entries if e.direction == "event"]
        assert [f"{e.author} {e.body}" for e in events][-2:] == ["rule 'wholesale' tagged #wholesale",
                                                                 "rule 'wholesale' assigned ana"]
        shown = [app.timeline.render_line(y).text for y in range(app.timeline.size.height)]
        assert any("rule 'wholesale' assigned ana" in line for line in shown)
