"""The workspace store: SQLite, the single source of truth for every process.

`Store` gathers the store's parts: ingest (what adapters pulled), the outbox (what we send),
queries and intents (what the UI reads and asks), search (with its index in a file of its own),
backups (export / import); measuring and automation: episodes and report data (metrics), SLA
clocks, the rules' events and actions, and the satisfaction question; and outreach: consent,
segments, campaigns, the facts restraint decides on, and the measurements.
SQL lives only in this package, so another backend can implement the same interface.
"""

from __future__ import annotations

from pathlib import Path

from console.store.automation import Activity, AutomationMixin, Plan
from console.store.backup import BackupMixin
from console.store.campaigns import CampaignError, CampaignMixin, Progress
from console.store.consent import ConsentMixin, ConsentRow
from console.store.contacts import ContactsMixin
from console.store.csat import CsatMixin
from console.store.db import Database, StoreError
from console.store.episodes import record_episodes
from console.store.ingest import IngestMixin
from console.store.outbox import OptedOut, OutboxMixin
from console.store.rawfile import RawFile
from console.store.lists import STATUSES, ListFilter, ListRow, ListsMixin, refresh_lists
from console.store.measure import MeasureMixin, Report
from console.store.metrics import MetricsMixin, ReportData
from console.store.queries import AccountState, IdentityRow, QueryMixin, TimelineEntry
from console.store.restraint import RestraintMixin
from console.store.search import SearchCancelled, SearchHit, SearchMixin, SearchSyntaxError
from console.store.searchindex import SearchIndex
from console.store.segments import Segment, SegmentCancelled, SegmentMixin
from console.store.sla import SlaClock, SlaMixin
from console.store.triage import CustomerCard, Note, Presence, Suggestion, TriageMixin

__all__ = [
    "Store", "StoreError", "OptedOut", "ListFilter", "ListRow", "IdentityRow", "TimelineEntry", "AccountState",
    "STATUSES", "CustomerCard", "Note", "Presence", "SearchHit", "SearchSyntaxError", "SearchCancelled", "Suggestion",
    "Activity", "Plan", "ReportData", "SlaClock",
    "ConsentRow", "Segment", "SegmentCancelled", "CampaignError", "Progress", "Report",
]


class Store(IngestMixin, OutboxMixin, ListsMixin, QueryMixin, TriageMixin, SearchMixin, BackupMixin, MetricsMixin,
            SlaMixin, AutomationMixin, CsatMixin, ConsentMixin, RestraintMixin, SegmentMixin, CampaignMixin,
            MeasureMixin, ContactsMixin):
    def __init__(self, path: Path | str, region: str = "US", outreach=None):
        # Episodes first: a rating may close a conversation again, which the list refresh then sees.
        self.db = Database(path, before_commit=(record_episodes, refresh_lists))
        self.raw = RawFile(Path(path))
        self.region = region
        self.outreach = outreach  # the [outreach] settings (console/outreach/settings.py); None: the defaults
        if str(path) == ":memory:":  # the indexer cannot open an in-memory workspace: it shares this connection
            self.index = SearchIndex(Path(path), self.db.conn, self.db.lock)
        else:
            self.index = SearchIndex(Path(path))
        self.db.after_commit.append(self.index.wake)
        self.index.wake()  # what earlier runs left pending, or a first build of the index

    @property
    def outreach(self):
        return self.policy.settings

    @outreach.setter
    def outreach(self, settings) -> None:
        """The restraint every send passes (console/outreach/restraint.py `Policy`): the store asks
        it and knows no channel's rules itself, so it is handed in (imported here, not above)."""
        from console.outreach.restraint import Policy

        self.policy = Policy(settings)

    def data_version(self) -> int:
        return self.db.data_version()

    def close(self) -> None:
        self.index.close()
        self.raw.close()
        self.db.close()
