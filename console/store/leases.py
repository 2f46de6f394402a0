"""Who does what when several engines share a workspace: leadership of each account's pull loop,
of the workspace's duties, and the identity of an engine's claims on the outbox.

`Leases` is what the engine asks (console/sync.py); each backend has one:

- SQLite (`LocalLeases`, here): exactly one engine per workspace runs at all (console/synclock.py,
  a lock file), so it leads every account and every duty, and any claim on the outbox that is not
  its own was left by an engine that died.
- PostgreSQL (`PgLeases`, console/store/pglocks.py): one session advisory lock per account (and
  one for the duties), held on a connection of the engine's own; PostgreSQL releases it when
  that connection ends, however the engine ended, so another engine takes over. An engine's
  claims are marked with its token, itself an advisory lock: a claim whose token nobody holds
  any more was left by an engine that died.

`token` is the engine's claim mark; `refresh(wanted)` tries to hold each of `wanted` and returns
those held (it raises StoreUnavailable when the server cannot be reached: nothing is held then).
"""

from __future__ import annotations

import random

DUTIES = "*duties"  # the lease of the workspace's clock work (snoozes, duties): one engine runs it


def new_token() -> int:
    """An engine's claim mark: a positive 31-bit number (PostgreSQL's advisory locks take int4)."""
    return random.randint(1, (1 << 31) - 1)


class LocalLeases:
    """SQLite: this engine is the only one (a lock file says so), so it holds everything."""

    def __init__(self):
        self.token = new_token()

    def refresh(self, wanted: set[str]) -> set[str]:
        return set(wanted)

    def release(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass
