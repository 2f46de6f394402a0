"""The key screens look as they did: each is drawn headless on a frozen demo and compared, as SVG,
with its snapshot in tests/ui/snapshots/.

The demo tour (console/ui/tour.py, which also takes the README's screenshots) drives the app; the
clock, the time zone, the demo's seed and anchor, the terminal's size and the text cursors are
fixed, so the same code draws the same picture on every run and on both backends. A screen that
differs fails, its drawing saved beside the snapshot as NAME.actual.svg (git ignores it) to look
at; when the change is meant, update the snapshots:

    .venv/bin/python -m pytest tests/ui/test_snapshots.py --snapshot-update
    (or CONSOLE_UPDATE_SNAPSHOTS=1)
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from clock import at, install
from console import demo_data
from console.channels import demo
from console.config import demo_config
from console.ui.app import ConsoleApp
from console.ui.tour import furnish, hold_cursors, still, tour

SNAPSHOTS = Path(__file__).parent / "snapshots"
FROZEN_AT = at("2026-12-15 11:00", "UTC")  # a Tuesday morning: the bakery is open
# The screens compared at each terminal size (names of the tour's stops).
SCREENS = {
    (80, 24): ("main", "reply", "help", "search", "reports", "campaigns"),
    (120, 40): ("main",),
}
UPDATE = "pytest tests/ui/test_snapshots.py --snapshot-update (or CONSOLE_UPDATE_SNAPSHOTS=1)"


@pytest.fixture
def frozen(monkeypatch):
    """Time stands still in UTC, and the demo service starts afresh from that moment."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    install(monkeypatch, FROZEN_AT)
    monkeypatch.setattr(demo_data, "_HOURS", demo_data.opening_hours("UTC"))  # read at import, from the machine
    for made_up in ("_DATASETS", "_ANCHORS", "_SENT"):  # what the demo service holds (and earlier tests changed)
        monkeypatch.setattr(demo, made_up, {})
    yield
    monkeypatch.undo()
    time.tzset()


def snapshot_name(screen: str, size: tuple[int, int]) -> str:
    """`main` at 80x24 (the size the README's screenshots have), `main-120x40` at another size."""
    return screen if size == (80, 24) else f"{screen}-{size[0]}x{size[1]}"


def normal(svg: str) -> str:
    """The SVG without what varies between two drawings of one screen: Rich names its CSS classes
    and clip paths after a hash of the picture (`terminal-1234567-r5`)."""
    return re.sub(r"terminal-\d+", "terminal", svg)


def check(drawn: dict[str, str], update: bool) -> None:
    """Each drawing against its snapshot; writes NAME.actual.svg for each that differs, or the
    snapshot itself when updating."""
    SNAPSHOTS.mkdir(exist_ok=True)
    wrong = []
    for name, svg in drawn.items():
        stored, actual = SNAPSHOTS / f"{name}.svg", SNAPSHOTS / f"{name}.actual.svg"
        if update:
            stored.write_text(svg)
            actual.unlink(missing_ok=True)
        elif not stored.exists() or normal(stored.read_text()) != normal(svg):
            actual.write_text(svg)
            what = "has no snapshot" if not stored.exists() else "differs from its snapshot"
            wrong.append(f"{stored.relative_to(Path.cwd()) if stored.is_relative_to(Path.cwd()) else stored} "
                         f"{what}: see {actual.name} beside it; if the change is meant, run {UPDATE}")
        else:
            actual.unlink(missing_ok=True)
    if wrong:
        pytest.fail("\n".join(wrong), pytrace=False)


@pytest.mark.parametrize("size", list(SCREENS), ids=[f"{w}x{h}" for w, h in SCREENS])
async def test_the_key_screens_look_as_their_snapshots(backend, frozen, request, size):
    ws = still(demo_config(backend.tmp_path / "demo"))
    ws.agent = "ana"  # not whoever runs the tests
    ws.data_dir.mkdir(parents=True)
    backend.configure(ws)
    store = backend.open(region=ws.default_region)
    await furnish(ws, store)
    app = ConsoleApp(ws, store, engine_args=None)
    drawn: dict[str, str] = {}

    def save(name: str) -> None:
        hold_cursors(app)
        drawn[snapshot_name(name, size)] = app.export_screenshot()

    async with app.run_test(size=size) as pilot:
        await tour(pilot, app, store, save, stops=SCREENS[size])
    assert set(drawn) == {snapshot_name(name, size) for name in SCREENS[size]}, "the tour passed a screen by"
    check(drawn, request.config.getoption("snapshot_update") or os.environ.get("CONSOLE_UPDATE_SNAPSHOTS") == "1")
