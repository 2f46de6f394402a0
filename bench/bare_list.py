"""The reference for moving the selection: a bare Textual line-API list of 100,000 rows.

The same 80x24 shape as console (a header line, a list on the left, a pane on the right, a
footer), a row drawn the way console draws one (a name, an icon, a preview, a time), rows kept
in memory, `j` moving a cursor and repainting two lines. What console does on top (rows paged
from the store, the selected customer's timeline loaded and drawn) is what the benchmark
measures against this.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.containers import Horizontal
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Static

ROWS = 100_000


class BareList(ScrollView, can_focus=True):
    BINDINGS = [Binding("j,down", "move(1)", "Next"), Binding("k,up", "move(-1)", "Previous")]
    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rows = [(f"Customer {n}", "☎", f"Order question number {n} about a sourdough loaf", f"{n % 59}m")
                     for n in range(ROWS)]

    def on_mount(self) -> None:
        self.virtual_size = Size(self.size.width, ROWS)

    def watch_cursor(self, old: int, new: int) -> None:
        for index in (old, new):
            self.refresh_lines(index, 1)
        top = int(self.scroll_offset.y)
        if new >= top + self.size.height:
            self.scroll_to(y=new - self.size.height + 1, animate=False)

    def action_move(self, delta: int) -> None:
        self.cursor = min(max(0, self.cursor + delta), ROWS - 1)

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= ROWS:
            return Strip.blank(width, base)
        name, icon, preview, clock = self.rows[index]
        text = Text(no_wrap=True, end="")
        text.append(f" {name:<14} {icon}  ", style="bold")
        text.append(preview[: max(0, width - 24)], style="dim")
        text.append(f" {clock:>4}")
        if index == self.cursor:
            base = base + self.get_component_rich_style("bare-list--cursor", partial=True)
        text.truncate(width, overflow="ellipsis", pad=True)
        return Strip([Segment(s.text, base + s.style if s.style else base) for s in text.render(self.app.console)],
                     width)

    COMPONENT_CLASSES = {"bare-list--cursor"}
    DEFAULT_CSS = "BareList > .bare-list--cursor { background: $primary 60%; }"


class BareListApp(App):
    CSS = "#left { width: 46%; } #right { width: 1fr; }"

    def compose(self):
        yield Static("bare list")
        with Horizontal():
            yield BareList(id="left")
            yield Static("the selected row", id="right")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(BareList).focus()

    @property
    def cursor(self) -> int:
        return self.query_one(BareList).cursor


if __name__ == "__main__":
    BareListApp().run()
