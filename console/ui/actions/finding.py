"""Finding customers: search, the status tabs and the filters (channel, mine, tag, grouping)."""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual.binding import Binding

from console.store.search import parse_search
from console.ui.conversation_list import describe_empty
from console.ui.render import channel_icon, channel_name, safe_line, when

STATUS_TABS = ("open", "waiting", "snoozed", "done")


class FindActions:
    KEYS = [
        Binding("slash", "search", "Search", id="app.search"),
        Binding("M", "mine", "Only mine / everyone's", id="list.mine", show=False),
        Binding("number_sign", "tag_filter", "Only a tag / all", id="list.tag", show=False),
        Binding("right_square_bracket", "cycle_status(1)", "Next tab", id="list.next_tab", show=False),
        Binding("left_square_bracket", "cycle_status(-1)", "Previous tab", id="list.previous_tab", show=False),
        Binding("O", "show_status('open')", "Open tab", id="list.open", show=False),
        Binding("W", "show_status('waiting')", "Waiting tab", id="list.waiting", show=False),
        Binding("Z", "show_status('snoozed')", "Snoozed tab", id="list.snoozed", show=False),
        Binding("D", "show_status('done')", "Done tab", id="list.done", show=False),
        Binding("v", "toggle_grouping", "By customer / by thread", id="list.grouping", show=False),
        Binding("B", "breaching_filter", "Only those breaching their SLA soon / all", id="list.breaching",
                show=False),
        Binding("0", "channel_filter(0)", "All channels", id="list.all_channels", show=False),
        *[Binding(str(n), f"channel_filter({n})", f"Channel filter {n}", id=f"list.channel_{n}", show=False)
          for n in range(1, 10)],
    ]

    # ---- search ---------------------------------------------------------------------------------
    def action_search(self) -> None:
        from console.ui.screens import PickScreen

        hits: dict[str, object] = {}

        def lookup(store, text: str, ticket):
            found = store.search(text, limit=50, should_stop=lambda: ticket.cancelled)  # SearchSyntaxError: a ValueError
            words = parse_search(text)[0]
            out = []
            for hit in found:
                hits[str(hit.message_id)] = hit
                label = Text.assemble(safe_line(hit.name, 22, style="bold"), f" {channel_icon(hit.channel)} ",
                                      (f"{hit.status:<7} ", "dim"), (when(hit.sent_at) + "  ", "dim"))
                line = safe_line(hit.line, 160)
                for word in words:
                    line.highlight_words([word], style="bold reverse", case_sensitive=False)
                label.append_text(line)
                out.append((str(hit.message_id), label))
            return out

        def chosen(answer) -> None:
            if answer and answer[1] and answer[1] in hits:
                self._open_hit(hits[answer[1]], parse_search(answer[0])[0])

        self.app.push_screen(PickScreen("Search every message (from: channel: tag: status: before: after:)", lookup,
                                        placeholder="e.g. sourdough from:maria after:2026-11-01",
                                        allow_free_text=False, lane="search", min_chars=2,
                                        empty="No message matches '{text}'."), chosen)

    def _open_hit(self, hit, words: list[str]) -> None:
        def shown(row) -> None:
            if row is None:
                self.app.notify("That customer is gone (merged or split since the search).", severity="warning")
                return
            if self.composer.display:
                self.close_composer()
            self.show_row(row, highlight=words)
            self.timeline.focus()
            self.app.notify(f"Showing {safe_line(row.name, 40).plain} (n / N step through the matches; "
                            "esc goes back to the list)", timeout=3)

        self.run(lambda store: store.row_for(hit.customer_id, hit.conversation_id), shown,
                 what="open the search result")

    # ---- tabs and filters -----------------------------------------------------------------------
    def after_filter(self) -> None:
        self.conversations.empty_note = describe_empty(self.conversations.filter, self.agent)
        self.update_tabs()

    def _filter(self, **changes) -> None:
        self.conversations.set_filter(replace(self.conversations.filter, **changes))
        self.after_filter()

    def action_cycle_status(self, step: int) -> None:
        index = STATUS_TABS.index(self.conversations.filter.status)
        self.action_show_status(STATUS_TABS[(index + step) % len(STATUS_TABS)])

    def action_show_status(self, status: str) -> None:
        self._filter(status=status)
        self.conversations.focus()

    def action_channel_filter(self, number: int) -> None:
        if number and number > len(self.channels):
            here = ", ".join(f"{n} {channel_name(c)}" for n, c in enumerate(self.channels, 1))
            self.app.notify(f"There is no channel {number}; channels here: {here or 'none yet'}.", timeout=4)
            return
        self._filter(channel=self.channels[number - 1] if number else None)

    def action_toggle_grouping(self) -> None:
        self._filter(by_customer=not self.conversations.filter.by_customer)

    def action_breaching_filter(self) -> None:
        """Customers whose SLA clock is due within the hour, or late (console/sla.py SOON)."""
        from console.sla import SOON

        flt = self.conversations.filter
        self._filter(breaching=None if flt.breaching is not None else SOON)

    def action_mine(self) -> None:
        flt = self.conversations.filter
        self._filter(assignee=None if flt.assignee == self.agent else self.agent)

    def action_tag_filter(self) -> None:
        from console.ui.screens import PickScreen

        if self.conversations.filter.tag:
            self._filter(tag=None)
            return

        def lookup(store, text: str):
            return [(t, f"#{t}") for t in store.all_tags() if text.strip().lstrip("#").lower() in t][:15]

        def chosen(answer) -> None:
            if answer and answer[1]:
                self._filter(tag=answer[1])

        self.app.push_screen(PickScreen("Only customers tagged", lookup, allow_free_text=False,
                                        empty="No tag like '{text}' in this workspace (t tags a customer)."), chosen)
