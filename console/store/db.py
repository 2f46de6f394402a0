"""Opening a workspace's SQLite file: pragmas, migrations and write transactions."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from console.store.schema import MIGRATIONS, SCHEMA_VERSION


class StoreError(Exception):
    """The workspace file cannot be used; the message says why and what to do."""


class Database:
    """One connection to the workspace, usable from any thread (calls are serialised).

    Writes go through `write()`, which opens the transaction with BEGIN IMMEDIATE: in WAL mode a
    deferred transaction that reads and then writes fails at once under contention.
    """

    def __init__(self, path: Path | str, readonly: bool = False):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(
                str(path), timeout=10.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the workspace {path}: {exc}") from None
        self.conn.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        self._checkpointer: threading.Thread | None = None
        self._checkpointer_stop = threading.Event()
        self._wrote = threading.Event()  # set by each commit while the checkpointer runs
        # Called after each commit of `write()` (the search index wakes its indexer with it).
        self.after_commit: list[Callable[[], None]] = []
        try:
            self.conn.execute("PRAGMA busy_timeout = 10000")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(f"{path} is not a usable console workspace ({exc})") from None

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

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
                if self._checkpointer is not None:
                    self._wrote.set()
                for hook in self.after_commit:
                    hook()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several queries."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self.conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | list | dict = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | list | dict = ()) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute(sql, params).fetchone()

    def data_version(self) -> int:
        """Changes when another connection commits: a cheap way to notice other processes."""
        with self.lock:
            return self.conn.execute("PRAGMA data_version").fetchone()[0]

    # ---- checkpoints away from the writer ------------------------------------------------------
    def checkpoint_in_background(self, every: float = 0.5) -> None:
        """For the process that writes the most (the sync engine): its commits stop copying the WAL
        back into the database file themselves (SQLite's auto-checkpoint, which also waits for
        an fsync); a thread with its own connection does it after commits, at most every `every`
        seconds, while the writer goes on. A first sync of a large mailbox spent about a quarter
        of its time in those checkpoints (bench/README.md). Other processes keep SQLite's default; nothing changes for
        durability (synchronous=NORMAL in WAL mode never fsyncs a commit), and if this thread
        stops, the WAL only grows until the next checkpoint by anyone."""
        if self._checkpointer is not None or str(self.path) == ":memory:":
            return
        self._checkpointer_stop.clear()
        with self.lock:
            self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        thread = threading.Thread(target=self._checkpoints, args=(every,), name="sqlite-checkpoint", daemon=True)
        self._checkpointer = thread
        thread.start()

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
        with self.lock:
            self.conn.execute("PRAGMA wal_autocheckpoint = 1000")  # SQLite's default

    def close(self) -> None:
        self.stop_background_checkpoints()
        with self.lock:
            self.conn.close()


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
