"""The right pane: who the customer is, and everything they and we said, on every channel.

`Timeline` is a line-API view: a customer's messages are laid out (each message's height at the
pane's width, console/ui/wrap.py) when they arrive, which is cheap, and only the lines on screen
are drawn, from a small cache. Opening a customer with 2,000 messages costs what opening one
with three does. Older history is loaded page by page as the reader scrolls up (`g` loads all of
it and goes to the first message).

The view follows the newest message only while the reader is at the bottom: a refresh (a
delivery status, a new message, another agent's note) keeps the place of someone reading older
history.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from console.store import IdentityRow, TimelineEntry
from console.ui.guard import Guarded
from console.ui.render import channel_icon, channel_name, clean_body, identity_label, safe_line, when
from console.ui.wrap import wrap_offsets

INDENT = 4
CACHE_ENTRIES = 256


def fold_quotes(body: str) -> tuple[str, int]:
    """Split off quoted history ('> ' lines and 'On ... wrote:' headers) at the end of a body.

    Returns (what the person wrote, how many quoted lines were folded)."""
    lines = body.rstrip().splitlines()
    cut = len(lines)
    while cut > 0 and (lines[cut - 1].startswith(">") or not lines[cut - 1].strip()):
        cut -= 1
    if cut < len(lines) and cut > 0 and lines[cut - 1].rstrip().endswith("wrote:"):
        cut -= 1
    folded = len([line for line in lines[cut:] if line.strip()])
    return "\n".join(lines[:cut]).rstrip(), folded


def body_text(entry: TimelineEntry, show_quotes: bool) -> tuple[str, int]:
    """The text drawn under a message's heading (sanitised, tabs expanded), and where in it the
    folded-quote and attachment notes begin (drawn dim; the text's length when there are none)."""
    body = clean_body(entry.body)
    body, folded = (body.rstrip(), 0) if show_quotes else fold_quotes(body)
    if not body and not entry.attachments:
        body = "(no text)"
    notes = []
    if folded:
        notes.append(f"⋯ {folded} quoted line{'s' if folded != 1 else ''} (z shows them)")
    for attachment in entry.attachments:
        size = attachment.get("size")
        name = safe_line(attachment.get("name") or "attachment", 60).plain
        kind = safe_line(attachment.get("content_type") or "", 40).plain
        notes.append(f"📎 {name}  {kind}" + (f", {format_size(size)}" if size else ""))
    if not notes:
        return body, len(body)
    body = body + "\n" if body else ""
    return body + "\n".join(notes), len(body)


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


@dataclass
class Layout:
    """Where each message starts, at one width: a pure function of the messages (it may be
    computed in a worker thread)."""

    width: int
    show_quotes: bool
    top: int = 0  # lines above the first message (the "older messages" note)
    offsets: list[int] = field(default_factory=list)  # first line of each message
    bodies: list[tuple[str, int, list[tuple[int, int]]]] = field(default_factory=list)  # text, notes at, lines
    total: int = 0


def lay_out(entries: list[TimelineEntry], width: int, show_quotes: bool, more_before: bool = False) -> Layout:
    layout = Layout(width, show_quotes, top=1 if more_before else 0)
    line = layout.top
    for entry in entries:
        layout.offsets.append(line)
        if entry.direction == "event":  # what a rule did: one line of its own
            layout.bodies.append(("", 0, []))
            line += 2
            continue
        text, notes = body_text(entry, show_quotes)
        lines = wrap_offsets(text, max(8, width - INDENT))
        layout.bodies.append((text, notes, lines))
        line += 1 + len(lines) + 1  # heading, body, a blank line
    layout.total = line
    return layout


class CustomerHeader(Guarded, Static):
    """Name and every identity of the selected customer, with opt-outs and who else is here."""

    COMPONENT_CLASSES = {"customer-header--name", "customer-header--bad", "customer-header--others"}

    def show(self, name: str, identities: list[IdentityRow], others: str = "") -> None:
        text = safe_line(name, 60, style=self.get_component_rich_style("customer-header--name", partial=True))
        for ident in identities:
            text.append("  ")
            text.append_text(identity_label(ident.kind, ident.address, ident.display_name, 40))
            if ident.opted_out:
                stopped = ", ".join(channel_name(c) for c in ident.opted_out_of)
                text.append(f" ({stopped} opted out)",
                            style=self.get_component_rich_style("customer-header--bad", partial=True))
        if others:
            text.append("\n")
            text.append(f"👁 {others}", style=self.get_component_rich_style("customer-header--others", partial=True))
        text.no_wrap, text.overflow = True, "ellipsis"
        # A fixed height (2 lines): no layout pass for the whole screen on every move of the selection.
        self.update(text, layout=False)

    def clear(self, note: str = "No conversation selected") -> None:
        self.update(Text(note, style="dim"), layout=False)


class Timeline(Guarded, ScrollView, can_focus=True):
    """The customer's messages across channels, newest at the bottom."""

    COMPONENT_CLASSES = {
        "timeline--bar", "timeline--match-bar", "timeline--meta", "timeline--you", "timeline--them",
        "timeline--subject", "timeline--bad", "timeline--match", "timeline--note", "timeline--placeholder",
    }
    DEFAULT_CSS = """
    Timeline { overflow-y: scroll; }
    Timeline > .timeline--bar { color: $accent; text-style: bold; }
    Timeline > .timeline--match-bar { color: $secondary; text-style: bold; }
    Timeline > .timeline--meta { color: $text-muted; }
    Timeline > .timeline--you { color: $success; text-style: bold; }
    Timeline > .timeline--them { text-style: bold; }
    Timeline > .timeline--subject { text-style: italic; }
    Timeline > .timeline--bad { color: $error; }
    Timeline > .timeline--match { text-style: bold reverse; }
    Timeline > .timeline--note { color: $text-muted; }
    Timeline > .timeline--placeholder { color: $text-disabled; }
    """
    BINDINGS = [
        Binding("j,down", "scroll_down", "Scroll down", id="timeline.down", show=False),
        Binding("k,up", "scroll_up", "Scroll up", id="timeline.up", show=False),
        Binding("g,home", "oldest", "First message", id="timeline.top", show=False),
        Binding("G,end", "newest", "Newest message", id="timeline.bottom", show=False),
        Binding("z", "toggle_quotes", "Show quoted text", id="timeline.quotes"),
        Binding("escape", "back", "Back to the list", id="timeline.back", show=False),
        Binding("d", "save_attachments", "Save attachments", id="timeline.save_attachments", show=False),
        Binding("n", "match(1)", "Next search match", id="timeline.next_match", show=False),
        Binding("N", "match(-1)", "Previous search match", id="timeline.previous_match", show=False),
    ]

    class NeedOlder(Message):
        """The reader is near the top (or pressed g): load messages older than the first one."""

        def __init__(self, everything: bool):
            super().__init__()
            self.everything = everything

    class SaveAttachments(Message):
        def __init__(self, entry: TimelineEntry):
            super().__init__()
            self.entry = entry

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.entries: list[TimelineEntry] = []
        self.customer_id: int | None = None
        self.selected_conversation: int | None = None
        self.show_quotes = False
        self.highlight: list[str] = []
        self.more_before = False
        self.loading_older = False
        self._match = -1
        self._layout = Layout(0, False)
        self._cache: dict[tuple, list[Strip]] = {}
        self._follow = True
        self._go_top = False
        self._placeholder = "No conversation selected"

    # ---- what is shown ------------------------------------------------------------------------
    @property
    def layout_width(self) -> int:
        return max(20, self.scrollable_content_region.width or self.size.width or 40)

    def show(self, customer_id: int, entries: list[TimelineEntry], conversation_id: int | None,
             more_before: bool, layout: Layout | None = None, highlight: list[str] | None = None) -> None:
        """Show a customer's messages. The same customer again keeps the reader's place (or
        follows the bottom); another customer starts at the newest message (or the newest
        search match)."""
        same = customer_id == self.customer_id
        anchor = self._anchor() if same and not self._follow else None
        fresh_highlight = (highlight or []) != self.highlight
        if not same:
            self._follow, self._go_top = True, False
            self._match = -1
        if same and entries == self.entries and conversation_id == self.selected_conversation \
                and not fresh_highlight and more_before == self.more_before:
            return
        self.customer_id = customer_id
        self.entries = entries
        self.selected_conversation = conversation_id
        self.highlight = list(highlight or [])
        self.more_before = more_before
        self.loading_older = False
        self._cache.clear()
        self._set_layout(layout)
        if self.highlight and (fresh_highlight or not same):
            self._match = -1
            self.action_match(-1)  # the newest match first
        elif self._go_top and not self.more_before:
            self._go_top = False
            self._scroll_to_line(0)
        elif anchor is not None:
            self._restore(anchor)
        else:
            self._scroll_to_bottom()
        self.refresh()

    def prepend(self, older: list[TimelineEntry], more_before: bool) -> None:
        """Older messages arrived: put them above, keeping the reader's place."""
        anchor = self._anchor()
        self.entries = older + self.entries
        self.more_before = more_before
        self.loading_older = False
        if self._match >= 0:
            self._match += len(older)
        self._cache.clear()
        self._set_layout(None)
        if self._go_top and not more_before:
            self._go_top = False
            self._scroll_to_line(0)
        else:
            self._restore(anchor)
        self.refresh()

    def clear(self, note: str = "No conversation selected") -> None:
        self.entries, self.customer_id, self.more_before = [], None, False
        self._placeholder = note
        self._cache.clear()
        self._set_layout(None)
        self.refresh()

    def _set_layout(self, layout: Layout | None) -> None:
        width = self.layout_width
        top = 1 if self.more_before else 0
        if layout is None or layout.width != width or layout.show_quotes != self.show_quotes \
                or len(layout.offsets) != len(self.entries) or layout.top != top:
            layout = lay_out(self.entries, width, self.show_quotes, self.more_before)
        self._layout = layout
        # The pane's own size never depends on its content: no layout pass for the whole screen
        # (which `virtual_size = ...` would ask for) each time another customer is shown.
        size = Size(width, max(1, layout.total))
        if size != self.virtual_size:
            self.set_reactive(Widget.virtual_size, size)
            self._scroll_update(size)
            self.refresh()

    def on_resize(self) -> None:
        if self._layout.width != self.layout_width:
            anchor = None if self._follow else self._anchor()
            self._cache.clear()
            self._set_layout(None)
            if anchor is not None:
                self._restore(anchor)
        if self._follow:
            self._scroll_to_bottom()

    # ---- scrolling ------------------------------------------------------------------------------
    def _anchor(self) -> tuple[int, int] | None:
        """(message id at the top of the view, lines into it): the reader's place."""
        if not self.entries:
            return None
        top = max(int(self.scroll_y), self._layout.top)
        index = max(0, bisect.bisect_right(self._layout.offsets, top) - 1)
        return self.entries[index].id, top - self._layout.offsets[index]

    def _restore(self, anchor: tuple[int, int] | None) -> None:
        if anchor is None:
            self._scroll_to_bottom()
            return
        message_id, into = anchor
        for index, entry in enumerate(self.entries):
            if entry.id == message_id:
                self._scroll_to_line(self._layout.offsets[index] + into)
                return
        self._scroll_to_bottom()

    def _bottom(self) -> int:
        return max(0, self._layout.total - self.scrollable_content_region.height)

    def _scroll_to_bottom(self) -> None:
        self._follow = True
        self._scroll_to_line(self._bottom())

    def _scroll_to_line(self, line: int) -> None:
        """Scroll now, even before the new height is laid out (when a validated scroll would be
        clamped to the old one), and repaint."""
        target = max(0, min(line, self._bottom()))
        if target == int(self.scroll_y):
            return
        self.set_scroll(None, target)
        if self.show_vertical_scrollbar:
            self.vertical_scrollbar.position = target
        self.refresh()
        self._scrolled(target)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._scrolled(int(new))

    def _scrolled(self, top: int) -> None:
        self._follow = top >= self._bottom()
        if top < 5 and self.more_before and not self.loading_older and self.entries:
            self.loading_older = True
            self.post_message(self.NeedOlder(everything=False))

    def action_scroll_down(self) -> None:
        self._scroll_to_line(int(self.scroll_y) + 1)

    def action_scroll_up(self) -> None:
        self._scroll_to_line(int(self.scroll_y) - 1)

    def action_oldest(self) -> None:
        """The first message of the whole history: older pages are loaded first if needed."""
        if self.more_before:
            self._go_top = True
            if not self.loading_older:
                self.loading_older = True
                self.post_message(self.NeedOlder(everything=True))
            else:
                self.post_message(self.NeedOlder(everything=True))
            return
        self._follow = False
        self._scroll_to_line(0)

    def action_newest(self) -> None:
        self._scroll_to_bottom()

    def action_back(self) -> None:
        self.screen.focus_list()

    def action_toggle_quotes(self) -> None:
        anchor = None if self._follow else self._anchor()
        self.show_quotes = not self.show_quotes
        self._cache.clear()
        self._set_layout(None)
        self._restore(anchor)
        describe = "Hide quoted text" if self.show_quotes else "Show quoted text"
        self.screen.describe_binding(self, "timeline.quotes", describe)
        self.refresh()

    # ---- search matches -------------------------------------------------------------------------
    def matches(self) -> list[int]:
        """Indexes of the messages holding a search word."""
        words = [w.lower() for w in self.highlight]
        return [n for n, e in enumerate(self.entries)
                if e.direction != "event" and any(w in (e.subject + " " + e.body).lower() for w in words)]

    def action_match(self, step: int) -> None:
        found = self.matches()
        if not found:
            if self.highlight:
                self.app.bell()
                self.app.notify("No search match in this customer's timeline.", timeout=2)
            return
        if self._match not in found:
            self._match = found[-1] if step < 0 else found[0]
        else:
            self._match = found[(found.index(self._match) + step) % len(found)]
        self._cache.clear()
        self._follow = False
        self._scroll_to_line(self._layout.offsets[self._match])
        self.refresh()

    @property
    def match_entry(self) -> TimelineEntry | None:
        return self.entries[self._match] if self.highlight and 0 <= self._match < len(self.entries) else None

    def action_save_attachments(self) -> None:
        """The attachments of the message the search is on, else of the newest message that has some."""
        entry = self.match_entry if self.match_entry and self.match_entry.attachments else None
        if entry is None:
            entry = next((e for e in reversed(self.entries) if e.attachments), None)
        if entry is None:
            self.app.notify("No attachments in this customer's timeline.")
            return
        self.post_message(self.SaveAttachments(entry))

    # ---- drawing --------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        line = int(self.scroll_y) + y
        if not self.entries:
            if y == 0:
                style = base + self.get_component_rich_style("timeline--placeholder", partial=True)
                return Strip([Segment(" " + self._placeholder, style)]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        if line >= self._layout.total:
            return Strip.blank(width, base)
        if line < self._layout.top:
            note = "  ⋯ loading older messages…" if self.loading_older else "  ⋯ older messages: scroll up, or g"
            style = base + self.get_component_rich_style("timeline--placeholder", partial=True)
            return Strip([Segment(note, style)]).adjust_cell_length(width, base)
        index = bisect.bisect_right(self._layout.offsets, line) - 1
        strips = self._entry_strips(index, width)
        offset = line - self._layout.offsets[index]
        return strips[offset] if offset < len(strips) else Strip.blank(width, base)

    def _entry_strips(self, index: int, width: int) -> list[Strip]:
        entry = self.entries[index]
        marked = index == self._match and bool(self.highlight)
        token = (index, width, marked, entry.conversation_id == self.selected_conversation)
        strips = self._cache.get(token)
        if strips is None:
            if len(self._cache) > CACHE_ENTRIES:
                self._cache.clear()
            strips = self._render_entry(index, width, marked)
            self._cache[token] = strips
        return strips

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"timeline--{name}", partial=True)

    def _render_entry(self, index: int, width: int, marked: bool) -> list[Strip]:
        entry = self.entries[index]
        base = self.rich_style
        console = self.app.console
        if entry.direction == "event":
            line = Text(no_wrap=True, overflow="ellipsis", end="")
            line.append(f"  {when(entry.sent_at)} · ", style=self._style("meta"))
            line.append_text(safe_line(f"{entry.author} {entry.body}", 200, style=self._style("note")))
            line.truncate(width, overflow="ellipsis")
            return [Strip(list(line.render(console)), line.cell_len).adjust_cell_length(width, base).apply_style(base),
                    Strip.blank(width, base)]
        ours = entry.direction == "out"
        current = entry.conversation_id == self.selected_conversation
        head = Text(no_wrap=True, overflow="ellipsis", end="")
        if marked:
            head.append("▶ ", style=self._style("match-bar"))  # the search match n / N is on
        else:
            head.append("▌ " if current else "  ", style=self._style("bar") if current else self._style("meta"))
        head.append(f"{when(entry.sent_at)} {channel_icon(entry.channel)} ", style=self._style("meta"))
        head.append("you" if ours else "them", style=self._style("you" if ours else "them"))
        if ours and entry.author:
            head.append(" (")
            # What console sent on its own ("auto:rule after-hours", "auto:csat") says so.
            author = entry.author
            if author.startswith("auto:"):
                author = "automatic: " + author[5:]
            head.append_text(safe_line(author, 40))
            head.append(")")
        if entry.subject and entry.channel == "email":
            head.append("  ")
            head.append_text(safe_line(entry.subject, 80, style=self._style("subject")))
        if entry.edited:
            head.append("  (edited)", style=self._style("meta"))
        if entry.campaign:  # ours, sent by a campaign
            head.append("  ✦ ", style=self._style("meta"))
            head.append_text(safe_line(entry.campaign, 40, style=self._style("meta")))
        if entry.answers:  # theirs, answering one
            head.append("  ↩ ", style=self._style("meta"))
            head.append_text(safe_line(f"answers {entry.answers}", 50, style=self._style("meta")))
        if ours and entry.status:
            bad = entry.status in ("failed", "undelivered", "unknown")
            style = self._style("bad" if bad else "meta")
            head.append(f" · {entry.status}", style=style)
            if entry.status_detail and entry.status != "delivered":
                head.append(": ", style=style)
                head.append_text(safe_line(entry.status_detail, 120, style=style))
        head.truncate(width, overflow="ellipsis")
        strips = [Strip(list(head.render(console)), head.cell_len).adjust_cell_length(width, base).apply_style(base)]
        text, notes, lines = self._layout.bodies[index]
        body = Text(text, end="")
        if self.highlight:
            body.highlight_words(self.highlight, style=self._style("match"), case_sensitive=False)
        if notes < len(text):
            body.stylize(self._style("note"), notes)
        pad = Segment(" " * INDENT, base)
        for start, end in lines:
            segments = [pad, *body[start:end].render(console)]
            strips.append(Strip(segments).crop(0, width).adjust_cell_length(width, base).apply_style(base))
        strips.append(Strip.blank(width, base))
        return strips
