"""What needs someone: the Reports screen, the accounts' health and the automation panel, and
telling this agent about new customer messages and the rules' notices.

New messages are found in the store's event log past a mark taken when the console started, so
a console notifies about what arrived while it runs, whichever process stored it. The level
(`[notifications]`: all, mine = assigned to me or to nobody, none; per account and per agent,
console/notify.py) decides; then the terminal bell, a notice on screen, and a desktop
notification where `notify-send` exists — the customer's name cleaned, never their words.
"""

from __future__ import annotations

import logging
import subprocess
import threading

from textual.binding import Binding

from console.notify import desktop_notifier, notice_words
from console.ui.render import channel_name, safe_line

log = logging.getLogger("console.ui")


class AttentionActions:
    KEYS = [
        Binding("ctrl+r", "reports", "Reports", id="app.reports"),
        Binding("H", "status", "Accounts, hours, SLA, rules", id="app.status", show=False),
    ]

    _seen_event: int | None = None
    _seen_notice: int | None = None

    def action_reports(self) -> None:
        from console.ui.reports_screen import ReportsScreen

        self.app.push_screen(ReportsScreen(self.workspace))

    def action_status(self) -> None:
        from console.ui.status_screen import StatusScreen

        self.app.push_screen(StatusScreen(self.workspace))

    # ---- notifications ----------------------------------------------------------------------------
    def start_watching(self) -> None:
        """From now on: what arrived before this console started is not news."""
        def marked(marks) -> None:
            self._seen_event, self._seen_notice = marks

        self.run(lambda store: (store.last_event_seq(), store.last_notice_id()), marked,
                 what="read the workspace's events", key="watch-start")

    def watch(self) -> None:
        if self._seen_event is None:
            return
        seen_event, seen_notice, agent = self._seen_event, self._seen_notice, self.agent

        def job(store):
            return store.new_messages_after(seen_event), store.notices_after(seen_notice, agent)

        self.run(job, self._alert, what="read new messages", key="watch")

    def _alert(self, found) -> None:
        messages, notices = found
        if messages:
            self._seen_event = max(self._seen_event or 0, messages[-1]["seq"])
        if notices:
            self._seen_notice = max(self._seen_notice or 0, notices[-1]["id"])
        settings = self.workspace.notifications
        wanted = [m for m in messages if settings.wants(self.agent, m["account"], m["assignee"])]
        for notice in notices:
            self.app.notify(safe_line(notice["text"], 160).plain, title="rule", timeout=8)
        if not wanted and not notices:
            return
        if settings.bell:
            self.app.bell()
        if not wanted:
            return
        names = list(dict.fromkeys(m["name"] for m in wanted))
        channels = [channel_name(m["channel"]) for m in wanted]
        if len(names) == 1:
            self.app.notify(f"New message from {safe_line(names[0], 40).plain} on {channels[0]}", timeout=4)
        else:
            self.app.notify(f"{len(wanted)} new messages from {len(names)} customers", timeout=4)
        command = desktop_notifier() if settings.desktop else None
        if command:
            summary, body = notice_words(names, channels, self.workspace.name)
            threading.Thread(target=_desktop, args=(command, summary, body), daemon=True).start()


def _desktop(command: str, summary: str, body: str) -> None:
    try:
        subprocess.run([command, "--app-name=console", summary, body], timeout=10, check=False,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("no desktop notification: %s", exc)
