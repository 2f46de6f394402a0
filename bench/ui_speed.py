"""How fast the app answers a key, against a bare Textual line-API list in the same harness.

    .venv/bin/python bench/ui_speed.py [--store bench/.cache/long/console.db] [--presses 200] [--rounds 3]

Both apps run in this process, headless at 80x24, in alternating rounds (so both meet the same
machine). A key is posted as Textual's driver would post it; the time is taken from then to the
compositor handing the screen update to the display.

1. `j` on 100,000 conversations: per press, until the update that shows the moved selection;
   presses 40 ms apart, as a person's are, so the timeline that loads after each move is part of
   the load the next press meets. Reference: bench/bare_list.py (rows in memory, two lines
   repainted per press).
2. Opening a customer: from a 3-message customer to one with 2,000 messages (300 loaded) and
   back, until the first update that shows the new customer's timeline.

The store is made by `bench/make_store.py --long 2000` if missing (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def hook_display(app, stamps: list[float]) -> None:
    original = app._display

    def display(screen, renderable):
        if renderable is not None:
            stamps.append(time.perf_counter())
        return original(screen, renderable)

    app._display = display


async def press_times(app, pilot, presses: int, key: str = "j", until=None) -> list[float]:
    from textual import events

    stamps: list[float] = []
    hook_display(app, stamps)
    times = []
    for _ in range(presses):
        stamps.clear()
        start = time.perf_counter()
        app.post_message(events.Key(key, key))
        ready_at = None  # when what we wait for became true: the frame after it is the one
        while True:
            await asyncio.sleep(0.0002)
            if ready_at is None and (until is None or until()):
                ready_at = time.perf_counter() if until is not None else start
            if ready_at is not None and stamps and stamps[-1] >= ready_at:
                break
        times.append(stamps[-1] - start)
        await asyncio.sleep(0.04)
    return times


async def bare_j(presses: int) -> list[float]:
    from bare_list import BareListApp

    app = BareListApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        return await press_times(app, pilot, presses)


def console_app(store_path: Path):
    from console.config import parse
    from console.store import Store
    from console.ui.app import ConsoleApp

    ws = parse(f'[workspace]\nname = "Bench"\ndata_dir = "{store_path.parent}"\n')
    store = Store(store_path)
    return ConsoleApp(ws, store, engine_args=None), store


async def console_j(store_path: Path, presses: int) -> list[float]:
    app, store = console_app(store_path)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            if app.timeline.entries:
                break
        await pilot.pause(0.3)
        times = await press_times(app, pilot, presses)
        assert app.conversations.cursor == presses, "the selection did not move as expected"
    store.close()
    return times


async def console_open(store_path: Path, times: int) -> tuple[list[float], list[float]]:
    """(to the 2,000-message customer, to the 3-message one), first frame with their timeline."""
    app, store = console_app(store_path)
    long_id = store.db.query_one("SELECT id FROM customer WHERE name = 'Long History'")[0]
    short_id = store.db.query_one("SELECT id FROM customer WHERE name = 'Short History'")[0]
    to_long, to_short = [], []
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            if app.timeline.customer_id == long_id:
                break
        assert app.conversations.row_at(1).customer_id == short_id, "the bench store heads Open with the two"
        await pilot.pause(0.5)
        for _ in range(times):
            to_short += await press_times(app, pilot, 1, "j", lambda: app.timeline.customer_id == short_id)
            await pilot.pause(0.3)
            to_long += await press_times(app, pilot, 1, "k", lambda: app.timeline.customer_id == long_id)
            await pilot.pause(0.3)
        shown = len(app.timeline.entries)
    store.close()
    print(f"  (the long history: {shown} of its messages loaded when opened)")
    return to_long, to_short


def summary(times: list[float]) -> tuple[float, float]:
    ms = sorted(t * 1000 for t in times)
    return statistics.median(ms), ms[max(0, int(len(ms) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=HERE / ".cache" / "long" / "console.db")
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--opens", type=int, default=20)
    args = parser.parse_args()
    if not args.store.exists():
        subprocess.run([sys.executable, str(HERE / "make_store.py"), str(args.store), "--long", "2000"], check=True)
    bare, ours = [], []
    for _ in range(args.rounds):
        bare += asyncio.run(bare_j(args.presses))
        ours += asyncio.run(console_j(args.store, args.presses))
    (bm, bp), (om, op) = summary(bare), summary(ours)
    print(f"j, {len(bare)} presses each: bare line-API list median {bm:.1f} ms (p95 {bp:.1f}), "
          f"console median {om:.1f} ms (p95 {op:.1f}): {om / bm:.2f}x (goal <= 1.2x)")
    to_long, to_short = asyncio.run(console_open(args.store, args.opens))
    (lm, lp), (sm, sp) = summary(to_long), summary(to_short)
    print(f"opening a customer, first frame with their timeline, x{len(to_long)}: 2,000-message history "
          f"median {lm:.1f} ms (p95 {lp:.1f}), 3-message history median {sm:.1f} ms (p95 {sp:.1f}) "
          f"(goal <= 50 ms at any length)")


if __name__ == "__main__":
    main()
