"""The engine's satisfaction duty: after a conversation is done, one short question.

Asked `after_minutes` after the conversation was marked done (a conversation reopened meanwhile
is not asked), at most once per conversation (console/store/csat.py), through the outbox like any
reply, on the customer's channel — never to an identity that opted out, never outside the
channel's reply window (a WhatsApp conversation quiet for a day is not asked), and never in the
customer's quiet hours in their own time zone (console/recipient_time.py): then it is held until
their morning, and let go if that is more than `HOLD_FOR` after it was done. `now` is injectable.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from console.channels import catalog
from console.recipient_time import quiet_until, recipient_zones

HOLD_FOR = 2 * 86400.0  # a question not asked within this after the conversation was done is never asked


class CsatDuty:
    name = "csat"
    every = 30.0

    def __init__(self, workspace, store, now: Callable[[], float] = time.time):
        self.settings = workspace.csat
        self.store = store
        self.zone = workspace.business_hours.zone_name
        self.now = now

    async def run(self, engine) -> None:
        await asyncio.to_thread(self.step)

    def step(self) -> list[tuple[int, str]]:
        """Ask who is due; returns (conversation id, 'asked' / 'held' / why it was skipped)."""
        now = self.now()
        settings = self.settings
        out = []
        for row in self.store.csat_candidates(now - HOLD_FOR, now - settings.after_minutes * 60):
            cid, episode = row["id"], row["episode_id"]
            reason = self._refusal(row, now)
            if reason:
                self.store.skip_csat(cid, episode, reason)
                out.append((cid, reason))
                continue
            phone = row["address"] if row["kind"] == "phone" else None
            if quiet_until(now, recipient_zones(row["attributes"], phone, self.zone), settings.quiet_hours):
                out.append((cid, "held"))  # their night: asked on a later pass
                continue
            if self.store.ask_csat(cid, episode, settings.question_for(row["channel"])) is not None:
                out.append((cid, "asked"))
        return out

    def _refusal(self, row: dict, now: float) -> str:
        if self.settings.channels and row["channel"] not in self.settings.channels:
            return f"not asked on {catalog.channel(row['channel']).name}"
        if row["opted_out"]:
            return "the customer opted out"
        if not catalog.window_state(row["channel"], row["last_inbound_at"], now).free_text:
            return f"the {catalog.channel(row['channel']).name} reply window is closed"
        return ""


def factory(workspace, store) -> CsatDuty | None:
    return CsatDuty(workspace, store) if workspace.csat is not None else None
