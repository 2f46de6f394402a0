"""Raw message bytes (an email's whole MIME source) in a SQLite file of their own, beside the workspace.

`console.db` keeps what the console shows and searches; `console.raw.db` keeps the bytes a
message arrived as, keyed by their SHA-256, which the message row names (`raw_sha`). Two files
rather than one:

- the workspace stays small (a mailbox's raw bytes are most of its size), so the list and the
  timeline read fewer pages and a copy of the workspace is quick;
- raw bytes are written through their own connection in their own thread, while the same pull's
  messages are inserted into the workspace: a first email sync spent a quarter of the store's time
  writing raw bytes (bench/README.md).

Order makes it safe: the raw bytes of a pull are committed before the transaction that adds its
messages, so a message never names bytes that are missing. A crash in between leaves bytes that
no message names yet; the next pull, which brings the same messages again, finds them there
(content keys make the writes idempotent). Raw bytes are never deleted.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import sqlite3
import threading
from pathlib import Path


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_path(workspace: Path) -> Path | None:
    """Where the raw file of the workspace file lives (None for an in-memory workspace)."""
    if str(workspace) == ":memory:":
        return None
    return workspace.with_name(workspace.stem + ".raw.db")


class RawFile:
    def __init__(self, workspace: Path):
        path = raw_path(workspace)
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(str(self.path) if self.path else ":memory:", timeout=10.0,
                                   isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS raw (sha TEXT PRIMARY KEY, data BLOB NOT NULL)")
            self._conn = conn
        return self._conn

    def put(self, blobs: dict[str, bytes]) -> None:
        """Store {sha: bytes} in one transaction (bytes already stored are left alone)."""
        if not blobs:
            return
        with self._lock:
            conn = self._open()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR IGNORE INTO raw (sha, data) VALUES (?, ?)", blobs.items())
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def put_soon(self, blobs: dict[str, bytes]) -> concurrent.futures.Future:
        """`put` in this file's own thread; wait for the future before committing what names them."""
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raw-writer")
        return self._writer.submit(self.put, blobs)

    def get(self, sha: str) -> bytes | None:
        with self._lock:
            row = self._open().execute("SELECT data FROM raw WHERE sha = ?", (sha,)).fetchone()
        return bytes(row[0]) if row else None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
