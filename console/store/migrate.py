"""`console migrate`: a SQLite workspace copied into a PostgreSQL database, every table, resumably.

Why not export | import: an export holds the triage data and the history, not what the store
computed and keeps (episodes, SLA clocks, events, the precomputed list, consent, campaigns...),
and import applies a file in one transaction, so a workspace of a few GB would be one transaction
that starts again from nothing after an interruption. Here each table is copied as it is:

- **Read-only source.** The SQLite file is opened with `mode=ro`; nothing is written to it (or to
  its raw file). It must be at this console's schema version (open it once to upgrade).
- **Batches in rowid order**, each in one PostgreSQL transaction that also records how far the
  table is done (`migrate_progress`, keyed by the source workspace's id). A kill -9 loses at most
  the batch in flight, which its rollback removes whole; the next run starts after the last
  committed batch, and `ON CONFLICT DO NOTHING` keeps a repeated row from being doubled anyway.
- **Rows as they are.** Inside each batch the table's own triggers are off (`DISABLE TRIGGER USER`,
  transactional, so a kill leaves them on): the copied rows are the ones the triggers and hooks
  made on the SQLite side (episodes, list rows, queues), and running them again would count every
  message twice. Ids are kept; identity sequences move past them at the end.
- **Search**: SQLite's index is a file of its own; PostgreSQL's is filled by its indexer from
  `search_queue`, which the migration fills once with every message and customer.
- **Raw mail** goes from the raw file (console/store/rawfile.py) to `raw_mail`, by digest.
- **Verified**: the run ends by counting each table on both sides; only when every count matches
  is the migration recorded as complete, and a run after that changes nothing.
- **One workspace per database**: a target holding rows that no migration of this workspace put
  there (another workspace, or a team already working in it) is refused.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from console.store.db import StoreError
from console.store.rawfile import RawFile, raw_path
from console.store.schema import SCHEMA_VERSION

# SQLite's queue for its own index file: PostgreSQL's queue is filled afresh (`_queue_search`).
NOT_COPIED = {"search_queue"}
RAW = "raw_mail"  # the progress item and the PostgreSQL table of the raw bytes
SEARCH = "(search queued)"
COMPLETE = "(complete)"
# Tables a fresh PostgreSQL workspace already has rows in (its own search index id, kept: the
# copy keeps a row already there, ON CONFLICT DO NOTHING).
FILLED_BY_SCHEMA = {"meta"}
COPY_LOCK = 0x636F6E736F6C65 + 8  # one `console migrate` at a time into a database (pg.py, pgsearch.py: +0, +1, +7)


class MigrateError(StoreError):
    """A migration that cannot start or finish, said in one sentence."""


@dataclass(frozen=True)
class Count:
    table: str
    source: int
    target: int

    @property
    def matches(self) -> bool:
        return self.source == self.target


def open_source(path: Path) -> sqlite3.Connection:
    """The SQLite workspace, read-only, at this console's schema version."""
    if not path.exists():
        raise MigrateError(f"{path}: no SQLite workspace there to migrate (check [workspace] data_dir)")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise MigrateError(f"{path} is not a usable console workspace ({exc})") from None
    if version != SCHEMA_VERSION:
        conn.close()
        raise MigrateError(f"{path} is at schema {version}, this console migrates schema {SCHEMA_VERSION}: "
                           "open it once with this console (`console check`), then migrate")
    return conn


class Migration:
    """One SQLite workspace into one PostgreSQL store (a `Store` opened as the database's owner)."""

    def __init__(self, source_path: Path, target, batch: int = 1000,
                 report: Callable[[str], None] = lambda line: None):
        self.path = Path(source_path)
        self.source = open_source(self.path)
        self.target = target
        self.batch = max(1, batch)
        self.report = report
        self.workspace_id = self._workspace_id()

    def close(self) -> None:
        self.source.close()

    # ---- what there is ----------------------------------------------------------------------------
    def _workspace_id(self) -> str:
        row = self.source.execute("SELECT value FROM meta WHERE key = 'search_index'").fetchone()
        if row is None:
            raise MigrateError(f"{self.path} has no workspace id (meta.search_index); open it once with console")
        return row[0]

    def tables(self) -> list[str]:
        """The source's tables in creation order, so a table comes after those it references."""
        names = [r[0] for r in self.source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        return [name for name in names if name not in NOT_COPIED]

    def _columns(self, table: str) -> list[str]:
        columns = [r[1] for r in self.source.execute(f'PRAGMA table_info("{table}")')]
        missing = set(columns) - set(self.target.db.columns(table))
        if missing:
            raise MigrateError(f"the database has no column {', '.join(sorted(missing))} in {table}: "
                               "is it a console workspace of the same version?")
        return columns

    def _has_rowid(self, table: str) -> bool:
        try:
            self.source.execute(f'SELECT rowid FROM "{table}" LIMIT 0')
            return True
        except sqlite3.OperationalError:  # WITHOUT ROWID
            return False

    def _raw_shas(self) -> list[str]:
        """The digests of raw mail the source holds bytes for, in order (a message whose bytes were
        never stored has nothing to copy)."""
        if raw_path(self.path) is None or not raw_path(self.path).exists():
            return []
        raw = sqlite3.connect(f"{raw_path(self.path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            return [r[0] for r in raw.execute("SELECT sha FROM packed UNION SELECT sha FROM raw ORDER BY 1")]
        finally:
            raw.close()

    # ---- progress ---------------------------------------------------------------------------------
    def progress(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.target.db.query(
            "SELECT item, done FROM migrate_progress WHERE source = ?", (self.workspace_id,))}

    @staticmethod
    def _record(conn, source: str, item: str, done: int) -> None:
        conn.execute("""INSERT INTO migrate_progress (source, item, done) VALUES (?, ?, ?)
                        ON CONFLICT (source, item) DO UPDATE SET done = excluded.done""", (source, item, done))

    def check_target(self) -> None:
        """Refuse a database that is not the owner's, or that holds another workspace's rows."""
        db = self.target.db
        if not db.is_admin:
            raise MigrateError(f"{db.where}: connected as {db.user}, an agent's role; migrate as the database's "
                               "owner (README: Running a team)")
        others = db.query_one("SELECT count(DISTINCT source) FROM migrate_progress WHERE source <> ?",
                              (self.workspace_id,))[0]
        if others:
            raise MigrateError(f"{db.where} already holds another workspace (migrated from elsewhere); "
                               "migrate into an empty database")
        if self.progress():
            return
        for table in self.tables():
            if table not in FILLED_BY_SCHEMA and db.query_one(f"SELECT EXISTS (SELECT 1 FROM {table})")[0]:
                raise MigrateError(f"{db.where} already holds a workspace ({table} has rows); "
                                   "migrate into an empty database")

    # ---- copying ----------------------------------------------------------------------------------
    def run(self) -> list[Count]:
        """Copy what is left, then count; returns the counts (the caller says whether they match).
        A second `console migrate` into the same database meanwhile is refused: two copies would
        move each other's progress back."""
        holder = self.target.db.connect()
        try:
            if not holder.execute("SELECT pg_try_advisory_lock(%s)", (COPY_LOCK,)).fetchone()[0]:
                raise MigrateError(f"another console migrate is copying into {self.target.db.where}; "
                                   "wait for it to end (or stop it), then run this again")
            return self._run()
        except sqlite3.Error as exc:
            raise MigrateError(f"{self.path}: reading the workspace failed ({exc}); run console migrate again") from None
        except self.target.db.errors as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MigrateError(f"{self.target.db.where} refused a row ({detail}); what was copied before it is kept, "
                               "and console migrate goes on from there once that is fixed") from None
        finally:
            holder.close()

    def _run(self) -> list[Count]:
        self.check_target()
        done = self.progress()
        if COMPLETE not in done:
            for table in self.tables():
                self._copy_table(table, done.get(table, 0))
            self._copy_raw(done.get(RAW, 0))
            self._advance_sequences()
            if SEARCH not in done:
                self._queue_search()
        counts = self.counts()
        if all(c.matches for c in counts) and COMPLETE not in done:
            with self.target.db.write(serial=False) as conn:
                self._record(conn, self.workspace_id, COMPLETE, 1)
        return counts

    def already_done(self) -> bool:
        return COMPLETE in self.progress()

    def _copy_table(self, table: str, after: int) -> None:
        """The table's rows past rowid `after`, a batch per transaction (the whole table at once
        for a WITHOUT ROWID one: those are small, and their progress is 0 or done)."""
        columns = self._columns(table)
        names = ",".join(f'"{c}"' for c in columns)
        if not self._has_rowid(table):
            if after:
                return
            rows = self.source.execute(f'SELECT {names} FROM "{table}"').fetchall()
            self._insert(table, columns, rows, -1)
            self.report(f"{table}: {len(rows)} row(s)")
            return
        copied = 0
        while True:
            found = self.source.execute(f'SELECT rowid, {names} FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT ?',
                                        (after, self.batch)).fetchall()
            if not found:
                break
            after = found[-1][0]
            self._insert(table, columns, [row[1:] for row in found], after)
            copied += len(found)
        if copied:
            self.report(f"{table}: {copied} row(s)")

    def _insert(self, table: str, columns: list[str], rows: list, done: int) -> None:
        """One batch and its progress, in one transaction, with the table's triggers off."""
        names = ",".join(f'"{c}"' for c in columns)
        marks = ",".join("?" * len(columns))
        with self.target.db.write(serial=False) as conn:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            if rows:
                conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING", rows)
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            self._record(conn, self.workspace_id, table, done)

    def _copy_raw(self, after: int) -> None:
        """Raw mail bytes, a batch of digests per transaction (`after`: how many are done)."""
        shas = self._raw_shas()[after:]
        if not shas:
            return
        raw = RawFile(self.path)
        try:
            for start in range(0, len(shas), self.batch):
                chunk = shas[start:start + self.batch]
                blobs = [(sha, raw.get(sha)) for sha in chunk]
                with self.target.db.write(serial=False) as conn:
                    conn.executemany(f"INSERT INTO {RAW} (sha, data) VALUES (?, ?) ON CONFLICT (sha) DO NOTHING",
                                     [(sha, data) for sha, data in blobs if data is not None])
                    self._record(conn, self.workspace_id, RAW, after + start + len(chunk))
        finally:
            raw.close()
        self.report(f"{RAW}: {len(shas)} message(s) of raw bytes")

    def _advance_sequences(self) -> None:
        """Every identity column's sequence past the highest id copied, so new rows never collide."""
        identities = self.target.db.query(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_identity = 'YES'")
        copied = set(self.tables())
        with self.target.db.write(serial=False) as conn:
            for table, column in identities:
                if table in copied:
                    self.target.db.ids_taken(conn, [table], column)

    def _queue_search(self) -> None:
        """Every message and customer for PostgreSQL's indexer (the triggers that would have
        queued them were off), recorded in the same transaction so it is done once."""
        with self.target.db.write(serial=False) as conn:
            conn.execute("INSERT INTO search_queue (message_id) SELECT id FROM message ORDER BY id")
            conn.execute("INSERT INTO search_queue (customer_id) SELECT id FROM customer ORDER BY id")
            self._record(conn, self.workspace_id, SEARCH, 1)
        self.target.index.wake()

    # ---- verifying --------------------------------------------------------------------------------
    def counts(self) -> list[Count]:
        """Rows per table on both sides, and the raw mail messages."""
        out = []
        for table in self.tables():
            source = self.source.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            out.append(Count(table, source, self.target.db.query_one(f"SELECT count(*) FROM {table}")[0]))
        shas = self._raw_shas()
        stored = self.target.db.query_one(f"SELECT count(*) FROM {RAW} WHERE sha = ANY(?)", (shas,))[0]
        out.append(Count(RAW, len(shas), stored))
        return out
