"""Render the README's screenshots from the demo workspace into screenshots/*.svg.

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--size 100x30]

The demo workspace is built in a temporary directory (never the user's), through the demo
adapter and the real sync engine, then the app is driven with Textual's Pilot along the demo tour
(console/ui/tour.py), which tests/ui/test_snapshots.py follows too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.config import demo_config  # noqa: E402
from console.store import Store  # noqa: E402
from console.ui.app import ConsoleApp  # noqa: E402
from console.ui.tour import furnish, hold_cursors, still, tour  # noqa: E402


async def shoot(out: Path, width: int, height: int) -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = still(demo_config(Path(tmp)))
        store = Store(ws.store_path, ws.default_region)
        await furnish(ws, store)
        app = ConsoleApp(ws, store, engine_args=None)
        written = []

        def save(name: str) -> None:
            path = out / f"{name}.svg"
            hold_cursors(app)
            app.save_screenshot(str(path))
            written.append(path)

        async with app.run_test(size=(width, height)) as pilot:
            await tour(pilot, app, store, save)
        store.close()
        return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--size", default="100x30", help="terminal size, columns x rows")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(shoot(args.out, width, height)):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
