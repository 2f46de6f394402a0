"""The workspace's health and automation at a glance (`H`): one line per account (its state and
the reason when something is wrong — an error, a refused login, a rate limit being waited out —
when it last synced, how many customers wait on it, what its outbox holds), the business hours
(open now?), the SLA policies, and each rule with what it does and when it last fired."""

from __future__ import annotations

import datetime as dt
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console.notify import desktop_notifier
from console.reports import span
from console.ui.guard import Guarded
from console.ui.render import STATE_MARKS, safe_line
from console.ui.screens import Scrolling, scroll_bindings


class StatusScreen(Guarded, Scrolling, ModalScreen[None]):
    BINDINGS = [Binding("escape,q,H", "dismiss", "Close", id="status.close"), *scroll_bindings("status")]
    SCROLLS = "#status"

    def __init__(self, workspace):
        super().__init__()
        self.workspace = workspace

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="status"):
            yield Static(Text("Reading the accounts…", style="dim"), id="status-body")
            yield Static(Text("j/k scroll · esc closes", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#status").focus()
        now = time.time()
        self.app.background.run(lambda store: (store.account_health(), store.rules_fired(now - 7 * 86400)),
                                lambda result: self.show(*result, now), what="read the accounts' health",
                                key="status")

    def show(self, accounts: list[dict], fired: dict, now: float) -> None:
        self.query_one("#status-body", Static).update(status_text(self.workspace, accounts, fired, now))


def _ago(at: float | None, now: float) -> str:
    if not at:
        return "never"
    when = dt.datetime.fromtimestamp(at)
    shown = when.strftime("%H:%M") if now - at < 86400 else when.strftime("%d %b %H:%M")
    return f"{shown} ({span(now - at)} ago)"


def account_line(account: dict, now: float) -> Text:
    """'● mail (demo): ok · synced 14:02 (3m ago) · 4 waiting · 1 queued'"""
    state = account["state"]
    text = Text(f"{STATE_MARKS.get(state, '•')} ", style="bold")
    text.append_text(safe_line(account["name"], 24, style="bold"))
    text.append(f" ({account['kind']}): ")
    text.append(state, style="bold" if state in ("ok", "syncing", "idle") else "bold reverse")
    if state not in ("ok", "idle") and account.get("detail"):
        text.append(" — ")
        text.append_text(safe_line(account["detail"], 160))
    text.append(f" · last synced {_ago(account.get('last_ok_at'), now)}")
    text.append(f" · {account['waiting']} waiting")
    outbox = [f"{account['queued']} queued"] if account["queued"] else []
    if account["in_doubt"]:
        outbox.append(f"{account['in_doubt']} being sent or checked")
    if outbox:
        text.append(" · " + ", ".join(outbox))
    return text


def status_text(ws, accounts: list[dict], fired: dict, now: float) -> Text:
    text = Text()
    text.append("Accounts\n", style="bold underline")
    if not accounts:
        text.append("  no account has synced yet\n", style="dim")
    for account in accounts:
        text.append("  ")
        text.append_text(account_line(account, now))
        text.append("\n")
    hours = ws.business_hours
    text.append("\nBusiness hours", style="bold underline")
    text.append(f"  {hours.describe_now(now)} ({hours.zone_name})\n")
    if hours.configured:
        names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        week = [f"{names[n]} " + (", ".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in day)
                                  or "closed") for n, day in enumerate(hours.week)]
        text.append("  " + " · ".join(week) + "\n")
        upcoming = sorted(d for d in hours.holidays if d >= hours.local_date(now))[:4]
        if upcoming:
            text.append("  holidays: " + ", ".join(f"{d:%a %d %b %Y}" for d in upcoming) + "\n")
    text.append("\nSLA policies (the first that matches sets each target)\n", style="bold underline")
    for policy in ws.policies:
        text.append(f"  {policy.name}: ", style="bold")
        text.append(policy.describe() + "\n")
    text.append("\nRules\n", style="bold underline")
    if not ws.rules:
        text.append("  none: [[rules]] in the config (config.example.toml shows how)\n", style="dim")
    for rule in ws.rules:
        last, count = fired.get(rule.name, (None, 0))
        text.append(f"  {rule.name}: ", style="bold")
        text.append(rule.describe() + "\n")
        text.append(f"    last fired {_ago(last, now)}; {count} time{'s' if count != 1 else ''} in 7 days\n",
                    style="dim")
    settings = ws.notifications
    text.append("\nNotifications\n", style="bold underline")
    text.append(f"  new messages: {settings.level_for(ws.agent, '')} for {ws.agent}"
                + ("".join(f"; {a}: {lvl}" for a, lvl in settings.accounts.items()))
                + f" · bell {'on' if settings.bell else 'off'} · desktop "
                + ("on" if settings.desktop and desktop_notifier() else "not available here" if settings.desktop else "off")
                + "\n")
    csat = ws.csat
    text.append("\nSatisfaction question\n", style="bold underline")
    text.append(f"  {csat.question!r}, {csat.after_minutes:g} min after done\n" if csat else
                "  off ([csat] in the config turns it on)\n")
    text.rstrip()
    return text
