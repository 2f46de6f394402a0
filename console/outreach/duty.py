"""The campaign duty: the engine's clock for campaigns, with no console open.

Every few seconds it plans the later steps of running campaigns for the recipients whose
previous message went and whose delay is over, on the segment as it is then, and marks a
campaign finished when nothing is left to send (console/store/campaigns.py
`advance_campaigns`). Sending itself is the outbox's: the engine's delivery loops claim the
rows, restraint checks each one again, pacing spaces them. The clock is the engine's (`clock`),
so a test moves it forward instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging

from console.outreach import planner
from console.outreach.settings import senders_for

log = logging.getLogger("console.outreach")
EVERY = 5.0


class CampaignDuty:
    name = "campaigns"
    every = EVERY

    def __init__(self, workspace, store):
        self.store = store
        self.senders = senders_for(workspace)

    async def run(self, engine) -> None:
        for line in await asyncio.to_thread(planner.advance, self.store, self.senders, engine.clock()):
            log.info("%s", line)


def campaign_duty(workspace, store) -> CampaignDuty:
    return CampaignDuty(workspace, store)
