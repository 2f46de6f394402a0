"""The real-terminal suite's workspace: a demo workspace of its own per test, and the installed
`console` started on it in a pseudo-terminal (the fixtures are in tests/e2e/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from console.store import ListFilter, Store
from e2e.terminal import Terminal

CONSOLE = Path(sys.executable).with_name("console")

ACCOUNTS = """
[[accounts]]
kind = "demo"
name = "mail"
channels = ["email"]
chatter = false
reply_delay = 3600.0

[[accounts]]
kind = "demo"
name = "phone"
channels = ["sms", "whatsapp"]
chatter = false
reply_delay = 3600.0
[accounts.templates]
order_ready = "HXdemo0001"
follow_up = "HXdemo0002"

[[accounts]]
kind = "demo"
name = "social"
channels = ["telegram", "instagram", "messenger"]
chatter = false
reply_delay = 3600.0

[templates]
ready = "Hi {first_name}, your order is ready for pickup today from 4pm. See you soon! {agent}"
thanks = "Thank you so much, {first_name}! Have a lovely day. {agent} at {business}"
"""


class Workspace:
    """A copy of the seeded demo workspace, with a config file naming its data directory."""

    def __init__(self, root: Path, seeded: Path):
        self.root = root
        self.data_dir = root / "data"
        self.download_dir = root / "downloads"
        self.config_path = root / "config.toml"
        self.home = root / "home"
        self.home.mkdir()
        self.data_dir.mkdir()
        shutil.copy(seeded, self.data_dir / "console.db")
        raw = seeded.with_name(seeded.stem + ".raw.db")  # console/store/rawfile.py
        if raw.exists():
            shutil.copy(raw, self.data_dir / raw.name)
        self.terminals: list[Terminal] = []
        self._stores: list[Store] = []
        self.write_config()

    def write_config(self, workspace: str = "", accounts: str = ACCOUNTS) -> None:
        self.config_path.write_text(
            '[workspace]\nname = "Crumb & Co. Bakery (demo)"\nagent = "ana"\ndefault_region = "US"\n'
            f'data_dir = "{self.data_dir}"\ndownload_dir = "{self.download_dir}"\n{workspace}\n{accounts}')
        self.config_path.chmod(0o600)

    @property
    def store_path(self) -> Path:
        return self.data_dir / "console.db"

    def store(self) -> Store:
        store = Store(self.store_path)
        self._stores.append(store)
        return store

    def open_rows(self, limit: int = 50):
        store = self.store()
        return store.list_rows(ListFilter("open"), 0, limit)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CONSOLE_CONFIG", "TEXTUAL")}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"),
                   XDG_DATA_HOME=str(self.home / ".local/share"), TERM="xterm-256color", LANG="C.UTF-8",
                   LC_ALL="C.UTF-8", COLUMNS="", LINES="")
        env.pop("COLUMNS"), env.pop("LINES")
        env.update(extra)
        return env

    def start(self, cols: int = 80, rows: int = 24, args: tuple[str, ...] = (), wait: str | None = None,
              **env: str) -> Terminal:
        """`console --config <this workspace>` on a pty; returns once the first customer is shown."""
        term = Terminal([str(CONSOLE), "--config", str(self.config_path), *args], self.env(**env), cols, rows)
        self.terminals.append(term)
        if wait is None:
            rows_now = self.open_rows(1)
            wait = rows_now[0].name[:12] if rows_now else "Open"
        shown = term.wait_for(lambda text: "Open" in text and wait in text, timeout=30)
        assert shown, f"the app did not show {wait!r} within 30 s:\n{term.text()}"
        term.settle(0.3)
        return term

    def engine_running(self) -> bool:
        lock = self.data_dir / "sync.lock"
        return lock.exists() and _locked(lock)

    def errors(self) -> str:
        path = self.data_dir / "errors.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for term in self.terminals:
            term.close()
        for store in self._stores:
            store.close()
        # The engine the app started goes when the app goes; give it a moment to say goodbye.
        deadline = time.monotonic() + 5
        lock = self.data_dir / "sync.lock"
        while time.monotonic() < deadline and lock.exists() and _locked(lock):
            time.sleep(0.1)


def _locked(path: Path) -> bool:
    import fcntl

    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def assert_healthy(term: Terminal) -> None:
    """The process is alive and shows no traceback."""
    assert term.alive(), f"the app exited ({term.status}):\n{term.text()}"
    screen = term.text()
    assert "Traceback" not in screen and "Could not " not in screen, screen


def eventually(check, timeout: float = 10.0) -> bool:
    """Wait until `check()` holds (a store effect, a file), for at most `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.1)
    return check()


# ---- reading the screen -------------------------------------------------------------------------
def right_pane(term: Terminal, line: int) -> str:
    """Line `line` of the right pane (right of the list's border)."""
    text = term.lines()[line]
    return text.split("▕", 1)[1].strip() if "▕" in text else ""


def selected_name(term: Terminal) -> str:
    """The selected customer: the first line of the right pane (the customer header)."""
    return right_pane(term, 1)


def footer(term: Terminal) -> str:
    return term.lines()[-1]


def tabs(term: Terminal) -> str:
    return term.lines()[1].split("▕", 1)[0]


def select(term: Terminal, store, customer_id: int) -> None:
    """Select a customer as a person would: their tab (O/W/Z/D), then j until it is theirs."""
    from console.store import STATUSES

    for status in STATUSES:
        keys = [r.customer_id for r in store.list_rows(ListFilter(status), 0, 1000)]
        if customer_id in keys:
            term.press({"open": "O", "waiting": "W", "snoozed": "Z", "done": "D"}[status])
            name = store.customer_name(customer_id)[:12]
            assert term.wait_for(lambda text: tabs(term).find({"open": "Open", "waiting": "Waiting",
                                                                "snoozed": "Snoozed", "done": "Done"}[status]) >= 0
                                 and bool(selected_name(term)), timeout=5), term.text()
            term.settle(0.2)
            for _ in range(keys.index(customer_id)):
                term.press("j", pause=0.03)
            assert term.wait_for(lambda text: selected_name(term).startswith(name), timeout=8), \
                f"could not select {name}:\n{term.text()}"
            term.settle(0.2)
            return
    raise AssertionError(f"customer {customer_id} is on no tab")
