"""The engine's SLA duty: each waiting conversation's most urgent clock, kept in the store.

Every few seconds it recomputes the clocks of the conversations the store marked dirty (a new
message, a reply, a status, a tag, a merge; see console/store/sla.py) with the workspace's
calendar and policies (console/sla.py), and, when the calendar or a policy changed since the
last run, every waiting conversation's. The list's badges, the "breaching soon" filter and the
`sla_breaching` rules read what it wrote. `now` is injectable for tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Callable

from console import sla

BATCH = 2000


class SlaDuty:
    name = "sla"
    every = 5.0

    def __init__(self, workspace, store, now: Callable[[], float] = time.time):
        self.store = store
        self.hours = workspace.business_hours
        self.policies = workspace.policies
        self.now = now
        self.fingerprint = hashlib.sha256(repr((self.hours, self.policies)).encode()).hexdigest()[:16]

    async def run(self, engine) -> None:
        await asyncio.to_thread(self.step)

    def step(self) -> int:
        """Recompute what is dirty; returns how many clocks were looked at."""
        if self.store.setting("sla.config") != self.fingerprint:
            self.store.mark_all_sla_dirty()
            self.store.set_setting("sla.config", self.fingerprint)
        done = 0
        while True:
            rows = self.store.claim_sla_dirty(BATCH)
            if not rows:
                return done
            now = self.now()
            self.store.save_clocks({row["id"]: self.clock(row, now) for row in rows})
            done += len(rows)

    def clock(self, row: dict, now: float) -> sla.Clock | None:
        if row["status"] not in ("open", "snoozed") or row.get("started_at") is None:
            return None
        episode = sla.Episode(row["started_at"], row["first_response_at"], row["owed_since"], row["owed"],
                              row["resolved_at"])
        return sla.urgent(sla.clocks(self.policies, self.hours, row["channel"], row["account"], row["tags"],
                                     episode, now))


def factory(workspace, store) -> SlaDuty:
    return SlaDuty(workspace, store)
