"""Shared fixtures: stores, the seeded demo workspace, and the rule for missing services.

A test that needs a real server (Dovecot, mbsync...) calls `need_binary()`. On a developer's
machine without it, the test is skipped with the command that installs it; under CI (the `CI`
environment variable is set) a missing service is an error, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

import backends
from backends import BACKENDS, Backend
from console.config import demo_config
from console.store import Store
from console.sync import Engine
# Tests import these by name from here as well as from `workspace`.
from workspace import sync_once, with_open_channel, workspace_from  # noqa: F401


def need_binary(name: str, install: str, search: tuple[str, ...] = ()) -> str:
    """Path of an executable, or skip (fail under CI) saying how to install it."""
    found = shutil.which(name) or next((p for p in search if Path(p).exists()), None)
    if found:
        return found
    message = f"{name} is not installed; install it with: {install}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run every test)")
    pytest.skip(message)


def pytest_addoption(parser):
    parser.addoption("--snapshot-update", action="store_true", dest="snapshot_update",
                     help="write the SVG snapshots of tests/ui/test_snapshots.py anew from what the app draws")


# ---- the store's backends (tests/backends.py) ------------------------------------------------------
def pytest_generate_tests(metafunc):
    """Every test that uses `backend` (directly, or through `store` / `demo`) runs on each backend
    ($CONSOLE_TEST_BACKENDS=sqlite runs one only, for a quick look; under CI it is ignored: both)."""
    if "backend" in metafunc.fixturenames and not metafunc.definition.get_closest_marker("own_backends"):
        chosen = os.environ.get("CONSOLE_TEST_BACKENDS", ",".join(BACKENDS)) if not os.environ.get("CI") else ""
        wanted = [b for b in chosen.split(",") if b in BACKENDS] or list(BACKENDS)
        if metafunc.definition.get_closest_marker("sqlite_only") or metafunc.definition.get_closest_marker("one_backend"):
            wanted = ["sqlite"]
        elif metafunc.definition.get_closest_marker("postgres_only"):
            wanted = ["postgresql"]
        metafunc.parametrize("backend", wanted, indirect=True, ids=[{"postgresql": "pg"}.get(b, b) for b in wanted])


@pytest.fixture
def backend(request, tmp_path: Path) -> Backend:
    chosen = Backend(getattr(request, "param", "sqlite"), tmp_path)
    backends.current = chosen
    yield chosen
    backends.current = None
    chosen.close()
    if chosen.postgres and not chosen._places and not request.node.get_closest_marker("postgres_only"):
        pytest.fail("this test ran as the PostgreSQL half but opened no store there: take its stores from "
                    "`backend` (or `store`, `demo`, workspace_from), or mark it one_backend / sqlite_only")


def pytest_sessionfinish(session, exitstatus):
    backends.stop_cluster()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


# ---- the demo workspace, for the app's Pilot tests ---------------------------------------------
@pytest.fixture(scope="session")
def seeded_demo(tmp_path_factory) -> Path:
    """The demo workspace, seeded once through the demo adapter and the real engine."""
    base = tmp_path_factory.mktemp("demo-seed")
    ws = quiet(demo_config(base))
    store = Store(ws.store_location)
    _seed_demo(store, ws)
    store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return ws.store_path


def quiet(ws):
    """No spontaneous customer messages during a test; replies come back at once."""
    for account in ws.accounts:
        account.raw["chatter"] = False
        account.raw["reply_delay"] = 0.0
    return ws


@pytest.fixture
def demo(backend, tmp_path, request):
    """(workspace, store) of a demo workspace of this test's own, on the test's backend."""
    ws = quiet(demo_config(tmp_path / "demo"))
    ws.data_dir.mkdir(parents=True)
    if backend.postgres:
        seed_ws = quiet(demo_config(tmp_path / "demo-seed"))
        template = backends.template("demo", lambda store: _seed_demo(store, seed_ws))
        backend.configure(ws, copy_of=template)
        store = backend.open(copy_of=template)
    else:
        shutil.copy(request.getfixturevalue("seeded_demo"), ws.store_path)
        store = Store(ws.store_location)
        backend._stores.append(store)
    return ws, store


def _seed_demo(store, ws) -> None:
    """The demo's data through the demo adapter and the real engine, then its store-level furnishing."""
    ws.rules = []  # the same seed whatever the time of day (the demo's after-hours rule answers at night)
    asyncio.run(Engine(ws, store).run(once=True))
    from console.demo_workspace import furnish

    furnish(store, ws.agent)


# How long a Pilot test waits for what it expects: a bound for a machine busy with other tests
# (the suite runs on several workers), never a measure of speed (bench/ measures that).
PATIENCE = 20.0


async def ready(pilot, app) -> None:
    """Wait until the list and the selected customer's timeline are on screen."""
    end = time.monotonic() + PATIENCE
    while time.monotonic() < end:
        await pilot.pause(0.02)
        if app.conversations.selected is not None and app.timeline.entries:
            return
    raise AssertionError("the app never showed a conversation")


async def until(pilot, condition, what: str) -> None:
    end = time.monotonic() + PATIENCE
    while time.monotonic() < end:
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {what}")


