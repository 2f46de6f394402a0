"""The error boundary: an exception in an action, a handler or a job never takes the app down.

Textual ends the app on any exception that escapes a message handler, and a widget whose handler
raised stops taking messages at all. Every widget and screen of ours mixes in `Guarded`: an
exception while it handles a message (a key, an action it runs, a message from a child) goes to
the app's `report_error` — one line for the user, the traceback in the log — and the widget goes
on. The app guards its own handlers the same way (console/ui/app.py); a test checks that every
widget and screen class in console/ui mixes this in.
"""

from __future__ import annotations

from textual.message import Message


class Guarded:
    """Mixin for Widget / Screen subclasses: errors while handling a message are reported."""

    async def _on_message(self, message: Message) -> None:
        try:
            await super()._on_message(message)  # type: ignore[misc]
        except Exception as error:  # noqa: BLE001 - the boundary: report, never end the app
            report = getattr(self.app, "report_error", None)  # type: ignore[attr-defined]
            if report is None:
                raise
            report(error, _what(message))


def _what(message: Message) -> str:
    """What the user was doing, for the one-line report."""
    name = type(message).__name__
    key = getattr(message, "key", None)
    if key:
        return f"handle the key {key}"
    return f"handle {name}"
