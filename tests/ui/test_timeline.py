"""The timeline in the app (Pilot, 80x24), read from what the screen shows: long histories, the
reader's place kept while the store changes, and notices that are drawn."""

from __future__ import annotations

import time

from rich.text import Text

from console.config import parse
from console.model import Address, InboundMessage, PullResult
from console.store import Store
from console.ui.app import ConsoleApp
from conftest import until

SIZE = (80, 24)


def screen_text(app) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip).rstrip() for strip in strips)


def right_pane(app) -> str:
    """The right pane's lines (the timeline's side of the screen)."""
    return "\n".join(line.split("▕", 1)[1] for line in screen_text(app).splitlines() if "▕" in line)


def long_history(tmp_path, count: int = 1500):
    ws = parse('[workspace]\nname = "Shop"\n')
    ws.data_dir = tmp_path
    store = Store(ws.store_path)
    start = time.time() - count * 600
    peer = Address("phone", "+15550100001", "Maria Lopez")
    inbound = [(count - 1 - n) % 2 == 0 for n in range(count)]  # the customer wrote last: Open
    messages = [InboundMessage(f"m{n}", "sms:+15550100001", "sms", "in" if inbound[n] else "out", peer,
                               start + n * 600, f"message number {n}", status=None if inbound[n] else "delivered")
                for n in range(count)]
    for first in range(0, count, 500):
        store.apply_pull("phone", PullResult(messages=messages[first:first + 500]))
    return ws, store


async def opened(pilot, app, newest: int = 1499) -> None:
    await until(pilot, lambda: app.inbox is not None and app.timeline.entries, "the timeline")
    await pilot.press("enter")
    await until(pilot, lambda: f"message number {newest}" in right_pane(app), "the newest message on screen")


async def test_g_in_a_long_history_goes_to_the_very_first_message(tmp_path):
    ws, store = long_history(tmp_path)
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await opened(pilot, app)
        assert len(app.timeline.entries) < 1500  # a first page only: opening stays instant
        await pilot.press("g")
        await until(pilot, lambda: "message number 0\n" in right_pane(app) + "\n", "the first message on screen")
        assert "message number 1499" not in right_pane(app)
        await pilot.press("G")
        await until(pilot, lambda: "message number 1499" in right_pane(app), "the newest again")
    store.close()


async def test_reading_older_history_keeps_its_place_when_the_store_changes(tmp_path):
    ws, store = long_history(tmp_path, 200)
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await opened(pilot, app, 199)
        await pilot.press("g")
        await until(pilot, lambda: "message number 0\n" in right_pane(app) + "\n", "the first message")
        for n in range(5):
            await pilot.press("j")
        before = right_pane(app).split("\n")[2:12]
        # Another process writes: a delivery status, and a new message from the customer.
        other = Store(ws.store_path)
        other.apply_pull("phone", PullResult(messages=[InboundMessage(
            "m-new", "sms:+15550100001", "sms", "in", Address("phone", "+15550100001", "Maria Lopez"),
            time.time(), "a brand new message")]))
        other.close()
        await until(pilot, lambda: any(e.body == "a brand new message" for e in app.timeline.entries),
                    "the new message loaded")
        await pilot.pause(1.2)  # several refreshes of the store later
        assert right_pane(app).split("\n")[2:12] == before
        await pilot.press("G")
        await until(pilot, lambda: "a brand new message" in right_pane(app), "the new message at the bottom")
    store.close()


async def test_a_notice_made_of_rich_text_is_drawn(tmp_path):
    """Textual's toast needs a str: the app's notify turns a Text into its characters."""
    ws, store = long_history(tmp_path, 3)
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.inbox is not None, "the inbox")
        app.notify(Text.assemble("To ", ("[b]Mia[/b]", "bold"), " ok"))
        await until(pilot, lambda: "To [b]Mia[/b] ok" in screen_text(app), "the notice on screen")
        assert app.is_running
    store.close()


async def test_an_error_in_an_action_is_one_line_and_the_app_goes_on(tmp_path):
    ws, store = long_history(tmp_path, 3)
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.inbox is not None and app.current is not None, "the inbox")
        await pilot.press("r", *"keep me")

        def broken():
            raise RuntimeError("the disk is on fire")

        app.inbox.action_done = broken  # any action that fails
        await pilot.press("escape", "e")
        await until(pilot, lambda: "Could not handle the key e" in screen_text(app).replace("\n", " ")
                    or any("the disk is on fire" in str(n.message) for n in app._notifications), "the error line")
        assert app.is_running
        await pilot.press("r")
        await until(pilot, lambda: app.composer.display and app.composer.text == "keep me", "the text kept")
        app.inbox.run(lambda s: 1 / 0, what="count to zero")  # a failing store job
        await until(pilot, lambda: any("Could not count to zero" in str(n.message) for n in app._notifications),
                    "the job's failure reported")
    store.close()
