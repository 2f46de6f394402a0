"""Opening a workspace's SQLite file: pragmas, migrations, connections and write transactions.

Each thread gets a connection of its own (WAL mode lets readers go on while a writer writes), so
a read in one thread never waits behind another thread's write, nor behind the sync engine's.
Writes go through `write()`, which opens the transaction with BEGIN IMMEDIATE: in WAL mode a
deferred transaction that reads and then writes fails at once under contention. Hooks registered
with `before_commit` run inside every write transaction just before it commits (the conversation
list's precomputed rows are refreshed that way, so no write path can forget them); `after_commit`
hooks run once it has (the search index wakes its indexer).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from console.store.dialect import SQLITE
from console.store.schema import MIGRATIONS, SCHEMA_VERSION

BUSY_TIMEOUT_MS = 10_000


class StoreError(Exception):
    """The workspace file cannot be used; the message says why and what to do."""


class StoreRefused(StoreError):
    """The database refused a write this connection's role may not make (PostgreSQL: a note or a
    reply under another agent's name, a schema change by an agent); the message says which."""


class StoreUnavailable(StoreError):
    """The store's server cannot be reached (PostgreSQL restarted, the network down); trying again
    later may work. The UI says "store unreachable" instead of an error, and recovers by itself."""

    unreachable = True


class Database:
    """The workspace file, reachable from any thread (a connection per thread). PostgreSQL's
    `Database` with the same interface is console/store/pg.py."""

    dialect = SQLITE
    errors = (sqlite3.Error,)
    integrity_errors = (sqlite3.IntegrityError,)

    def __init__(self, path: Path | str, readonly: bool = False,
                 before_commit: tuple[Callable[[sqlite3.Connection], None], ...] = ()):
        self.path = Path(path)
        self.where = str(path)
        self._memory = str(path) == ":memory:"
        if not self._memory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.before_commit = list(before_commit)
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._connections_lock = threading.Lock()
        self._autocheckpoint = True
        self._checkpointer: threading.Thread | None = None
        self._checkpointer_stop = threading.Event()
        self._wrote = threading.Event()  # set by each commit while the checkpointer runs
        # One lock per process for write transactions: threads of one process queue here rather
        # than in SQLite's busy handler, which sleeps in steps and would add latency.
        self.lock = threading.RLock()
        # Called after each commit of `write()` (the search index wakes its indexer with it).
        self.after_commit: list[Callable[[], None]] = []
        try:
            conn = self.conn
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(f"{path} is not a usable console workspace ({exc})") from None
        del conn

    # ---- connections ----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(str(self.path) if not self._memory else ":memory:", timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the workspace {self.path}: {exc}") from None
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if not self._autocheckpoint:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (an in-memory database has one, shared)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._connections_lock:
                if self._memory and self._connections:
                    conn = self._connections[0][1]
                else:
                    self._close_orphans()
                    conn = self._connect()
                    self._connections.append((threading.current_thread(), conn))
            self._local.conn = conn
        return conn

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended (short-lived worker threads)."""
        alive = []
        for thread, conn in self._connections:
            if thread.is_alive():
                alive.append((thread, conn))
            else:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
        self._connections = alive

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer console (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade console"
            )
        if version == SCHEMA_VERSION:
            return
        with self.write() as conn:
            # Re-read inside the lock: another process may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ---- transactions ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self, serial: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction (on SQLite always one at a time: `serial` is PostgreSQL's)."""
        conn = self.conn
        with self.lock:
            if conn.in_transaction:  # a write inside a write of this thread: one transaction
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                for hook in self.before_commit:
                    hook(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
                if self._checkpointer is not None:
                    self._wrote.set()
                for hook in self.after_commit:
                    hook()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several queries."""
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | list | dict = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | list | dict = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def data_version(self) -> int:
        """Changes when another connection commits: a cheap way to notice other processes (and
        other threads of this one, which have connections of their own)."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    change_token = data_version  # the interface both backends share: different when anything changed

    def columns(self, table: str) -> list[str]:
        return [r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")]

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    # How long after it was made a claim of a gone engine may still be that engine's (none here).
    claim_grace = 0.0

    def claim_gone_clause(self, claimer: str, claimed_at: str, grace: bool = True) -> tuple[str, list]:
        """SQL: an outbox claim's engine is gone. On SQLite one engine runs at a time (a lock
        file), so a claim that is not the running engine's own was left by one that died."""
        return "1 = 1", []

    def leases(self):
        from console.store.leases import LocalLeases

        return LocalLeases()

    def ids_taken(self, conn, tables: list[str], column: str = "id") -> None:
        """After rows were inserted with ids of their own (an import): SQLite's next id is always
        the highest plus one, so nothing to do (PostgreSQL moves its identity sequences)."""

    # ---- checkpoints away from the writer ------------------------------------------------------
    def checkpoint_in_background(self, every: float = 0.5) -> None:
        """For the process that writes the most (the sync engine): its commits stop copying the WAL
        back into the database file themselves (SQLite's auto-checkpoint, which also waits for
        an fsync); a thread with its own connection does it after commits, at most every `every`
        seconds, while the writer goes on. A first sync of a large mailbox spent about a quarter
        of its time in those checkpoints (bench/README.md). Other processes keep SQLite's default;
        nothing changes for durability (synchronous=NORMAL in WAL mode never fsyncs a commit), and
        if this thread stops, the WAL only grows until the next checkpoint by anyone."""
        if self._checkpointer is not None or self._memory:
            return
        self._checkpointer_stop.clear()
        self._set_autocheckpoint(False)
        thread = threading.Thread(target=self._checkpoints, args=(every,), name="sqlite-checkpoint", daemon=True)
        self._checkpointer = thread
        thread.start()

    def _set_autocheckpoint(self, on: bool) -> None:
        self._autocheckpoint = on
        with self._connections_lock:
            for _, conn in self._connections:
                conn.execute(f"PRAGMA wal_autocheckpoint = {1000 if on else 0}")  # 1000: SQLite's default

    def _checkpoints(self, every: float) -> None:
        background_thread()
        try:
            conn = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return
        try:
            while True:
                self._wrote.wait()  # an idle engine never wakes this thread
                self._wrote.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # busy or locked: the next round (or the writer's own checkpoint) does it
                if self._checkpointer_stop.wait(every):
                    return
        finally:
            conn.close()

    def stop_background_checkpoints(self) -> None:
        thread, self._checkpointer = self._checkpointer, None
        if thread is None:
            return
        self._checkpointer_stop.set()
        self._wrote.set()
        thread.join()
        self._set_autocheckpoint(True)

    def close(self) -> None:
        self.stop_background_checkpoints()
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for _, conn in connections:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()


def now() -> float:
    return time.time()


def background_thread(niceness: int = 5) -> None:
    """Lower the calling thread's CPU priority (Linux: threads have their own). The store's own
    threads (checkpoints, raw bytes, the search index) then yield the CPU to the work that
    fetches and parses mail, which is what a first sync waits for (bench/README.md)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass
def chunks(ids, size: int = 500):
    """Ids in lists of at most `size`, for `IN (...)` clauses (both backends cap their parameters)."""
    ids = list(ids)
    for start in range(0, len(ids), size):
        yield ids[start:start + size]
