"""The customer card beside the timeline (`i`): identities, tags, attributes, the notes agents
wrote for each other (near the top, so a new one is in view), activity, consent per channel,
suggested merges."""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.store import CustomerCard, IdentityRow, Suggestion
from console.ui.guard import Guarded
from console.ui.render import channel_icon, channel_name, kind_label, safe, safe_line, when


def render_consent(consents, style=lambda name: "") -> Text:
    """Per channel of each identity: news (marketing) yes / no / not asked, and replies when the
    customer withdrew even those (SMS STOP); where the decision came from, dim."""
    text = Text()
    text.append("\nConsent", style="bold")
    text.append(" (o edits)", style="dim")
    by_channel: dict[tuple[int, str], dict[str, object]] = {}
    for row in consents:
        by_channel.setdefault((row.identity_id, row.channel), {})[row.purpose] = row
    for (_, channel), purposes in by_channel.items():
        news, replies = purposes.get("marketing"), purposes.get("service")
        text.append(f"\n{channel_icon(channel)} {channel_name(channel)}: ")
        if news is not None and news.state == "granted":
            text.append("news yes", style=style("good"))
        elif news is not None and news.state == "withdrawn":
            text.append("news no", style=style("bad"))
        else:
            text.append("news not asked", style="dim")
        if replies is not None and replies.state == "withdrawn":
            text.append(", replies no", style=style("bad"))
        shown = news if news is not None and news.state else None
        if replies is not None and replies.state == "withdrawn":
            shown = replies
        if shown is not None:
            source = shown.source if shown.state == "granted" else shown.withdrawn_source
            moment = shown.granted_at if shown.state == "granted" else shown.withdrawn_at
            text.append("\n  ")
            if moment:
                text.append(dt.datetime.fromtimestamp(moment).strftime("%d %b") + " ", style="dim")
            text.append_text(safe_line(source, 60, style="dim"))
    return text


def render_card(card: CustomerCard, identities: list[IdentityRow], suggestions: list[Suggestion],
                style=lambda name: "", consents=()) -> Text:
    """The card as text; `style(name)` gives the theme's style for "bad", "tag" and "suggest"."""
    text = Text()
    text.append_text(safe_line(card.name or "(no name)", 60, style="bold"))
    text.append("\n")
    for ident in identities:
        text.append(f"{kind_label(ident.kind)}: ", style="dim")
        text.append_text(safe_line(ident.address, 60))
        if ident.display_name and ident.display_name != ident.address:
            text.append(" (")
            text.append_text(safe_line(ident.display_name, 40))
            text.append(")")
        for channel in ident.opted_out_of:
            text.append(f" {channel_name(channel)} opted out", style=style("bad"))
        text.append("\n")
    text.append("\nTags: ", style="bold")
    if card.tags:
        text.append(" ".join(f"#{t}" for t in card.tags), style=style("tag"))
    else:
        text.append("none (t adds one)", style="dim")
    text.append("\n")
    if card.attributes:
        for key, value in sorted(card.attributes.items()):
            text.append(f"{key}: ", style="dim")
            text.append_text(safe_line(str(value), 60))
            text.append("\n")
    text.append("\nNotes", style="bold")
    if not card.notes:
        text.append("  none (w writes one)", style="dim")
    for note in card.notes:
        text.append("\n")
        text.append(f"{when(note.created_at)} ", style="dim")
        text.append_text(safe_line(note.author, 20, style="bold"))
        text.append("\n")
        text.append_text(safe(note.body))
    text.append("\n")
    text.append("\nFirst seen ", style="dim")
    text.append(dt.datetime.fromtimestamp(card.first_seen).strftime("%d %b %Y"))
    text.append("\nLast reply ", style="dim")
    text.append(when(card.last_reply_at) if card.last_reply_at else "never")
    text.append("\nMessages ", style="dim")
    text.append(", ".join(f"{channel_icon(ch)} {channel_name(ch)} {n}" for ch, n in card.per_channel.items())
                or "none")
    if consents:
        text.append("\n")
        text.append_text(render_consent(consents, style))
    if suggestions:
        text.append("\n\nProbably the same person", style=style("suggest"))
        for suggestion in suggestions:
            text.append("\n• ")
            text.append_text(safe_line(suggestion.name, 40))
            text.append(f" — {suggestion.reason}", style="dim")
        text.append("\n(m merges, after you check)", style="dim")
    return text


class CardView(Guarded, VerticalScroll):
    """Hidden until toggled; the app fills it when the selection changes."""

    COMPONENT_CLASSES = {"card--bad", "card--good", "card--tag", "card--suggest"}
    DEFAULT_CSS = """
    CardView > .card--bad { color: $error; text-style: bold; }
    CardView > .card--good { color: $success; }
    CardView > .card--tag { color: $accent; }
    CardView > .card--suggest { color: $warning; text-style: bold; }
    """

    def compose(self):
        yield Static(id="card-body")

    def show(self, card: CustomerCard | None, identities: list[IdentityRow], suggestions: list[Suggestion],
             consents=()) -> None:
        body = self.query_one("#card-body", Static)
        style = lambda name: self.get_component_rich_style(f"card--{name}", partial=True)  # noqa: E731
        body.update(render_card(card, identities, suggestions, style, consents) if card else Text(""))
