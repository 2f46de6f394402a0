"""How an adapter picks its own message among look-alikes when it reconciles a send in doubt.

Services without an idempotency key (Twilio Messages, Meta's Send API) can only be searched by
recipient and text, and a business often sends the same text twice ("Thanks!"). The rule every
adapter follows: a message the store already records for another reply is never this one
(`Outgoing.taken_external_ids`); of the rest, the one nearest after the reply was written wins,
because a send leaves after it is written; on a tie (services give whole seconds) the older one,
because sends of one account leave in the order they were claimed.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def closest_after(oldest_first: Sequence[T], written_at: float, time_of: Callable[[T], float]) -> T | None:
    """The candidate nearest after `written_at` (epoch seconds), else the nearest before it (a
    service clock a little behind ours); `oldest_first` is already free of taken ids."""
    if not oldest_first:
        return None
    second = math.floor(written_at)

    def distance(candidate: T) -> tuple[bool, float]:
        at = time_of(candidate)
        return at < second, abs(at - second)

    return min(oldest_first, key=distance)  # min keeps the first (oldest) of equals
