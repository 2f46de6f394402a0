"""The full-text index: a file of its own beside the workspace, kept up to date by an indexer thread.

`console.search.db` holds what `/` searches and nothing else, all of it derived from the
workspace, so it can always be rebuilt:

- `message_fts` (FTS5, contentless): each message's subject and the first 8,000 characters of
  its body. Its rowid is the message's
  *position*, `(sent_at in ms) << 20 | n`, so reading matches by descending rowid reads them
  newest first and a query stops after its first hits instead of sorting every match (message
  ids follow insertion, not time: a mailbox's history arrives after newer chat messages).
- `doc`: position -> message, with its conversation, customer and channel, so filtering a match
  never reads the workspace's large message rows (a random read each).
- `vocab`: every word the index holds. A search ending in "cake" asks for `cake OR cakes`, which
  FTS5 reads lazily, newest first; the prefix query `cake*` gathers every document of every word
  starting with "cake" before its first hit (about 10 ms at 1M messages; 40 ms for `th*`), and
  FTS5's prefix indexes, which would avoid that for short prefixes, cost more to build than the
  rest of the index together (145 µs a mail, bench/README.md) and were not faster here.
- `who` (FTS5, trigram): per customer, their name, addresses and display names, for `from:`.
- `state`: the high-water mark over the workspace's `search_queue`, the id of the workspace this
  index belongs to, and a rebuild in progress.

Why a file of its own, written by its own connection in its own thread: SQLite has one writer
per file, and indexing inside the message transaction cost a first email sync a third of the
store's time; written beside it, the index costs less CPU (large transactions) and none of it on
the store's path (bench/README.md).

Never stale forever: triggers add a row to the workspace's `search_queue` in the same
transaction as every message or customer change (with the text as it was, for a change, which a
contentless index needs to take the old words out). The indexer works through the queue in
order and moves its high-water mark in the same transaction as the index rows; each `doc`
remembers up to which queue row its text is current, so a row it has already seen is skipped.
A crash at any point only repeats work. A missing, foreign or older index file is rebuilt from
the workspace (resumably). Searchable promptly: every commit of the store wakes the indexer, and
a search first waits briefly for what is pending (`settle`). When idle, the indexer merges the
index's segments: every segment is one more lookup for each word of a search.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import sqlite3
import threading
import time
from pathlib import Path

from console.store.db import background_thread

log = logging.getLogger("console.store.search")

INDEX_VERSION = 2  # a file of another version is rebuilt (2: no FTS5 prefix indexes)
BODY_INDEXED = 8000  # characters of a body that are indexed (a long mail's tail is mostly quotes)
ROUND = 2000  # queue rows per indexing transaction
POSITION_BITS = 20  # messages within one millisecond
_LAST_MS = (1 << (63 - POSITION_BITS)) - 1  # year 2248: later dates share the last millisecond
MERGE_PAGES = 200  # leaf pages merged per idle step (a close waits for one step at most)
QUIET = 5.0  # seconds without a commit before the indexer merges segments

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value)",
    """CREATE TABLE IF NOT EXISTS doc (
        pos INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL UNIQUE,
        seq INTEGER NOT NULL,  -- the queue row up to which the indexed text is current
        conversation_id INTEGER NOT NULL,
        customer_id INTEGER NOT NULL,
        channel TEXT NOT NULL
    )""",
    # A filtered customer's messages, read from the index alone (customer first, search.py).
    "CREATE INDEX IF NOT EXISTS doc_customer ON doc (customer_id, channel, pos, conversation_id, message_id)",
    "CREATE INDEX IF NOT EXISTS doc_conversation ON doc (conversation_id)",  # a merge changes its customer
    """CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5(
        subject, body, content='', tokenize='unicode61 remove_diacritics 2')""",
    "CREATE TABLE IF NOT EXISTS vocab (term TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE VIRTUAL TABLE IF NOT EXISTS who USING fts5(text, tokenize='trigram')",
]
# Scratch tables of a connection: the words of a batch of texts, as the index itself cuts them.
_SCRATCH = [
    """CREATE VIRTUAL TABLE IF NOT EXISTS temp.words USING fts5(
        text, content='', detail=none, tokenize='unicode61 remove_diacritics 2')""",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.words_row USING fts5vocab(temp, words, row)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.words_at USING fts5vocab(temp, words, instance)",
]


def index_path(workspace: Path) -> Path | None:
    """Where the index file of the workspace file lives (None for an in-memory workspace)."""
    if str(workspace) == ":memory:":
        return None
    return workspace.with_name(workspace.stem + ".search.db")


def position(sent_at: float) -> int:
    """The first position of the millisecond `sent_at` falls in."""
    ms = min(_LAST_MS, max(0, math.floor(sent_at * 1000))) if math.isfinite(sent_at) else 0
    return ms << POSITION_BITS


def words_of(conn: sqlite3.Connection, text: str) -> list[str]:
    """The index's words of `text`, in order (the tokenizer's folding: case, accents)."""
    conn.execute("INSERT INTO temp.words (words) VALUES ('delete-all')")
    conn.execute("INSERT INTO temp.words (rowid, text) VALUES (1, ?)", (text,))
    return [r[0] for r in conn.execute("SELECT term FROM temp.words_at ORDER BY offset")]


class SearchIndex:
    """The index file and its indexer, with two connections to the workspace that have the
    index attached as `search`: `conn`, the indexer's (used from its thread), and `reader`, for
    searches. Neither ever writes the workspace, and the store's own connection never attaches
    the index: a write transaction there would lock the index file too. For an in-memory
    workspace both are the store's connection and indexing happens in the caller's thread."""

    def __init__(self, workspace: Path, shared: sqlite3.Connection | None = None,
                 shared_lock: threading.RLock | None = None):
        self.workspace = workspace
        self.path = index_path(workspace)
        self.threaded = shared is None
        if shared is not None:
            self.conn = self.reader = shared
            self._lock = self.reader_lock = shared_lock or threading.RLock()
            attach(shared, None)
        else:
            self.conn, self.reader = self._connect(), self._connect()
            # Searches read matches in time order, i.e. all over both files: mapped into memory
            # they cost no system call each.
            for schema in ("main", "search"):
                self.reader.execute(f"PRAGMA {schema}.mmap_size = {1 << 30}")
                self.reader.execute(f"PRAGMA {schema}.cache_size = -32768")
            self._lock, self.reader_lock = threading.RLock(), threading.RLock()
        row = self.conn.execute("SELECT value FROM search.state WHERE key = 'hwm'").fetchone()
        self._hwm = int(row[0]) if row and row[0] is not None else 0
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._claim: int | None = None  # the lock file that makes one process the indexer

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.workspace), timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 10000")
        attach(conn, self.path)
        return conn

    def hwm(self) -> int:
        """How far the index has read the workspace's queue (rows up to here may be cleared).
        Kept in memory: the store asks before each pull's transaction, and must never wait for
        an indexing round (another process's indexer only makes it lag, which clears less)."""
        return self._hwm

    # ---- the indexer thread -------------------------------------------------------------------
    def wake(self) -> None:
        """Something may be pending (called after each commit of the store)."""
        if not self.threaded:
            return
        self._idle.clear()
        self._wake.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="search-indexer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        background_thread(10)  # indexing catches up when fetching, parsing and storing pause
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            try:
                if not self._work(self.index_pending):
                    continue
                self._idle.set()
                # Merging waits for a quiet moment: during a first sync it would only take CPU
                # from the sync, and the next batch adds segments again.
                if self._wake.wait(QUIET) or self._stop.is_set():
                    continue
                self._work(self.merge_step)
            except sqlite3.Error as exc:  # busy beyond the timeout, or a damaged file: try again later
                log.warning("search index: %s", exc)
                self._stop.wait(1.0)
                self._wake.set()

    def _work(self, step) -> bool:
        """Run `step` until it has nothing left to do, as the one process indexing this
        workspace; False (and a retry soon) when another process is at it: the UI and the sync
        engine both have a store open, and two indexers would only take turns at the file."""
        if self._claim is None:
            self._claim = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._stop.wait(0.5)
            self._wake.set()
            return False
        try:
            while not self._stop.is_set() and not (step is self.merge_step and self._wake.is_set()) and step():
                pass
        finally:
            fcntl.flock(self._claim, fcntl.LOCK_UN)
        return True

    def settle(self, timeout: float = 0.25) -> bool:
        """Wait up to `timeout` seconds for what is pending to be indexed; True when nothing is
        (after a longer wait, during a first sync or a rebuild, a search finds what is indexed)."""
        if not self.threaded:
            with self._lock:
                while self.index_pending():
                    pass
            return True
        if not self.pending():
            return True
        self.wake()
        deadline = time.monotonic() + timeout
        while True:  # this process's indexer, or another's, may be the one catching up
            left = deadline - time.monotonic()
            if left <= 0:
                return not self.pending()
            if self._idle.wait(min(left, 0.02)) or not self.pending():
                return not self.pending()

    def pending(self) -> int:
        """How many queue rows wait to be indexed (ROUND and more for a rebuild): 0 when none."""
        with self.reader_lock:
            state = dict(self.reader.execute("SELECT key, value FROM search.state").fetchall())
            queued, issued, workspace = self.reader.execute(
                """SELECT (SELECT coalesce(max(seq), 0) FROM main.search_queue),
                          (SELECT coalesce(max(seq), 0) FROM main.sqlite_sequence WHERE name = 'search_queue'),
                          (SELECT value FROM main.meta WHERE key = 'search_index')""").fetchone()
        if _stale(state, workspace, issued) or "rebuild_after" in state:
            return ROUND
        return max(0, queued - int(state.get("hwm") or 0))

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.threaded:
            self.conn.close()
            self.reader.close()
        if self._claim is not None:
            os.close(self._claim)
            self._claim = None

    # ---- indexing -----------------------------------------------------------------------------
    def index_pending(self) -> int:
        """One transaction's worth of indexing; returns how many items it handled (0: caught up)."""
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN")  # deferred: the workspace is only read, never locked for writing
            try:
                done = self._round(conn)
                hwm = conn.execute("SELECT value FROM search.state WHERE key = 'hwm'").fetchone()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._hwm = int(hwm[0]) if hwm and hwm[0] is not None else 0
            return done

    def merge_step(self) -> bool:
        """Merge some of the index's segments; False when there is nothing left to merge."""
        with self._lock:
            before = self.conn.total_changes
            self.conn.execute("INSERT INTO search.message_fts (message_fts, rank) VALUES ('merge', ?)", (MERGE_PAGES,))
            return self.conn.total_changes - before >= 2  # FTS5's sign that it did some work

    def _round(self, conn: sqlite3.Connection) -> int:
        state = dict(conn.execute("SELECT key, value FROM search.state").fetchall())
        workspace = conn.execute("SELECT value FROM main.meta WHERE key = 'search_index'").fetchone()[0]
        issued = conn.execute("SELECT coalesce(max(seq), 0) FROM main.sqlite_sequence "
                              "WHERE name = 'search_queue'").fetchone()[0]
        if _stale(state, workspace, issued):
            self._start_rebuild(conn, workspace)
            return 1
        if "rebuild_after" in state:
            return self._rebuild_step(conn, int(state["rebuild_after"]))
        hwm = int(state.get("hwm") or 0)
        rows = conn.execute("""SELECT seq, message_id, customer_id, conversation_id, changed, old_subject, old_body
                               FROM main.search_queue WHERE seq > ? ORDER BY seq LIMIT ?""", (hwm, ROUND)).fetchall()
        if not rows:
            return 0
        changes: dict[int, list] = {}  # message id -> its queue rows of this round, in order
        for row in rows:
            if row["message_id"] is not None:
                changes.setdefault(row["message_id"], []).append(row)
        self._index_messages(conn, changes)
        self._index_customers(conn, list(dict.fromkeys(r["customer_id"] for r in rows if r["customer_id"] is not None)))
        for conversation_id in dict.fromkeys(r["conversation_id"] for r in rows if r["conversation_id"] is not None):
            conn.execute("""UPDATE search.doc SET customer_id = coalesce(
                                (SELECT customer_id FROM main.conversation WHERE id = ?1), customer_id)
                            WHERE conversation_id = ?1""", (conversation_id,))  # merged or split
        conn.execute("UPDATE search.state SET value = ? WHERE key = 'hwm'", (rows[-1]["seq"],))
        return len(rows)

    def _start_rebuild(self, conn: sqlite3.Connection, workspace: str) -> None:
        """Start over: everything the workspace holds is indexed again, from message id 0 on; what
        changes meanwhile comes through the queue after the current end of it."""
        conn.execute("DELETE FROM search.doc")
        conn.execute("INSERT INTO search.message_fts (message_fts) VALUES ('delete-all')")
        conn.execute("DELETE FROM search.vocab")
        conn.execute("DELETE FROM search.who")
        conn.execute("DELETE FROM search.state")
        end = conn.execute("SELECT coalesce(max(seq), 0) FROM main.search_queue").fetchone()[0]
        conn.executemany("INSERT INTO search.state (key, value) VALUES (?, ?)", [
            ("workspace", workspace), ("version", INDEX_VERSION), ("hwm", end), ("rebuild_after", 0)])
        log.info("search index: rebuilding from the workspace")

    def _rebuild_step(self, conn: sqlite3.Connection, after: int) -> int:
        ids = [r[0] for r in conn.execute("SELECT id FROM main.message WHERE id > ? ORDER BY id LIMIT ?",
                                          (after, ROUND))]
        if ids:
            self._index_messages(conn, {message_id: [] for message_id in ids})
            conn.execute("UPDATE search.state SET value = ? WHERE key = 'rebuild_after'", (ids[-1],))
            return len(ids)
        self._index_customers(conn, [r[0] for r in conn.execute("SELECT id FROM main.customer")])
        conn.execute("DELETE FROM search.state WHERE key = 'rebuild_after'")
        conn.execute("INSERT INTO search.message_fts (message_fts) VALUES ('optimize')")  # one segment to start with
        return 1

    def _index_messages(self, conn: sqlite3.Connection, changes: dict[int, list]) -> None:
        """Bring the index up to date for these messages; `changes` holds their queue rows."""
        if not changes:
            return
        ids = list(changes)
        current = conn.execute("SELECT coalesce(max(seq), 0) FROM main.search_queue").fetchone()[0]
        marks = ",".join("?" * len(ids))
        indexed = {r["message_id"]: r for r in conn.execute(
            f"SELECT pos, message_id, seq FROM search.doc WHERE message_id IN ({marks})", ids)}
        redo = []
        for message_id in ids:
            doc = indexed.get(message_id)
            if doc is None:
                redo.append(message_id)
                continue
            later = [row for row in changes[message_id] if row["seq"] > doc["seq"]]
            if not later:
                continue  # indexed as it is now, by an earlier round or the rebuild
            # The first change after the indexed text holds that text: take its words out.
            old = next((row for row in later if row["changed"]), None)
            if old is not None:
                conn.execute("INSERT INTO search.message_fts (message_fts, rowid, subject, body) VALUES ('delete', ?, ?, ?)",
                             (doc["pos"], old["old_subject"] or "", old["old_body"] or ""))
            conn.execute("DELETE FROM search.doc WHERE pos = ?", (doc["pos"],))
            redo.append(message_id)
        if not redo:
            return
        marks = ",".join("?" * len(redo))
        rows = conn.execute(
            f"""SELECT m.id, m.sent_at, m.subject, substr(m.body, 1, {BODY_INDEXED}), m.conversation_id, c.customer_id,
                       m.channel
                FROM main.message m JOIN main.conversation c ON c.id = m.conversation_id WHERE m.id IN ({marks})""",
            redo).fetchall()
        order = {message_id: n for n, message_id in enumerate(redo)}
        rows.sort(key=lambda r: order[r[0]])  # queue order: ties within a millisecond by arrival
        taken: dict[int, int] = {}  # first position of a millisecond -> next free position in it
        docs, texts = [], []
        for message_id, sent_at, subject, body, conversation_id, customer_id, channel in rows:
            base = position(sent_at or 0.0)
            pos = taken.get(base)
            if pos is None:
                last = conn.execute("SELECT max(pos) FROM search.doc WHERE pos BETWEEN ? AND ?",
                                    (base, base + (1 << POSITION_BITS) - 1)).fetchone()[0]
                pos = base if last is None else last + 1
            taken[base] = pos + 1
            docs.append((pos, message_id, current, conversation_id, customer_id, channel))
            texts.append((pos, subject or "", body or ""))
        conn.executemany("INSERT INTO search.doc (pos, message_id, seq, conversation_id, customer_id, channel) "
                         "VALUES (?, ?, ?, ?, ?, ?)", docs)
        conn.executemany("INSERT INTO search.message_fts (rowid, subject, body) VALUES (?, ?, ?)", texts)
        # The words these texts brought, cut by the same tokenizer (a scratch table, no positions).
        conn.execute("INSERT INTO temp.words (words) VALUES ('delete-all')")
        conn.executemany("INSERT INTO temp.words (rowid, text) VALUES (?, ?)",
                         ((pos, subject + "\n" + body) for pos, subject, body in texts))
        conn.execute("INSERT OR IGNORE INTO search.vocab (term) SELECT term FROM temp.words_row")
        conn.execute("INSERT INTO temp.words (words) VALUES ('delete-all')")

    def _index_customers(self, conn: sqlite3.Connection, ids: list[int]) -> None:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            conn.execute(f"DELETE FROM search.who WHERE rowid IN ({marks})", chunk)
            conn.execute(
                f"""INSERT INTO search.who (rowid, text)
                    SELECT c.id, c.name || char(10) || coalesce(
                        (SELECT group_concat(i.address || char(10) || i.display_name, char(10))
                         FROM main.identity i WHERE i.customer_id = c.id), '')
                    FROM main.customer c WHERE c.id IN ({marks})""", chunk)


def _stale(state: dict, workspace: str, issued: int) -> bool:
    """The index is of another workspace or version, or of a newer copy of this workspace than
    the one beside it (restored from a backup): it must be rebuilt."""
    return (state.get("workspace") != workspace or state.get("version") != INDEX_VERSION
            or int(state.get("hwm") or 0) > issued)


def attach(conn: sqlite3.Connection, path: Path | None) -> None:
    """Attach the index file to a connection to the workspace as `search` (creating it)."""
    conn.execute("ATTACH DATABASE ? AS search", (str(path) if path is not None else ":memory:",))
    if path is not None:
        conn.execute("PRAGMA search.journal_mode = WAL")
        conn.execute("PRAGMA search.synchronous = NORMAL")
    has_state = conn.execute("SELECT 1 FROM search.sqlite_master WHERE name = 'state'").fetchone()
    version = conn.execute("SELECT value FROM search.state WHERE key = 'version'").fetchone() if has_state else None
    if version is not None and version[0] != INDEX_VERSION:  # made by another version: start afresh
        for name in ("state", "doc", "message_fts", "vocab", "who"):
            conn.execute(f"DROP TABLE IF EXISTS search.{name}")
    fresh = not conn.execute("SELECT 1 FROM search.sqlite_master WHERE name = 'message_fts'").fetchone()
    for statement in _SCHEMA:
        conn.execute(statement.replace("IF NOT EXISTS ", "IF NOT EXISTS search."))
    if fresh:  # merge levels of two segments: fewer segments for each search to look into
        conn.execute("INSERT INTO search.message_fts (message_fts, rank) VALUES ('usermerge', 2)")
    for statement in _SCRATCH:
        conn.execute(statement)
