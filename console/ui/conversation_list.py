"""The conversation list: a virtual, line-API view that stays instant with 100,000 rows.

Only visible lines are drawn, from pages of rows that thread workers load from the store. Moving
the selection repaints two lines and touches no database; a page that is not loaded yet shows a
placeholder until its worker reports back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from rich.segment import Segment
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.store import ListFilter, ListRow, Store
from console.ui.render import age, age_grade, icon, safe_line

PAGE = 100


@dataclass
class _Page:
    generation: int
    rows: list[ListRow]


class ConversationList(ScrollView, can_focus=True):
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

    def __init__(self, store: Store, response_target_minutes: int = 60, **kwargs):
        super().__init__(**kwargs)
        self.store = store
        self.target = response_target_minutes
        self.filter = ListFilter()
        self.total = 0
        self.generation = 0
        self._pages: dict[int, _Page] = {}
        self._loading: set[tuple[int, int]] = set()
        self._selected_key: int | None = None
        self._announced: tuple | None = None
        self._released: int | None = None
        self.viewers: dict[int, list[tuple[str, str]]] = {}  # customer id -> [(agent, activity)] of others
        self.me = ""  # this agent: rows assigned to someone else show who

    # ---- data ---------------------------------------------------------------------------------
    def set_filter(self, flt: ListFilter) -> None:
        self.filter = flt
        self._selected_key = None
        self.cursor = 0
        self.scroll_to(y=0, animate=False)
        self.reload(forget=True)

    def release(self) -> None:
        """The next reload lets the selected row go when it no longer belongs to this tab (done,
        snoozed, reopened: the user moved it on purpose and the next row takes its place)."""
        self._released = self._selected_key

    def reload(self, forget: bool = False) -> None:
        """Re-read the count and the visible pages; old rows stay on screen until new ones arrive.

        The selected row stays listed even if its status moved (a reply makes an open conversation
        waiting): rows only vanish under the cursor when the user asked for it (`release`).
        """
        self.generation += 1
        keep = None if self._selected_key == self._released else self._selected_key
        self.filter = replace(self.filter, keep=keep)
        if forget:
            self._pages.clear()
        self._count(self.generation, self.filter)
        first = int(self.scroll_offset.y) // PAGE
        last = (int(self.scroll_offset.y) + self.size.height) // PAGE
        for page in {first, last, self.cursor // PAGE}:
            self._request(page)

    @work(thread=True, exit_on_error=False, group="list-count")
    def _count(self, generation: int, flt: ListFilter) -> None:
        counts = self.store.status_counts(flt)
        self.app.call_from_thread(self._counted, generation, counts)

    def _counted(self, generation: int, counts: dict[str, int]) -> None:
        if generation != self.generation:
            return
        self.total = counts.get("listed", counts.get(self.filter.status, 0))
        self.virtual_size = Size(self.size.width, self.total)
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
        self._load(self.generation, page, self.filter)

    @work(thread=True, exit_on_error=False, group="list-pages")
    def _load(self, generation: int, page: int, flt: ListFilter) -> None:
        rows = self.store.list_rows(flt, page * PAGE, PAGE)
        self.app.call_from_thread(self._loaded, generation, page, flt, rows)

    def _loaded(self, generation: int, page: int, flt: ListFilter, rows: list[ListRow]) -> None:
        self._loading.discard((generation, page))
        if flt != self.filter or generation < self.generation:
            return
        self._pages[page] = _Page(generation, rows)
        if self._selected_key is not None and page == self.cursor // PAGE:
            # Keep the selection on the same customer when rows above it came or went.
            for offset, row in enumerate(rows):
                if row.key == self._selected_key:
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
        token = None if row is None else (row.key, row.conversation_id, row.since, row.preview, row.assignee)
        if token != self._announced:
            self._announced = token
            self._selected_key = row.key if row else None
            self.post_message(self.Highlighted(row))

    # ---- movement -----------------------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old)
        self.refresh_line(new)
        self.scroll_to_region_of(new)
        self._request(new // PAGE)
        if (new + self.size.height) // PAGE != new // PAGE:
            self._request(new // PAGE + 1)
        self._announce()

    def refresh_line(self, index: int) -> None:
        y = index - int(self.scroll_offset.y)
        if 0 <= y < self.size.height:
            self.refresh_lines(y)

    def scroll_to_region_of(self, index: int) -> None:
        top = int(self.scroll_offset.y)
        height = max(1, self.size.height)
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False)

    def action_move(self, delta: int) -> None:
        if self.total:
            self.cursor = min(max(0, self.cursor + delta), self.total - 1)

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.size.height - 1))

    def action_jump_top(self) -> None:
        self.cursor = 0

    def action_jump_bottom(self) -> None:
        self.cursor = max(0, self.total - 1)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, self.total)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        top = int(new)
        for page in {top // PAGE, (top + self.size.height) // PAGE}:
            self._request(page)

    # ---- drawing ------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= self.total:
            return Strip.blank(width, base)
        row = self.row_at(index)
        if row is None:
            self._request(index // PAGE)
            text = Text("  …", style=self.get_component_rich_style("conversation-list--placeholder", partial=True))
        else:
            text = self._row_text(row, width)
        if index == self.cursor:
            base = base + self.get_component_rich_style("conversation-list--cursor", partial=True)
        text.truncate(width, overflow="ellipsis", pad=True)
        segments = [Segment(seg.text, base + seg.style if seg.style else base) for seg in text.render(self.app.console)]
        return Strip(segments, width).crop(0, width)

    def _row_text(self, row: ListRow, width: int) -> Text:
        now = time.time()
        waited = now - row.since
        clock = age(waited if self.filter.status != "snoozed" else max(0, (row.snooze_until or now) - now))
        if self.filter.status == "open":
            grade = age_grade(waited, self.target)
        else:
            grade = "ours"
        icons = "".join(icon(c) for c in row.channels[:3])
        name_width = max(8, min(22, width * 2 // 5))
        name = safe_line(row.name, name_width)
        name.truncate(name_width, overflow="ellipsis", pad=True)
        name.stylize(self.get_component_rich_style("conversation-list--name", partial=True))
        text = Text(no_wrap=True, end="")
        text.append(" ")
        text.append_text(name)
        text.append(f" {icons:<3} ")
        tail = f" {clock:>3}"
        others = self.viewers.get(row.customer_id)
        if others:
            replying = any(activity == "replying" for _, activity in others)
            marker = Text(("✎" if replying else "👁") + others[0][0][:8] + " ", style="bold magenta")
            text.append_text(marker)
        elif row.assignee and row.assignee != self.me:
            text.append_text(Text("→" + row.assignee[:8] + " ", style="dim"))
        preview_width = max(0, width - text.cell_len - len(tail))
        lead = "↩ " if row.last_direction == "out" else ""
        preview = safe_line(lead + (row.preview or row.subject), preview_width + 1)
        preview.truncate(preview_width, overflow="ellipsis", pad=True)
        preview.stylize(self.get_component_rich_style("conversation-list--preview", partial=True))
        text.append_text(preview)
        text.append(tail, style=self.get_component_rich_style(f"conversation-list--{grade}", partial=True))
        return text
