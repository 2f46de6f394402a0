"""A fake clock for the store, the engine's duties and the rules: `time.time()` says what the
test says, so a test moves time on instead of sleeping."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo


class FakeClock:
    def __init__(self, start: float):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def set(self, moment: float) -> None:
        self.now = moment

    def advance(self, seconds: float) -> None:
        self.now += seconds


def at(text: str, zone: str = "Europe/London") -> float:
    """'2026-12-21 10:00' in `zone`, as UTC epoch seconds."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def install(monkeypatch, start: float) -> FakeClock:
    clock = FakeClock(start)
    monkeypatch.setattr(time, "time", clock)
    return clock
