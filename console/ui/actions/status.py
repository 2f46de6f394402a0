"""Moving customers between the tabs: done, reopen, snooze, and the next one waiting."""

from __future__ import annotations

from dataclasses import replace

from textual.binding import Binding

from console.ui.render import safe_line

STATUS_WORDS = {"open": "open again", "waiting": "waiting", "snoozed": "snoozed", "done": "done"}


class StatusActions:
    KEYS = [
        Binding("e", "done", "Done", id="conversation.done"),
        Binding("u", "reopen", "Reopen", id="conversation.reopen", show=False),
        Binding("s", "snooze", "Snooze", id="conversation.snooze"),
        Binding("space", "next_waiting", "Next needing a reply", id="conversation.next_waiting", show=False),
    ]

    def _set_status(self, status: str, from_statuses: tuple[str, ...], snooze_until: float | None = None) -> None:
        row = self.need_customer()
        if row is None:
            return
        by_customer = self.conversations.filter.by_customer

        def job(store):
            if by_customer:
                return store.set_status(status, customer_id=row.customer_id, from_statuses=from_statuses,
                                        snooze_until=snooze_until)
            return store.set_status(status, conversation_id=row.conversation_id, from_statuses=from_statuses,
                                    snooze_until=snooze_until)

        def written(changed: int) -> None:
            name = safe_line(row.name, 40).plain
            if changed:
                self.app.notify(f"{name}: {STATUS_WORDS[status]}", timeout=2)
            else:
                self.app.notify(f"{name} is already {STATUS_WORDS[status]}.", timeout=2)
            if self.current is not None and self.current.key == row.key:
                self.conversations.release()
            self.conversations.reload()

        self.run(job, written, what=f"mark {safe_line(row.name, 40).plain} {STATUS_WORDS[status]}", lane="write")

    def action_done(self) -> None:
        self._set_status("done", ("open", "waiting", "snoozed"))

    def action_reopen(self) -> None:
        self._set_status("open", ("waiting", "snoozed", "done"))

    def action_snooze(self) -> None:
        from console.ui.screens import SnoozeScreen

        if self.need_customer() is None:
            return

        def chosen(until: float | None) -> None:
            if until is not None:
                self._set_status("snoozed", ("open", "waiting", "done"), snooze_until=until)

        self.app.push_screen(SnoozeScreen(), chosen)

    def action_next_waiting(self) -> None:
        """The customer who has waited longest for a reply: the top of Open, all channels (a
        customer just answered, kept under Open, is not waiting any more)."""
        flt = self.conversations.filter
        self.conversations.set_filter(replace(flt, status="open", channel=None))
        self.after_filter()
        self.conversations.focus()
