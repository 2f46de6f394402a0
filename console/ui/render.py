"""Turning store rows into `rich.text.Text`: the only way customer text reaches a widget.

Every string that came from outside (names, subjects, bodies, addresses, server errors) goes
through `console.sanitize` and into a `Text` as plain data. Nothing here builds markup strings,
so `[@click=app.quit]` in a subject is just characters on the screen.
"""

from __future__ import annotations

import datetime as dt
import time

from rich.text import Text

from console.channels import catalog
from console.sanitize import clean, one_line

STATE_MARKS = {"ok": "●", "syncing": "⟳", "retrying": "⚠", "auth": "⚠", "error": "⚠", "idle": "○"}


def channel_icon(channel: str) -> str:
    return catalog.channel(channel).icon


def channel_name(channel: str) -> str:
    return catalog.channel(channel).name


def in_catalog_order(channels) -> list[str]:
    """Channels in the catalog's order (email, SMS, WhatsApp...): the order of the 1-9 filters."""
    order = {entry.id: n for n, entry in enumerate(catalog.channels())}
    return sorted(channels, key=lambda c: (order.get(c, len(order)), c))


def kind_label(kind: str) -> str:
    return catalog.identity(kind).label


def identity_label(kind: str, address: str, display_name: str = "", limit: int = 40, icon: bool = True) -> Text:
    """'✉ maria@example.com', '◎ @maria.bakes' (never Instagram's numeric id when a handle is known)."""
    entry = catalog.identity(kind)
    shown = display_name if entry.shown_by_name and display_name else address
    text = Text(f"{entry.icon} " if icon else "")
    text.append_text(safe_line(shown, limit))
    return text


def safe(text: str | None, style: str = "") -> Text:
    """Untrusted multi-line text as a Text object."""
    return Text(clean(text), style=style)


def safe_line(text: str | None, limit: int = 200, style: str = "") -> Text:
    return Text(one_line(text, limit), style=style)


def clean_body(text: str | None) -> str:
    """A message body ready to lay out: sanitised, tabs as spaces (a tab's width depends on the
    terminal, and the layout counts cells)."""
    return clean(text).expandtabs(4)


def age(seconds: float) -> str:
    """'45s', '12m', '3h', '2d', '5w': short enough for a list row."""
    seconds = max(0, int(seconds))
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def age_grade(seconds: float, target_minutes: int) -> str:
    """Waiting time graded against the response target: "fine", "close" or "late"."""
    ratio = seconds / (target_minutes * 60)
    if ratio >= 1:
        return "late"
    if ratio >= 0.5:
        return "close"
    return "fine"


def when(ts: float, now: float | None = None) -> str:
    """A timestamp for the timeline: time today, weekday this week, date otherwise."""
    now = now if now is not None else time.time()
    moment = dt.datetime.fromtimestamp(ts)
    today = dt.datetime.fromtimestamp(now)
    if moment.date() == today.date():
        return moment.strftime("%H:%M")
    if (today - moment).days < 6:
        return moment.strftime("%a %H:%M")
    return moment.strftime("%d %b %H:%M")
