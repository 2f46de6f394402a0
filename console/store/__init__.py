"""The workspace store: SQLite or PostgreSQL, the single source of truth for every process.

`Store` gathers the store's parts: ingest (what adapters pulled), the outbox (what we send),
queries and intents (what the UI reads and asks); what triage keeps: customers (tags, notes,
attributes), drafts, templates, assignment, presence, downloads, merges; search (with its index
in a file of its own), backups (export / import); measuring and automation: episodes and report data (metrics), SLA
clocks, the rules' events and actions, and the satisfaction question; and outreach: consent,
segments, campaigns, the facts restraint decides on, and the measurements.
SQL lives only in this package, behind one `Database` interface with two implementations:
SQLite (console/store/db.py, the embedded default: a file per workspace) and PostgreSQL
(console/store/pg.py, for a team on several machines). Where a store lives is its *location*: a
path, a `postgresql://` URL, or settings with a URL and a password (`[store]` in the config).
"""

from __future__ import annotations

from pathlib import Path

from console.store.assignment import AssignmentMixin
from console.store.automation import Activity, AutomationMixin, Plan
from console.store.backup import BackupMixin
from console.store.campaigns import CampaignError, CampaignMixin, Progress
from console.store.consent import ConsentMixin, ConsentRow
from console.store.contacts import ContactsMixin
from console.store.csat import CsatMixin
from console.store.customers import CustomerCard, CustomerMixin, Note
from console.store.db import Database, StoreError, StoreRefused, StoreUnavailable
from console.store.dialect import is_postgres_url
from console.store.downloads import DownloadMixin
from console.store.drafts import DraftMixin
from console.store.episodes import record_episodes
from console.store.ingest import IngestMixin
from console.store.outbox import OptedOut, OutboxMixin
from console.store.rawfile import RawFile
from console.store.lists import STATUSES, ListFilter, ListRow, ListsMixin, refresh_lists
from console.store.measure import MeasureMixin, Report
from console.store.merges import MergeMixin, Suggestion
from console.store.metrics import MetricsMixin, ReportData
from console.store.presence import Presence, PresenceMixin
from console.store.queries import AccountState, IdentityRow, QueryMixin, TimelineEntry
from console.store.restraint import RestraintMixin
from console.store.search import SearchCancelled, SearchHit, SearchMixin, SearchSyntaxError, SqliteSearch
from console.store.searchindex import SearchIndex
from console.store.segments import Segment, SegmentCancelled, SegmentMixin
from console.store.sla import SlaClock, SlaMixin
from console.store.templates import TemplateMixin

# What every write transaction does just before COMMIT, in this order. Episodes first: a rating
# may close a conversation again, which the list refresh then sees.
HOOKS = (record_episodes, refresh_lists)

__all__ = [
    "Store", "StoreError", "StoreRefused", "StoreUnavailable", "OptedOut", "ListFilter", "ListRow", "IdentityRow", "TimelineEntry", "AccountState",
    "STATUSES", "CustomerCard", "Note", "Presence", "SearchHit", "SearchSyntaxError", "SearchCancelled", "Suggestion",
    "Activity", "Plan", "ReportData", "SlaClock",
    "ConsentRow", "Segment", "SegmentCancelled", "CampaignError", "Progress", "Report",
]


class Store(IngestMixin, OutboxMixin, ListsMixin, QueryMixin, CustomerMixin, DraftMixin, TemplateMixin,
            AssignmentMixin, PresenceMixin, DownloadMixin, MergeMixin, SearchMixin, BackupMixin, MetricsMixin,
            SlaMixin, AutomationMixin, CsatMixin, ConsentMixin, RestraintMixin, SegmentMixin, CampaignMixin,
            MeasureMixin, ContactsMixin):
    def __init__(self, location, region: str = "US", outreach=None):
        """`location`: a SQLite file's path, a `postgresql://` URL, or `[store]` settings (an
        object with `url` and `password()`, console/config.py `StoreSettings`); `outreach`: the
        [outreach] settings (console/outreach/settings.py), None for the defaults."""
        self.region = region
        self.outreach = outreach
        url = getattr(location, "url", None) or (location if is_postgres_url(location) else None)
        if url is not None:
            self._open_postgres(url, location.password() if hasattr(location, "password") else None)
            return
        self.db = Database(location, before_commit=HOOKS)
        self.raw = RawFile(Path(location))
        if str(location) == ":memory:":  # the indexer cannot open an in-memory workspace: it shares this connection
            self.index = SearchIndex(Path(location), self.db.conn, self.db.lock)
        else:
            self.index = SearchIndex(Path(location))
        self.searcher = SqliteSearch(self.db, self.index)
        self.db.after_commit.append(self.index.wake)
        self.index.wake()  # what earlier runs left pending, or a first build of the index

    def _open_postgres(self, url: str, password: str | None) -> None:
        from console.store.pg import PgDatabase
        from console.store.pgraw import PgRawFile
        from console.store.pgsearch import PgSearch, PgSearchIndex

        self.db = PgDatabase(url, password, before_commit=HOOKS)
        self.raw = PgRawFile(self.db)
        self.index = PgSearchIndex(self.db)
        self.searcher = PgSearch(self.db, self.index)
        self.db.after_commit.append(self.index.wake)
        self.index.wake()

    @property
    def backend(self) -> str:
        return self.db.dialect.name

    def data_version(self):
        return self.db.change_token()

    def change_token(self):
        """Different from the previous one when anything changed since (any process, any machine).
        Raises StoreUnavailable while a PostgreSQL server cannot be reached."""
        return self.db.change_token()

    def leases(self):
        """Leadership of accounts and duties for an engine (console/store/leases.py)."""
        return self.db.leases()

    @property
    def outreach(self):
        return self.policy.settings

    @outreach.setter
    def outreach(self, settings) -> None:
        """The restraint every send passes (console/outreach/restraint.py `Policy`): the store asks
        it and knows no channel's rules itself, so it is handed in (imported here, not above)."""
        from console.outreach.restraint import Policy

        self.policy = Policy(settings)

    def close(self) -> None:
        self.index.close()
        self.raw.close()
        self.db.close()
