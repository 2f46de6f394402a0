"""The right pane: who the customer is, and everything they and we said, on every channel."""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.store import IdentityRow, TimelineEntry
from console.ui.render import CHANNEL_NAMES, icon, safe, safe_line, when

QUOTE_PREVIEW_LINES = 1


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


class CustomerHeader(Static):
    """Name and every identity of the selected customer, with opt-outs marked."""

    def show(self, name: str, identities: list[IdentityRow], others: str = "") -> None:
        text = safe_line(name, 60, style="bold")
        for ident in identities:
            mark = {"email": "✉", "phone": "☎", "telegram": "✈", "instagram": "◎", "messenger": "ⓜ",
                    "mastodon": "🐘"}.get(ident.kind, "•")
            text.append(f"  {mark} ")
            text.append_text(safe_line(ident.display_name if ident.kind in ("telegram", "instagram", "messenger")
                                       and ident.display_name else ident.address, 40))
            if ident.opted_out:
                text.append(" (opted out)", style="bold red")
        if others:
            text.append(f"\n👁 {others}", style="bold magenta")
        text.no_wrap, text.overflow = True, "ellipsis"
        # A fixed height (2 lines): no layout pass for the whole screen on every move of the selection.
        self.update(text, layout=False)

    def clear(self) -> None:
        self.update(Text("No conversation selected", style="dim"), layout=False)


class Timeline(VerticalScroll, can_focus=True):
    """The customer's messages across channels, newest at the bottom."""

    BINDINGS = [
        Binding("j,down", "scroll_down", "Scroll down", id="timeline.down", show=False),
        Binding("k,up", "scroll_up", "Scroll up", id="timeline.up", show=False),
        Binding("g,home", "scroll_home", "Oldest", id="timeline.top", show=False),
        Binding("G,end", "scroll_end", "Newest", id="timeline.bottom", show=False),
        Binding("z", "toggle_quotes", "Show quoted text", id="timeline.quotes"),
        Binding("escape", "back", "Back to the list", id="timeline.back", show=False),
        Binding("d", "save_attachments", "Save attachments", id="timeline.save_attachments", show=False),
        Binding("n", "match(1)", "Next search match", id="timeline.next_match", show=False),
        Binding("N", "match(-1)", "Previous search match", id="timeline.previous_match", show=False),
    ]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.entries: list[TimelineEntry] = []
        self.selected_conversation: int | None = None
        self.show_quotes = False
        self.highlight: list[str] = []
        self._match = -1
        self._body = Static(id="timeline-body")

    def compose(self):
        yield self._body

    def show(self, entries: list[TimelineEntry], conversation_id: int | None, highlight: list[str] | None = None) -> None:
        self.entries = entries
        self.selected_conversation = conversation_id
        fresh = (highlight or []) != self.highlight
        self.highlight = highlight or []
        self._body.update(self.render_entries())
        if self.highlight and fresh:
            self._match = -1
            self.call_after_refresh(self.action_match, -1)  # the newest match first
        elif not self.highlight:
            self.call_after_refresh(self.scroll_end, animate=False)

    def action_save_attachments(self) -> None:
        """The attachments of the message the search is on, else of the newest message that has some."""
        entry = None
        if self.highlight and 0 <= self._match < len(self.entries) and self.entries[self._match].attachments:
            entry = self.entries[self._match]
        else:
            entry = next((e for e in reversed(self.entries) if e.attachments), None)
        if entry is None:
            self.app.notify("No attachments in this customer's timeline.")
            return
        self.app.save_attachments(entry)

    def matches(self) -> list[int]:
        """Indexes of the entries holding a search word."""
        words = [w.lower() for w in self.highlight]
        return [n for n, e in enumerate(self.entries)
                if any(w in (e.subject + " " + e.body).lower() for w in words)]

    def action_match(self, step: int) -> None:
        found = self.matches()
        if not found:
            if self.highlight:
                self.app.bell()
            return
        if self._match not in found:
            self._match = found[-1] if step < 0 else found[0]
        else:
            self._match = found[(found.index(self._match) + step) % len(found)]
        self._body.update(self.render_entries())
        self.call_after_refresh(self._scroll_to_entry, self._match)

    def _scroll_to_entry(self, index: int) -> None:
        """Scroll so that entry `index` is at the top: count the rendered lines before it."""
        width = max(10, self._body.content_region.width or self.size.width)
        lines = 0
        for entry in self.entries[:index]:
            lines += len(self.app.console.render_lines(self.render_entry(entry), self.app.console.options.update_width(width), pad=False))
        self.scroll_to(y=lines, animate=False)

    def clear(self) -> None:
        self.entries = []
        self._body.update(Text(""))

    def action_back(self) -> None:
        self.app.query_one("#conversations").focus()

    def action_toggle_quotes(self) -> None:
        self.show_quotes = not self.show_quotes
        self._body.update(self.render_entries())

    def render_entries(self) -> Group:
        return Group(*(self.render_entry(entry) for entry in self.entries))

    def render_entry(self, entry: TimelineEntry) -> Group:
        ours = entry.direction == "out"
        current = entry.conversation_id == self.selected_conversation
        bar = Text("▌ " if current else "  ", style="bold cyan" if current else "dim")
        if self.highlight and 0 <= self._match < len(self.entries) and entry is self.entries[self._match]:
            bar = Text("▶ ", style="bold magenta")  # the search match n / N is on
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append_text(bar)
        head.append(f"{when(entry.sent_at)} {icon(entry.channel)} ", style="dim")
        head.append("you" if ours else "them", style="bold green" if ours else "bold")
        if ours and entry.author:
            head.append(" (")
            head.append_text(safe_line(entry.author, 20))
            head.append(")")
        if entry.subject and entry.channel == "email":
            head.append("  ")
            head.append_text(safe_line(entry.subject, 80, style="italic"))
        if entry.edited:
            head.append("  (edited)", style="dim")
        if ours and entry.status:
            style = "red" if entry.status in ("failed", "undelivered", "unknown") else "dim"
            head.append(f" · {entry.status}", style=style)
            if entry.status_detail and entry.status != "delivered":
                head.append(": ", style=style)
                head.append_text(safe_line(entry.status_detail, 120, style=style))
        body, folded = fold_quotes(entry.body) if not self.show_quotes else (entry.body.rstrip(), 0)
        text = safe(body or ("(no text)" if not entry.attachments else ""))
        if self.highlight:
            text.highlight_words(self.highlight, style="bold reverse", case_sensitive=False)
        if folded:
            text.append(f"\n⋯ {folded} quoted line{'s' if folded != 1 else ''} (z to show)", style="dim")
        for attachment in entry.attachments:
            size = attachment.get("size")
            text.append("\n📎 ", style="dim")
            text.append_text(safe_line(attachment.get("name") or "attachment", 60))
            text.append(f"  {safe_line(attachment.get('content_type'), 40).plain}"
                        + (f", {_size(size)}" if size else ""), style="dim")
        # The body wraps inside its own indented column, under the heading.
        return Group(head, Padding(text, (0, 0, 1, 4)))


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def channel_label(channel: str) -> str:
    return f"{icon(channel)} {CHANNEL_NAMES.get(channel, channel)}"
