"""Segments (`S` on the campaigns list): saved live searches over customers, with their counts,
and the editor: a name, the query (the search grammar plus customer filters, see
console/outreach/segments.py) with the count of who is in it now, worked out as one types off the
UI thread (a newer query cancels the older count), and the exclude list.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Input, Static

from console.store import SegmentCancelled
from console.ui.outreach.base import DELETE, MOVES, NEW, OPEN, OutreachScreen, guarded
from console.ui.outreach.rows import RowList
from console.ui.render import safe_line

COUNT_DELAY = 0.25  # seconds of quiet typing before the count is worked out
GRAMMAR = ("words, from: status: after: before: · tag:regular channel:sms city:Berlin orders>3 "
           "last_inbound<30d replied:NAME · not:tag:x")


class SegmentsScreen(OutreachScreen):
    BINDINGS = [*MOVES, NEW, OPEN, DELETE]

    def __init__(self):
        super().__init__()
        self.segments = []

    def on_mount(self) -> None:
        super().on_mount()
        self.title_line(Text.assemble(("Segments", "bold"), " ─ who a campaign is for, worked out when it sends"))

    def reload(self) -> None:
        def job(store):
            return [(s, store.count_segment(s.query, s.exclude)) for s in store.segments()]

        self.run(guarded(job), self._show, what="count the segments", key="segments")

    def _show(self, result) -> None:
        if isinstance(result, Exception):
            self.refused(result)
            return
        self.segments = [s for s, _ in result]
        rows = []
        for segment, count in result:
            text = safe_line(segment.name, 24, style="bold")
            text.pad_right(25 - text.cell_len)
            text.append(f"{count:>6} now  ")
            text.append_text(safe_line(segment.query, 60, style="dim"))
            rows.append(text)
        self.rows.placeholder = "No segment yet: n makes one."
        self.rows.show(rows)
        self.note("n new · enter edit · delete removes (not one a campaign uses) · esc back")

    @property
    def selected(self):
        index = self.rows.index
        return self.segments[index] if index is not None and index < len(self.segments) else None

    def action_new(self) -> None:
        self.app.push_screen(SegmentEditScreen(None))

    def action_open(self) -> None:
        segment = self.selected
        if segment is None:
            self.app.bell()
            return
        self.app.push_screen(SegmentEditScreen(segment.id))

    def action_delete(self) -> None:
        segment = self.selected
        if segment is None:
            self.app.bell()
            return

        def done(result) -> None:
            if isinstance(result, Exception):
                self.refused(result)
            else:
                self.app.notify(f"Segment {safe_line(segment.name, 40).plain} deleted.", timeout=2)
            self.reload()

        self.run(guarded(lambda store: store.delete_segment(segment.id)), done, what="delete the segment", lane="write")


class SegmentEditScreen(OutreachScreen):
    BINDINGS = [
        *MOVES,
        Binding("ctrl+s", "save", "Save", id="segment.save", priority=True),
        Binding("n", "new", "Exclude a customer", id="outreach.new"),
        Binding("delete", "delete", "Include again", id="outreach.delete", show=False),
    ]

    def check_action(self, action: str, parameters) -> bool | None:
        # In the name or query field, n, j, k and delete are what one types: the keys of the list
        # below act only when the list has the focus.
        if action in ("new", "delete", "move") and isinstance(self.focused, Input):
            return False
        return True

    def __init__(self, segment_id: int | None):
        super().__init__()
        self.segment_id = segment_id
        self.exclude: list[int] = []
        self.names: dict[int, str] = {}
        self.saved: tuple[str, str, tuple[int, ...]] | None = None
        self._timer = None
        self._serial = 0

    def body(self):
        yield Input(placeholder="Name, e.g. Regulars in Berlin", id="segment-name")
        yield Input(placeholder="Who: e.g. tag:regular city:Berlin last_inbound<60d", id="segment-query")
        yield Static(id="segment-count")
        yield Static(Text("Excluded by hand (n adds, delete includes again):", style="bold"))
        yield RowList(id="outreach-rows", placeholder="nobody")

    def on_mount(self, event) -> None:
        event.prevent_default()  # not OutreachScreen's: it would give the list the focus
        self.title_line(Text("Segment", style="bold"))
        self.note(GRAMMAR)
        self.query_one("#segment-name", Input).focus()
        self.reload()

    def reload(self) -> None:
        if self.segment_id is None:
            self.saved = ("", "", ())
            self._count()
            return
        segment_id = self.segment_id

        def job(store):
            segment = store.segment(segment_id)
            return segment, {c: store.customer_name(c) for c in (segment.exclude if segment else [])}

        self.run(job, self._loaded, what="read the segment", key="segment-edit")

    def on_screen_resume(self) -> None:
        pass  # what is typed here stays as typed

    def _loaded(self, result) -> None:
        segment, names = result
        if segment is None:
            self.app.pop_screen()
            return
        self.exclude, self.names = list(segment.exclude), names
        self.query_one("#segment-name", Input).value = segment.name
        self.query_one("#segment-query", Input).value = segment.query
        self.saved = (segment.name, segment.query, tuple(segment.exclude))
        self._show_excluded()
        self._count()

    def _show_excluded(self) -> None:
        self.rows.show([safe_line(self.names.get(c, f"customer {c}"), 60) for c in self.exclude])

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "segment-query":
            if self._timer is not None:
                self._timer.stop()
            self._timer = self.set_timer(COUNT_DELAY, self._count)

    def _count(self) -> None:
        """Who is in it now: a search-lane job, cancelled by the next keystroke's."""
        self._serial += 1
        serial = self._serial
        query, exclude = self.query_one("#segment-query", Input).value, list(self.exclude)
        self.query_one("#segment-count", Static).update(Text("counting…", style="dim"))

        def job(store, ticket):
            try:
                members = store.segment_members(query, exclude, should_stop=lambda: ticket.cancelled)
            except SegmentCancelled:
                return None
            except ValueError as error:  # the grammar, in a sentence
                return error
            return len(members), [store.customer_name(c) for c in members[:4]]

        self.run(job, lambda result: self._counted(serial, result), what="count the segment", lane="search",
                 key="segment-count", pass_ticket=True)

    def _counted(self, serial: int, result) -> None:
        if serial != self._serial or result is None or not self.is_mounted:
            return
        shown = self.query_one("#segment-count", Static)
        if isinstance(result, Exception):
            shown.update(Text(str(result), style="bold"))
            return
        count, names = result
        text = Text(f"{count} customer{'s' if count != 1 else ''} now", style="bold")
        if names:
            text.append(": ")
            text.append_text(safe_line(", ".join(names) + (" …" if count > len(names) else ""), 70, style="dim"))
        shown.update(text)

    def action_new(self) -> None:
        from console.ui.screens import PickScreen

        def lookup(store, text: str):
            return [(str(cid), Text.assemble(safe_line(name, 30, style="bold"), "  ", safe_line(extra, 50, style="dim")))
                    for cid, name, extra in store.find_customers(text)]

        def chosen(answer) -> None:
            if answer and answer[1]:
                customer = int(answer[1])
                if customer not in self.exclude:
                    self.exclude.append(customer)
                    self.names[customer] = answer[0]
                    self.run(lambda store: store.customer_name(customer), lambda name: self._named(customer, name),
                             what="read the customer's name")
                    self._show_excluded()
                    self._count()

        self.app.push_screen(PickScreen("Exclude a customer from this segment (name, email or phone)", lookup,
                                        allow_free_text=False, min_chars=1,
                                        empty="No customer matches '{text}'"), chosen)

    def _named(self, customer: int, name: str) -> None:
        self.names[customer] = name
        self._show_excluded()

    def action_delete(self) -> None:
        index = self.rows.index
        if index is None:
            self.app.bell()
            return
        del self.exclude[index]
        self._show_excluded()
        self._count()

    def _current(self) -> tuple[str, str, tuple[int, ...]]:
        return (self.query_one("#segment-name", Input).value.strip(), self.query_one("#segment-query", Input).value,
                tuple(self.exclude))

    def action_save(self, then_back: bool = False) -> None:
        name, query, exclude = self._current()
        segment_id = self.segment_id

        def done(result) -> None:
            if isinstance(result, Exception):
                self.refused(result)
                return
            self.segment_id, self.saved = result, (name, query, exclude)
            self.app.notify(f"Segment {name} saved.", timeout=2)
            if then_back:
                self.app.pop_screen()

        self.run(guarded(lambda store: store.save_segment(name, query, list(exclude), segment_id)), done,
                 what="save the segment", lane="write")

    def action_back(self) -> None:
        """Leaving keeps what was typed, when it can be saved."""
        if self._current() == self.saved or not self._current()[0]:
            self.app.pop_screen()
        else:
            self.action_save(then_back=True)
