"""The conversation list: a virtual, line-API view that stays instant with 100,000 rows.

Only visible lines are drawn, from pages of rows loaded off the UI thread (console/ui/background.py).
Moving the selection repaints two rows and touches no database; a page that is not loaded yet
shows a placeholder until its job reports back.

At 80 columns the list is about 36 cells wide: one line per row would leave ten characters of the
customer's message, so a narrow list gives each row two lines (who, channels and how long they
have waited; then what they wrote, and the SLA badge). From 50 cells on, a row is one line.

A waiting customer's row carries their SLA clock (console/store/sla.py, kept by the engine): the
waiting time is graded by it (green, amber when less than half the target is left, red and a
`!` when late) and a badge says the time left (`due 45m`) or how late it is (`late 2h`), in
business time when the policy counts business hours. Without a clock (no engine has run yet)
the waiting time is graded against `response_target_minutes` as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from rich.segment import Segment
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console import sla
from console.hours import BusinessHours
from console.store import ListFilter, ListRow
from console.ui.guard import Guarded
from console.ui.render import age, age_grade, channel_icon, channel_name, safe_line

PAGE = 100
TWO_LINES_BELOW = 50  # cells: narrower lists give each row two lines


@dataclass
class _Page:
    generation: int
    rows: list[ListRow]


class ConversationList(Guarded, ScrollView, can_focus=True):
    """One row per customer (or per thread) in the current filter, oldest waiting first."""

    COMPONENT_CLASSES = {
        "conversation-list--cursor",
        "conversation-list--name",
        "conversation-list--preview",
        "conversation-list--fine",
        "conversation-list--close",
        "conversation-list--late",
        "conversation-list--ours",
        "conversation-list--placeholder",
        "conversation-list--others",
        "conversation-list--draft",
        "conversation-list--assignee",
    }
    DEFAULT_CSS = """
    ConversationList { background: $surface; }
    ConversationList > .conversation-list--cursor { background: $primary 30%; }
    ConversationList:focus > .conversation-list--cursor { background: $primary 60%; }
    ConversationList > .conversation-list--name { text-style: bold; }
    ConversationList > .conversation-list--preview { color: $text-muted; }
    ConversationList > .conversation-list--fine { color: $success; }
    ConversationList > .conversation-list--close { color: $warning; }
    ConversationList > .conversation-list--late { color: $error; text-style: bold; }
    ConversationList > .conversation-list--ours { color: $text-muted; }
    ConversationList > .conversation-list--placeholder { color: $text-disabled; }
    ConversationList > .conversation-list--others { color: $secondary; text-style: bold; }
    ConversationList > .conversation-list--draft { color: $warning; text-style: bold; }
    ConversationList > .conversation-list--assignee { color: $text-muted; }
    """
    BINDINGS = [
        Binding("j,down", "move(1)", "Next", id="list.down", show=False),
        Binding("k,up", "move(-1)", "Previous", id="list.up", show=False),
        Binding("g,home", "jump_top", "Top", id="list.top", show=False),
        Binding("G,end", "jump_bottom", "Bottom", id="list.bottom", show=False),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", id="list.page_down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", id="list.page_up", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)

    class Highlighted(Message):
        """The selected row changed (or its contents did)."""

        def __init__(self, row: ListRow | None):
            super().__init__()
            self.row = row

    class Counted(Message):
        def __init__(self, total: int, counts: dict[str, int]):
            super().__init__()
            self.total, self.counts = total, counts

    def __init__(self, response_target_minutes: int = 60, hours: BusinessHours | None = None, **kwargs):
        super().__init__(**kwargs)
        self.target = response_target_minutes
        self.hours = hours or BusinessHours.always_open()
        self.filter = ListFilter()
        self.total = 0
        self.counted = False
        self.generation = 0
        self._pages: dict[int, _Page] = {}
        self._loading: set[tuple[int, int]] = set()
        self._selected: ListRow | None = None
        self._announced: tuple | None = None
        self._released: int | None = None
        self._viewers: dict[int, list[tuple[str, str]]] = {}  # customer id -> [(agent, activity)] of others
        self._drafts: set[int] = set()  # customers with a draft of this agent
        self.me = ""  # this agent: rows assigned to someone else show who
        self.empty_note = "Nothing here."
        self._strips: dict[tuple, Strip] = {}
        self._marks_version = 0  # changes with viewers and drafts, which rows show

    @property
    def viewers(self) -> dict[int, list[tuple[str, str]]]:
        return self._viewers

    @viewers.setter
    def viewers(self, value: dict[int, list[tuple[str, str]]]) -> None:
        self._viewers = value
        self._marks_version += 1

    @property
    def drafts(self) -> set[int]:
        return self._drafts

    @drafts.setter
    def drafts(self, value: set[int]) -> None:
        self._drafts = value
        self._marks_version += 1

    # ---- data ---------------------------------------------------------------------------------
    def set_filter(self, flt: ListFilter) -> None:
        self.filter = replace(flt, keep=None, keep_since=None, keep_channels=())
        self._selected = None
        self._released = None
        self.cursor = 0
        self.scroll_to(y=0, animate=False)
        self.reload(forget=True)

    def release(self) -> None:
        """The next reload lets the selected row go when it no longer belongs to this tab (done,
        snoozed, reopened: the user moved it on purpose and the next row takes its place)."""
        self._released = self._selected.key if self._selected else None

    def reload(self, forget: bool = False) -> None:
        """Re-read the count and the visible pages; old rows stay on screen until new ones arrive.

        The selected row stays listed, where it was, even if its status moved (a reply makes an
        open conversation waiting): rows only vanish under the cursor when the user asked for it
        (`release`)."""
        self.generation += 1
        row = self._selected
        if row is None or row.key == self._released:
            self.filter = replace(self.filter, keep=None, keep_since=None, keep_channels=())
        elif self.filter.keep != row.key:
            self.filter = replace(self.filter, keep=row.key, keep_since=row.since, keep_channels=row.channels)
        if forget:
            self._pages.clear()
        generation, flt = self.generation, self.filter
        self.app.background.run(lambda store: store.status_counts(flt), lambda counts: self._counted(generation, counts),
                                what="count the conversations", key="list-count")
        top = self.row_at_line(int(self.scroll_offset.y))
        bottom = self.row_at_line(int(self.scroll_offset.y) + self.size.height)
        for page in {top // PAGE, bottom // PAGE, self.cursor // PAGE}:
            self._request(page)

    def preload(self, counts: dict[str, int], rows: list[ListRow]) -> None:
        """The first page and the counts, read before the app mounted (console/ui/first_screen.py)."""
        self.generation += 1
        self._counted(self.generation, counts)
        self._loaded(self.generation, 0, self.filter, rows)

    def _counted(self, generation: int, counts: dict[str, int]) -> None:
        if generation != self.generation:
            return
        self.total = counts.get("listed", counts.get(self.filter.status, 0))
        self.counted = True
        self._resize_virtual()
        if self.cursor >= self.total:
            self.cursor = max(0, self.total - 1)
        self.post_message(self.Counted(self.total, counts))
        self.refresh()
        self._announce()

    def _request(self, page: int) -> None:
        if page < 0:
            return
        have = self._pages.get(page)
        if have and have.generation == self.generation:
            return
        token = (self.generation, page)
        if token in self._loading:
            return
        self._loading.add(token)
        generation, flt = self.generation, self.filter
        self.app.background.run(lambda store: store.attach_clocks(store.list_rows(flt, page * PAGE, PAGE), flt),
                                lambda rows: self._loaded(generation, page, flt, rows),
                                what="load the conversation list", key=f"list-page-{page}")

    def _loaded(self, generation: int, page: int, flt: ListFilter, rows: list[ListRow]) -> None:
        self._loading.discard((generation, page))
        if flt != self.filter or generation < self.generation:
            return
        self._pages[page] = _Page(generation, rows)
        if self._selected is not None and page == self.cursor // PAGE:
            # Keep the selection on the same customer when rows above it came or went.
            for offset, row in enumerate(rows):
                if row.key == self._selected.key:
                    self.cursor = page * PAGE + offset
                    break
        self.refresh()
        self._announce()

    def row_at(self, index: int) -> ListRow | None:
        page = self._pages.get(index // PAGE)
        if page is None:
            return None
        offset = index % PAGE
        return page.rows[offset] if offset < len(page.rows) else None

    @property
    def selected(self) -> ListRow | None:
        return self.row_at(self.cursor) if self.total else None

    def _announce(self) -> None:
        row = self.selected
        token = None if row is None else (row.key, row.conversation_id, row.since, row.preview, row.assignee,
                                          row.status, row.channels)
        if token != self._announced:
            self._announced = token
            if row is not None or self.counted:
                self._selected = row
            # After the next frame: the moved selection is on screen at once, and the timeline
            # (loaded for whichever row the selection stops on) follows.
            self.call_after_refresh(self.post_message, self.Highlighted(row))

    # ---- geometry -----------------------------------------------------------------------------
    @property
    def row_height(self) -> int:
        return 2 if self.size.width and self.size.width < TWO_LINES_BELOW else 1

    def row_at_line(self, line: int) -> int:
        return line // self.row_height

    def _resize_virtual(self) -> None:
        self.virtual_size = Size(self.size.width, max(self.total, 1 if self.counted else 0) * self.row_height)

    def on_resize(self) -> None:
        self._resize_virtual()
        self.scroll_to_row(self.cursor)

    # ---- movement -----------------------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        self._refresh_row(old)
        self._refresh_row(new)
        self.scroll_to_row(new)
        self._request(new // PAGE)
        if (new + self.size.height) // PAGE != new // PAGE:
            self._request(new // PAGE + 1)
        self._announce()

    def _refresh_row(self, index: int) -> None:
        height = self.row_height
        y = index * height - int(self.scroll_offset.y)
        if -height < y < self.size.height:
            self.refresh_lines(index * height, height)

    def scroll_to_row(self, index: int) -> None:
        height = self.row_height
        top = int(self.scroll_offset.y)
        view = max(height, self.size.height - self.size.height % height)
        if index * height < top:
            self.scroll_to(y=index * height, animate=False)
        elif (index + 1) * height > top + view:
            self.scroll_to(y=(index + 1) * height - view, animate=False)

    def action_move(self, delta: int) -> None:
        if self.total:
            self.cursor = min(max(0, self.cursor + delta), self.total - 1)

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.size.height // self.row_height - 1))

    def action_jump_top(self) -> None:
        self.cursor = 0

    def action_jump_bottom(self) -> None:
        self.cursor = max(0, self.total - 1)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        top = self.row_at_line(int(new))
        for page in {top // PAGE, (top + self.size.height) // PAGE}:
            self._request(page)

    # ---- drawing ------------------------------------------------------------------------------
    def _style(self, name: str):
        return self.get_component_rich_style(f"conversation-list--{name}", partial=True)

    def render_line(self, y: int) -> Strip:
        line = int(self.scroll_offset.y) + y
        height = self.row_height
        index, part = divmod(line, height)
        width = self.scrollable_content_region.width
        # Scrolling repaints every line: rows already drawn come from a cache, kept while nothing
        # they show changed (the rows, who else is here, the drafts, the minute of their clocks).
        page = self._pages.get(index // PAGE)
        token = (line, height, width, index == self.cursor, page.generation if page else None, self.has_focus,
                 self._marks_version,
                 int(time.time() // 30), self.total, self.empty_note, self.filter.status)
        cached = self._strips.get(token)
        if cached is not None:
            return cached
        strip = self._render_line(line, y, height, index, part, width)
        if len(self._strips) > 400:
            self._strips.clear()
        self._strips[token] = strip
        return strip

    def _render_line(self, line: int, y: int, height: int, index: int, part: int, width: int) -> Strip:
        base = self.rich_style
        if self.counted and self.total == 0:
            if y == 0:
                return Strip([Segment(" " + self.empty_note, base + self._style("placeholder"))]).adjust_cell_length(
                    width, base)
            return Strip.blank(width, base)
        if index >= self.total:
            return Strip.blank(width, base)
        row = self.row_at(index)
        if row is None:
            self._request(index // PAGE)
            text = Text("  …" if part == 0 else "", style=self._style("placeholder"))
        elif height == 1:
            text = self._one_line(row, width)
        else:
            text = self._first_line(row, width) if part == 0 else self._second_line(row, width)
        if index == self.cursor:
            base = base + self._style("cursor")
        text.truncate(width, overflow="ellipsis", pad=True)
        segments = [Segment(seg.text, base + seg.style if seg.style else base) for seg in text.render(self.app.console)]
        return Strip(segments, width).crop(0, width)

    def _clock(self, row: ListRow) -> Text:
        """How long they have waited (open), when it wakes (snoozed), or the last message's age.
        Past the response target the time carries a '!', so it shows without colour (NO_COLOR)."""
        now = time.time()
        if self.filter.status == "snoozed":
            return Text(f" {age(max(0, (row.snooze_until or now) - now)):>3} ", style=self._style("ours"))
        waited = now - row.since
        if self.filter.status == "open" and row.status == "open":
            clock = row.clock
            grade = sla.grade(clock, self.hours, now) if clock is not None else age_grade(waited, self.target)
            mark = "!" if grade == "late" else " "
            return Text(f" {age(waited):>3}{mark}", style=self._style(grade))
        return Text(f" {age(waited):>3} ", style=self._style("ours"))

    def _badge(self, row: ListRow) -> Text:
        """The SLA badge: 'due 45m' (time left) or 'late 2h', in the policy's own time."""
        clock = row.clock
        if clock is None or row.status != self.filter.status or row.status not in ("open", "snoozed"):
            return Text()
        now = time.time()
        left = sla.time_left(clock, self.hours, now)
        grade = "late" if left <= 0 else ("close" if left < clock.target / 2 else "fine")
        return Text(f"{'late' if left <= 0 else 'due'} {age(abs(left))}", style=self._style(grade))

    def _marks(self, row: ListRow) -> Text:
        """Who else is on this customer, a kept draft, or another agent's assignment."""
        text = Text()
        others = self.viewers.get(row.customer_id)
        if others:
            replying = any(activity == "replying" for _, activity in others)
            text.append(("✍" if replying else "⊙") + others[0][0][:8] + " ", style=self._style("others"))
        elif row.assignee and row.assignee != self.me:
            text.append("→" + row.assignee[:8] + " ", style=self._style("assignee"))
        if row.customer_id in self.drafts:
            text.append("✎ ", style=self._style("draft"))
        return text

    def _name_text(self, row: ListRow, width: int) -> Text:
        name = safe_line(row.name, width)
        name.truncate(width, overflow="ellipsis", pad=True)
        name.stylize(self._style("name"))
        return name

    def _icons(self, row: ListRow) -> str:
        return "".join(channel_icon(c) for c in row.channels[:3])

    def _preview(self, row: ListRow, width: int) -> Text:
        lead = "↩ " if row.last_direction == "out" else ""
        preview = safe_line(lead + (row.preview or row.subject), width + 1)
        preview.truncate(width, overflow="ellipsis", pad=True)
        preview.stylize(self._style("preview"))
        return preview

    def _one_line(self, row: ListRow, width: int) -> Text:
        name_width = max(8, min(22, width * 2 // 5))
        text = Text(no_wrap=True, end="")
        text.append(" ")
        text.append_text(self._name_text(row, name_width))
        text.append(f" {self._icons(row):<3} ")
        text.append_text(self._marks(row))
        clock = self._clock(row)
        badge = self._badge(row)
        text.append_text(self._preview(row, max(0, width - text.cell_len - clock.cell_len - badge.cell_len - 1)))
        if badge:
            text.append(" ")
            text.append_text(badge)
        text.append_text(clock)
        return text

    def _first_line(self, row: ListRow, width: int) -> Text:
        marks = self._marks(row)
        clock = self._clock(row)
        icons = f" {self._icons(row):<3}"
        text = Text(no_wrap=True, end="")
        text.append(" ")
        text.append_text(self._name_text(row, max(6, width - 1 - len(icons) - marks.cell_len - clock.cell_len - 1)))
        text.append(icons)
        text.append(" ")
        text.append_text(marks)
        text.append_text(clock)
        return text

    def _second_line(self, row: ListRow, width: int) -> Text:
        text = Text("   ", no_wrap=True, end="")
        badge = self._badge(row)
        text.append_text(self._preview(row, max(0, width - 4 - (badge.cell_len + 1 if badge else 0))))
        if badge:
            text.append(" ")
            text.append_text(badge)
        return text


def describe_empty(flt: ListFilter, me: str) -> str:
    """What an empty list means, in words ("No conversations assigned to you in Open.")."""
    tab = {"open": "Open", "waiting": "Waiting", "snoozed": "Snoozed", "done": "Done"}[flt.status]
    what = "conversations"
    if flt.channel:
        what = f"{channel_name(flt.channel)} conversations"
    parts = [f"No {what}"]
    if flt.assignee:
        parts.append("assigned to you" if flt.assignee == me else f"assigned to {flt.assignee}")
    if flt.tag:
        parts.append(f"of customers tagged #{flt.tag}")
    if flt.breaching is not None:
        parts.append("breaching their SLA within the hour")
    return " ".join(parts) + f" in {tab}."
