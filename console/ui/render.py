"""Turning store rows into `rich.text.Text`: the only way customer text reaches a widget.

Every string that came from outside (names, subjects, bodies, addresses, server errors) goes
through `console.sanitize` and into a `Text` as plain data. Nothing here builds markup strings,
so `[@click=app.quit]` in a subject is just characters on the screen.
"""

from __future__ import annotations

import datetime as dt
import time

from rich.text import Text

from console.sanitize import clean, one_line

CHANNEL_ICONS = {
    "email": "✉", "sms": "☎", "whatsapp": "ⓦ", "telegram": "✈", "instagram": "◎",
    "messenger": "ⓜ", "mastodon": "🐘",
}
CHANNEL_NAMES = {
    "email": "email", "sms": "SMS", "whatsapp": "WhatsApp", "telegram": "Telegram", "instagram": "Instagram",
    "messenger": "Messenger", "mastodon": "Mastodon",
}
# Identity kinds: SMS and WhatsApp share "phone".
KIND_ICONS = {"email": "✉", "phone": "☎", "telegram": "✈", "instagram": "◎", "messenger": "ⓜ", "mastodon": "🐘"}
KIND_LABELS = {"email": "email", "phone": "phone", "telegram": "Telegram", "instagram": "Instagram",
               "messenger": "Messenger", "mastodon": "Mastodon"}
# Kinds whose address is a service's numeric user id: the handle (display name) is what people know.
HANDLE_KINDS = ("telegram", "instagram", "messenger", "mastodon")
STATE_MARKS = {"ok": "●", "syncing": "⟳", "retrying": "⚠", "auth": "⚠", "error": "⚠", "idle": "○"}


def channel_icon(channel: str) -> str:
    return CHANNEL_ICONS.get(channel, "•")


icon = channel_icon


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


def identity_label(kind: str, address: str, display_name: str = "", limit: int = 40, icon: bool = True) -> Text:
    """'✉ maria@example.com', '◎ @maria.bakes' (never Instagram's numeric id when a handle is known)."""
    shown = display_name if kind in HANDLE_KINDS and display_name else address
    text = Text(f"{KIND_ICONS.get(kind, '•')} " if icon else "")
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
