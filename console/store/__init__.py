"""The workspace store: SQLite, the single source of truth for every process.

`Store` gathers the store's parts: ingest (what adapters pulled), the outbox (what we send),
queries and intents (what the UI reads and asks), backups (export / import), and outreach:
consent, segments, campaigns, the facts restraint decides on, and the measurements.
SQL lives only in this package, so another backend can implement the same interface.
"""

from __future__ import annotations

from pathlib import Path

from console.outreach.settings import OutreachSettings
from console.store.backup import BackupMixin
from console.store.campaigns import CampaignError, CampaignMixin, Plan, Planned, Progress
from console.store.consent import ConsentMixin, ConsentRow
from console.store.contacts import ContactsMixin
from console.store.db import Database, StoreError
from console.store.ingest import IngestMixin
from console.store.outbox import OptedOut, OutboxMixin
from console.store.triage import (CustomerCard, Note, Presence, SearchHit, SearchSyntaxError, Suggestion,
                                  TriageMixin)
from console.store.rawfile import RawFile
from console.store.lists import STATUSES, ListFilter, ListRow, ListsMixin, refresh_lists
from console.store.measure import MeasureMixin, Report
from console.store.queries import AccountState, IdentityRow, QueryMixin, TimelineEntry
from console.store.restraint import RestraintMixin
from console.store.segments import Segment, SegmentCancelled, SegmentMixin

__all__ = [
    "Store", "StoreError", "OptedOut", "ListFilter", "ListRow", "IdentityRow", "TimelineEntry", "AccountState",
    "STATUSES", "CustomerCard", "Note", "Presence", "SearchHit", "SearchSyntaxError", "Suggestion",
    "ConsentRow", "Segment", "SegmentCancelled", "CampaignError", "Plan", "Planned", "Progress", "Report",
]


class Store(IngestMixin, OutboxMixin, ListsMixin, QueryMixin, TriageMixin, BackupMixin, ConsentMixin,
            RestraintMixin, SegmentMixin, CampaignMixin, MeasureMixin, ContactsMixin):
    def __init__(self, path: Path | str, region: str = "US", outreach: OutreachSettings | None = None):
        self.db = Database(path, before_commit=(refresh_lists,))
        self.raw = RawFile(Path(path))
        self.region = region
        self.outreach = outreach or OutreachSettings()  # the [outreach] settings restraint applies

    def data_version(self) -> int:
        return self.db.data_version()

    def close(self) -> None:
        self.raw.close()
        self.db.close()
