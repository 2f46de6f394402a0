"""Raw message bytes (an email's whole MIME source) in files of their own, beside the workspace.

`console.db` keeps what the console shows and searches; the bytes a message arrived as are kept
beside it, keyed by their SHA-256, which the message row names (`raw_sha`):

- `console.raw.pack`: the bytes themselves, appended one after the other, never rewritten;
- `console.raw.db` (SQLite): where each one is in the pack (`packed`: sha, offset, length), and
  the bytes stored by earlier versions inside it (`raw`), which are still read.

Why files of their own: the workspace stays small (a mailbox's raw bytes are most of its size),
so the list and the timeline read fewer pages and a copy of the workspace is quick; and the
bytes are written in a thread of their own while the same pull's messages are inserted. Why an
append-only pack rather than SQLite rows: SQLite writes a blob twice (its WAL, then the database
file) and that copying cost a first email sync of 641 MB about a second of CPU
(bench/README.md).

Order makes it safe: a pull's bytes are written to the pack and flushed to disk (fdatasync)
before their index rows commit, and those before the transaction that adds the messages naming
them, so a message never names bytes that are missing. A crash in between leaves bytes that
nothing names yet (space, not harm); the next pull brings the same messages again and finds or
rewrites them (content keys make the writes idempotent). Reading checks the digest, so a pack
cut short by a crash of the machine reads as "no raw bytes", never as wrong ones. Raw bytes are
never deleted. Appends from two processes are serialised by a lock on the pack file.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import os
import sqlite3
import threading
from pathlib import Path

from console.store.db import background_thread

_IOV = 512  # buffers per writev call (the system's limit is 1024)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_path(workspace: Path) -> Path | None:
    """Where the raw index of the workspace file lives (None for an in-memory workspace)."""
    if str(workspace) == ":memory:":
        return None
    return workspace.with_name(workspace.stem + ".raw.db")


class RawFile:
    def __init__(self, workspace: Path):
        path = raw_path(workspace)
        self.path = path
        self.pack_path = path.with_suffix(".pack") if path is not None else None
        self._conn: sqlite3.Connection | None = None
        self._pack: int | None = None  # file descriptor, opened for append and read
        self._memory: dict[str, bytes] = {}  # an in-memory workspace keeps its bytes here
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
            conn.execute("""CREATE TABLE IF NOT EXISTS packed (
                sha TEXT PRIMARY KEY, offset INTEGER NOT NULL, length INTEGER NOT NULL) WITHOUT ROWID""")
            self._conn = conn
        return self._conn

    def _pack_fd(self) -> int:
        if self._pack is None:
            self._pack = os.open(self.pack_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        return self._pack

    def put(self, blobs: dict[str, bytes]) -> None:
        """Store {sha: bytes}, durably, before returning (bytes already stored are left alone)."""
        if not blobs:
            return
        with self._lock:
            conn = self._open()
            if self.pack_path is None:
                self._memory.update(blobs)
                return
            fd = self._pack_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                have = self._stored(conn, list(blobs), os.fstat(fd).st_size)
                new = [(sha, data) for sha, data in blobs.items() if sha not in have]
                if not new:
                    return
                offset = os.lseek(fd, 0, os.SEEK_END)
                rows = []
                for sha, data in new:
                    rows.append((sha, offset, len(data)))
                    offset += len(data)
                for start in range(0, len(new), _IOV):
                    _write_all(fd, [data for _, data in new[start:start + _IOV]])
                os.fdatasync(fd)  # on disk before anything names them
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany("INSERT OR REPLACE INTO packed (sha, offset, length) VALUES (?, ?, ?)", rows)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _stored(self, conn: sqlite3.Connection, shas: list[str], size: int) -> set[str]:
        """Which of `shas` are stored already (bytes past the end of the pack are not: a pack
        restored from an older copy, or cut short)."""
        found: set[str] = set()
        for start in range(0, len(shas), 500):
            chunk = shas[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in conn.execute(
                f"""SELECT sha FROM packed WHERE sha IN ({marks}) AND offset + length <= ?
                    UNION SELECT sha FROM raw WHERE sha IN ({marks})""", (*chunk, size, *chunk)))
        return found

    def put_soon(self, blobs: dict[str, bytes]) -> concurrent.futures.Future:
        """`put` in this file's own thread; wait for the future before committing what names them."""
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raw-writer",
                                                                 initializer=background_thread)
        return self._writer.submit(self.put, blobs)

    def get(self, sha: str) -> bytes | None:
        with self._lock:
            if sha in self._memory:
                return self._memory[sha]
            conn = self._open()
            where = conn.execute("SELECT offset, length FROM packed WHERE sha = ?", (sha,)).fetchone()
            if where is not None and self.pack_path is not None and self.pack_path.exists():
                data = os.pread(self._pack_fd(), where[1], where[0])
                if digest(data) == sha:
                    return data
            row = conn.execute("SELECT data FROM raw WHERE sha = ?", (sha,)).fetchone()
        return bytes(row[0]) if row else None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._pack is not None:
                os.close(self._pack)
                self._pack = None


def _write_all(fd: int, buffers: list[bytes]) -> None:
    """writev until every byte is written (a write may be short)."""
    views = [memoryview(b) for b in buffers if b]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]
