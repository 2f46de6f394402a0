"""Pacing campaign sends per account: a token bucket, on an injectable clock.

The engine's delivery loop asks `allowance()` how many marketing rows it may claim now and
reports what it claimed with `spend(n)`. Replies to customers are never paced: the outbox claims
them first, so an agent's answer never waits behind a campaign. The bucket holds at most one
second's worth of sends (at least one), so a paused, held or restarted campaign resumes at its
pace instead of in a burst.
"""

from __future__ import annotations

import time
from typing import Callable

from console.channels.catalog import Pace


class Pacer:
    def __init__(self, pace: Pace, clock: Callable[[], float] = time.monotonic):
        self.rate = pace.per_second
        self.capacity = max(1.0, self.rate)
        self.clock = clock
        self.tokens = 1.0
        self.at = clock()

    def _fill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def allowance(self) -> int:
        self._fill()
        return int(self.tokens)

    def spend(self, count: int) -> None:
        self._fill()
        self.tokens -= count

    def wait(self) -> float:
        """Seconds until the next send is allowed."""
        self._fill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate
