"""The UI thread never calls the store: a wrapped store fails the test for any call made on it.

A session that uses every part of the app (the list, the timeline, replying, drafts, templates,
statuses, snoozing, tags, notes, assignment, merging and splitting, search, filters, tabs, the
card, help, the palette, undo) runs against a store that records the thread of every call; the UI
thread's must be none. A search over a large store, or a write queued behind the sync engine's
transaction, on the UI thread would freeze the keyboard.
"""

from __future__ import annotations

import threading

from console.store import Store
from console.ui.app import ConsoleApp
from conftest import ready, until

SIZE = (80, 24)


class WatchedStore:
    """The store, noting every call made from the UI thread."""

    def __init__(self, store: Store, ui_thread: int):
        self._store, self._ui_thread, self.on_ui_thread = store, ui_thread, []

    def __getattr__(self, name):
        value = getattr(self._store, name)
        if not callable(value):
            if threading.get_ident() == self._ui_thread:
                self.on_ui_thread.append(name)
            return value

        def call(*args, **kwargs):
            if threading.get_ident() == self._ui_thread:
                self.on_ui_thread.append(name)
            return value(*args, **kwargs)

        return call


async def test_a_whole_session_never_calls_the_store_on_the_ui_thread(demo):
    ws, store = demo
    ws.send_delay_seconds = 30
    watched = WatchedStore(store, threading.get_ident())  # Pilot runs the app on this thread
    app = ConsoleApp(ws, watched)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        first = app.current.customer_id

        async def keys(*pressed, pause: float = 0.15):
            await pilot.press(*pressed)
            await pilot.pause(pause)

        await keys("j", "k", "G", "g", "pagedown", "pageup")
        await keys("enter", "g", "G", "z", "z", "n", "escape")
        await keys("r", *"Thanks, it is ready.", pause=0.8)  # the draft saves itself
        await keys("escape", "r", "ctrl+l", *"Thanks!", "ctrl+s", pause=0.5)
        await keys("U", pause=0.4)
        await keys("R", pause=0.4)
        await keys("T", *"rea", "enter", "escape", pause=0.4)
        await keys("t", *"vip", "enter", "w", *"a note", "enter", "i", pause=0.4)
        await keys("a", "A", *"carla", "enter", pause=0.4)
        await keys("m", "enter", "escape", "escape", "x", "escape", "ctrl+z", pause=0.4)
        await keys("slash", *"sourdough", pause=0.6)
        await keys("enter", "n", "N", "escape", pause=0.4)
        await keys("M", "M", "number_sign", "enter", "escape", "v", "v", "1", "0", "9")
        await keys("W", "Z", "D", "O", "right_square_bracket", "left_square_bracket", "space")
        await keys("e", "D", "u", "O", "s", "escape", "s", "enter", pause=0.5)
        await keys("question_mark", "j", "escape", "ctrl+p", *"wait", "escape", "escape")
        await until(pilot, lambda: not app.background.busy, "the jobs to finish")
        assert app.is_running and store.draft(first, ws.agent) is not None
    assert watched.on_ui_thread == [], f"store calls on the UI thread: {sorted(set(watched.on_ui_thread))}"
