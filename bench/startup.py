"""Cold start and selection speed on a large store, against a bare Textual app in the same run.

    .venv/bin/python bench/startup.py [--store bench/.cache/big/console.db] [--runs 7]

1. Cold start to first paint: a fresh `console` process on a pseudo-terminal (80x24), from just
   before the process is spawned until the list, the customer header and the timeline are on
   screen; the same for a bare Textual app (bench/bare_app.py). Medians of --runs.
2. Moving the selection: in one process (headless, 80x24), `j` pressed 300 times; per press,
   the time from the key event to the screen update showing the new selection. Median and p95.

The store is made by bench/make_store.py (100,000 conversations, 300,000 messages) if missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def first_paint(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to the child's first-paint report, on a real pseudo-terminal (80x24)."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as report:
        env = dict(env, CONSOLE_BENCH_REPORT=report.name, CONSOLE_BENCH_T0=repr(time.time()), TERM="xterm-256color")
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        deadline = time.time() + 60
        while proc.poll() is None and time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    os.read(master, 65536)  # drain the screen output like a terminal would
                except OSError:
                    pass
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        os.close(master)
        text = report.read().strip()
    if not text:
        raise RuntimeError(f"no first-paint report from {' '.join(argv)}")
    return float(text)


def config_for(store: Path, where: Path) -> Path:
    config = where / "config.toml"
    config.write_text(f'[workspace]\nname = "Bench"\ndata_dir = "{store.parent}"\n')
    return config


async def selection_times(store_path: Path, presses: int) -> list[float]:
    """Per `j`: seconds from the key event to the screen update that shows the moved selection.

    Timed inside the app (headless, 80x24): from posting the key to the compositor handing its
    update to the display. 40 ms pass between presses, as between a person's keystrokes, so the
    timeline that loads after each move is part of the load the next press meets."""
    from textual import events

    from console.config import parse
    from console.store import Store
    from console.ui.app import ConsoleApp

    ws = parse(f'[workspace]\nname = "Bench"\ndata_dir = "{store_path.parent}"\n')
    store = Store(store_path)
    app = ConsoleApp(ws, store, engine_args=None)
    stamps: list[float] = []
    times = []
    async with app.run_test(size=(80, 24)) as pilot:
        original = app._display

        def display(screen, renderable):
            if renderable is not None:
                stamps.append(time.perf_counter())
            return original(screen, renderable)

        app._display = display
        for _ in range(100):
            await pilot.pause(0.05)
            if app.conversations.selected is not None:
                break
        await pilot.pause(0.2)
        for _ in range(presses):
            stamps.clear()
            start = time.perf_counter()
            app.post_message(events.Key("j", "j"))
            while not stamps:
                await asyncio.sleep(0.0002)
            times.append(stamps[0] - start)
            await asyncio.sleep(0.04)
        assert app.conversations.cursor == presses, "the selection did not move as expected"
    store.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=HERE / ".cache" / "big" / "console.db")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--presses", type=int, default=300)
    args = parser.parse_args()
    if not args.store.exists():
        subprocess.run([sys.executable, str(HERE / "make_store.py"), str(args.store)], check=True)
    # As scripts/setup-env leaves it: the app's modules compiled, like those of installed packages
    # (the bare app's Textual is). Without it, each start would also compile ~50 modules (~80 ms).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "console")], check=True)
    from console.store import Store

    store = Store(args.store)
    counts = store.db.query_one("SELECT (SELECT COUNT(*) FROM conversation), (SELECT COUNT(*) FROM message)")
    store.close()
    print(f"store: {args.store} ({counts[0]:,} conversations, {counts[1]:,} messages)")

    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        config = config_for(args.store, Path(tmp))
        bare, ours = [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            bare.append(first_paint([sys.executable, str(HERE / "bare_app.py")], env))
            ours.append(first_paint([sys.executable, "-m", "console", "--config", str(config)], env))
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"cold start to first paint, median of {args.runs}: bare Textual {b:.3f} s, console {o:.3f} s, "
          f"difference {o - b:+.3f} s (goal <= +0.150 s)")

    times = asyncio.run(selection_times(args.store, args.presses))
    times_ms = sorted(t * 1000 for t in times)
    p95 = times_ms[int(len(times_ms) * 0.95) - 1]
    print(f"move selection (j) x{len(times)}: median {statistics.median(times_ms):.1f} ms, "
          f"p95 {p95:.1f} ms (goal: median <= 25 ms)")


if __name__ == "__main__":
    main()
