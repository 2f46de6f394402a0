"""A list of one-line rows for the outreach screens: campaigns, steps, texts, recipients, segments.

A line-API view (only the lines on screen are drawn), so the dry run's 10,000 recipients cost what
ten do; the selected row is marked with `▶` as well as with the theme's cursor colour, so it is
seen with NO_COLOR too. Rows are `rich.text.Text` made by the screens from sanitised values. The
screens move the cursor (their `outreach.down` / `outreach.up` bindings) and hear `Moved`.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.text import Text
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.ui.guard import Guarded


class RowList(Guarded, ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"row-list--cursor", "row-list--placeholder"}
    DEFAULT_CSS = """
    RowList { background: $surface; height: 1fr; }
    RowList > .row-list--cursor { background: $primary 30%; }
    RowList:focus > .row-list--cursor { background: $primary 60%; text-style: bold; }
    RowList > .row-list--placeholder { color: $text-muted; }
    """

    class Moved(Message):
        def __init__(self, rows: "RowList", index: int | None):
            super().__init__()
            self.rows, self.index = rows, index

        @property
        def control(self) -> "RowList":
            return self.rows

    def __init__(self, placeholder: str = "", **kwargs):
        super().__init__(**kwargs)
        self.rows: list[Text] = []
        self.cursor = 0
        self.placeholder = placeholder

    def show(self, rows: list[Text], keep: bool = True) -> None:
        """New rows; the cursor stays on its index when `keep` (clamped), else goes to the top."""
        self.rows = rows
        self.cursor = min(self.cursor, max(0, len(rows) - 1)) if keep else 0
        self.virtual_size = Size(self.size.width, len(rows))
        self._follow()
        self.refresh()
        self.post_message(self.Moved(self, self.index))

    @property
    def index(self) -> int | None:
        return self.cursor if self.rows else None

    def move(self, delta: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))
        self._follow()
        self.refresh()
        self.post_message(self.Moved(self, self.index))

    def _follow(self) -> None:
        height = max(1, self.scrollable_content_region.height)
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        line = int(self.scroll_y) + y
        if not self.rows:
            if y == 0 and self.placeholder:
                style = base + self.get_component_rich_style("row-list--placeholder", partial=True)
                return Strip([Segment(" " + self.placeholder, style)]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        if line >= len(self.rows):
            return Strip.blank(width, base)
        chosen = line == self.cursor
        text = Text("▶ " if chosen else "  ", no_wrap=True, end="")
        text.append_text(self.rows[line])
        text.truncate(width, overflow="ellipsis", pad=True)
        style = base + self.get_component_rich_style("row-list--cursor", partial=True) if chosen else base
        segments = [Segment(seg.text, style + seg.style if seg.style else style) for seg in text.render(self.app.console)]
        return Strip(segments).adjust_cell_length(width, style)
