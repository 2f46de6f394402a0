"""Search over every message: the query grammar, and the SQLite backend that runs it.

Grammar (`compile_search`): free words, each matched as a whole word except the last, which is a
prefix (search as you type); `"two words"` is a phrase; filters `from:` (a substring of the
customer's name, an address or a display name), `channel:`, `tag:`, `status:` (open, waiting,
snoozed, done), `before:DAY` (sent before that day began) and `after:DAY` (sent after that day
ended), days as 2026-11-23 in local time. User text never becomes FTS syntax. A query with
nothing in it finds nothing.

Result: the first `limit` hits, newest first (by the millisecond a message was sent, ties by
arrival), one per conversation (its newest matching message), each with the line that matched.
Another backend (PostgreSQL: tsvector with the `simple` configuration and GIN) implements
`SearchBackend` for the same `SearchQuery`; tests/store/search_corpus.py is the query corpus
both must answer alike.

How the SQLite backend stays fast at a million messages: matches are read in an order the
index already has, newest first (searchindex.py: the FTS rowid is the message's time), and
reading stops at the limit; nothing sorts all matches. The last word is spelled out as the words
of the index it begins (`cake` -> `cake OR cakes`), which FTS5 reads lazily, where `cake*` would
gather every document of every such word first. Filters are checked on each match as it is
read, in windows of time that double, so a selective filter never makes one step read
everything. When `from:` or `tag:` leaves few messages, those messages, newest first, are a
second way to the same answer; each turn goes to the way expected to finish first, and the first
to finish answers. A search can be cancelled: `should_stop` is polled while SQLite works (a
progress handler) and between steps, and `SearchCancelled` is raised.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from console.store.db import Database
from console.store.searchindex import SearchIndex, position, words_of

STATUSES = ("open", "waiting", "snoozed", "done")
FILTERS = ("from", "channel", "tag", "status", "before", "after")
FIRST_STEP = 16  # rows a way reads in its first turn (more than the hits it lacks), doubling each turn
STEP = 256  # candidates checked for the words per turn when reading customer first
FEW_MESSAGES = 5000  # filtered customers with at most this many messages (x4 without words) are also
# read customer first
EXPANSION = 1024  # a last word beginning at most this many words of the index is spelled out
_LAST = (1 << 63) - 1
_PLAIN = re.compile(r"[A-Za-z0-9]+")


@dataclass
class SearchHit:
    customer_id: int
    conversation_id: int
    message_id: int
    name: str
    channel: str
    status: str
    sent_at: float
    line: str  # the matching line of the message


class SearchSyntaxError(ValueError):
    """A search filter that cannot be understood; the message says which and why."""


class SearchCancelled(Exception):
    """The search was stopped by its caller (`should_stop` returned True)."""


@dataclass(frozen=True)
class SearchQuery:
    words: tuple[str, ...] = ()
    sender: str = ""  # from:
    channel: str = ""
    tag: str = ""
    status: str = ""
    before: float | None = None  # sent_at < before
    after: float | None = None  # sent_at >= after

    @property
    def empty(self) -> bool:
        return not (self.words or self.sender or self.channel or self.tag or self.status
                    or self.before is not None or self.after is not None)

    def match_expression(self) -> str:
        """The FTS5 MATCH string: each word a quoted string, the last one a prefix."""
        terms = ['"' + w.replace('"', '""') + '"' for w in self.words]
        terms[-1] += "*"
        return " ".join(terms)


class SearchBackend(Protocol):
    def run(self, query: SearchQuery, limit: int, should_stop: Callable[[], bool] | None) -> list[SearchHit]:
        ...


def parse_search(query: str) -> tuple[list[str], dict[str, str]]:
    """Free words and `key:value` filters (from, channel, tag, status, before, after)."""
    words, filters = [], {}
    for token in re.findall(r'(\w+:"[^"]*"|"[^"]*"|\S+)', query):
        key, sep, value = token.partition(":")
        if sep and key in FILTERS and value:
            filters[key] = value.strip('"')
        else:
            words.append(token.strip('"'))
    return [w for w in words if w], filters


def compile_search(text: str) -> SearchQuery:
    """The query for `text`; raises SearchSyntaxError for a filter it cannot understand."""
    words, filters = parse_search(text)
    status = filters.get("status", "").lower()
    if status and status not in STATUSES:
        raise SearchSyntaxError(f"status: expects open, waiting, snoozed or done, got '{filters['status']}'")
    return SearchQuery(
        words=tuple(words), sender=filters.get("from", "").lower(), channel=filters.get("channel", "").lower(),
        tag=filters.get("tag", "").lower().lstrip("#"), status=status,
        before=_day(filters["before"], "before") if "before" in filters else None,
        after=_day(filters["after"], "after") + 86400 if "after" in filters else None)


def _day(value: str, key: str) -> float:
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").timestamp()
    except ValueError:
        raise SearchSyntaxError(f"{key}: expects a date like 2026-11-23, got '{value}'") from None


def matching_line(text: str, words: list[str]) -> str:
    """The first line of `text` holding one of `words` (case-insensitive), else the first line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lowered = [w.lower() for w in words]
    for line in lines:
        low = line.lower()
        if any(w in low for w in lowered):
            return line
    return lines[0] if lines else ""


class SearchMixin:
    db: Database
    index: SearchIndex
    searcher: SearchBackend  # SqliteSearch, or console/store/pgsearch.py's PgSearch

    def search(self, query: str, limit: int = 50, should_stop: Callable[[], bool] | None = None) -> list[SearchHit]:
        """Messages matching `query` (see this module's docstring), newest first, one hit per
        conversation. Raises SearchSyntaxError for a filter it cannot read, SearchCancelled when
        `should_stop` returns True before it is done."""
        return self.searcher.run(compile_search(query), limit, should_stop)


# ---- the SQLite backend ------------------------------------------------------------------------

class SqliteSearch:
    def __init__(self, db: Database, index: SearchIndex):
        self.db = db
        self.index = index

    def run(self, query: SearchQuery, limit: int, should_stop: Callable[[], bool] | None = None) -> list[SearchHit]:
        if query.empty or limit <= 0:
            return []
        stopped: list[bool] = []

        def stop() -> bool:
            if not stopped and should_stop is not None and should_stop():
                stopped.append(True)
            return bool(stopped)

        self.index.settle()
        conn = self.index.reader
        with self.index.reader_lock:
            conn.execute("BEGIN")  # one snapshot of the workspace and the index for every query below
            if should_stop is not None:
                conn.set_progress_handler(lambda: 1 if stop() else 0, 4000)
            try:
                found = self._find(conn, query, limit, stop)
                return self._hits(conn, found, list(query.words))
            except sqlite3.OperationalError:
                if stopped:  # SQLite was interrupted by the progress handler
                    raise SearchCancelled("search stopped") from None
                raise
            finally:
                if should_stop is not None:
                    conn.set_progress_handler(None, 0)
                conn.execute("COMMIT")

    def _find(self, conn: sqlite3.Connection, q: SearchQuery, limit: int, stop: Callable[[], bool]) -> list[int]:
        """Message ids of the hits, newest first."""
        low = position(q.after) if q.after is not None else 0
        high = position(q.before) - 1 if q.before is not None else _LAST
        if low > high:
            return []
        # The customers of from: and tag:, as subqueries SQLite evaluates once (a set of all
        # customers for from:example would cost more to pass in than the search itself).
        customers: list[tuple[str, tuple]] = []
        if q.sender:
            customers.append(self._senders(q.sender))
        if q.tag:
            customers.append(("SELECT customer_id FROM tag WHERE name = ?", (q.tag,)))
        if any(conn.execute(sql + " LIMIT 1", args).fetchone() is None for sql, args in customers):
            return []
        match = self._expression(conn, q.words) if q.words else None
        if match is not None and match.text is None:
            return []  # the last word begins no word the index has
        where, params = [], []
        if q.channel:
            where.append("d.channel = ?")
            params.append(q.channel)
        for sql, args in customers:
            where.append(f"d.customer_id IN ({sql})")
            params.extend(args)
        if q.status:  # the one filter the index does not keep (it changes with every reply); checked last
            where.append("EXISTS (SELECT 1 FROM conversation c WHERE c.id = d.conversation_id AND c.status = ?)")
            params.append(q.status)
        filters = "".join(" AND " + w for w in where)
        if match is not None:
            ways = [_Reader(limit, self._by_words(conn, match, low, high, filters, params, limit))]
        else:
            ways = [_Reader(limit, self._by_time(conn, low, high, filters, params, limit))]
        # A second way when from: or tag: leave few messages: theirs, newest first.
        few = FEW_MESSAGES if match is not None else FEW_MESSAGES * 4  # no words: nothing to look up
        if customers and (match is None or match.lazy):
            sql = f"""SELECT d.pos, d.message_id, d.conversation_id FROM search.doc d INDEXED BY doc_customer
                      WHERE d.pos BETWEEN ? AND ?{filters}"""
            args = [low, high, *params]
            count = conn.execute(f"SELECT count(*) FROM ({sql} LIMIT ?)", (*args, few + 1)).fetchone()[0]
            if count <= few:
                ways.append(_Reader(limit, self._by_candidates(conn, match, sql, args, count)))
        # Each turn goes to the way expected to finish soonest (from the time it has spent and
        # the share of its reading done); a way not yet measured goes first. The first to finish
        # answers: both give the same hits.
        while True:
            if stop():
                raise SearchCancelled("search stopped")
            way = min(ways, key=_Reader.remaining)
            started = time.perf_counter()
            if way.step():
                return way.hits
            way.spent += time.perf_counter() - started

    def _expression(self, conn: sqlite3.Connection, words: tuple[str, ...]) -> "_Match":
        """The MATCH expression for the words: each one quoted; the last, a prefix, spelled out
        as the words of the index it begins (FTS5 reads an OR of words lazily, newest first: 1 ms
        for 128 words, 12 ms for 1,000, at 1M messages)."""
        quoted = ['"' + w.replace('"', '""') + '"' for w in words]
        last = words[-1]
        # ASCII letters and digits are one word of the tokenizer, folded to lower case; anything
        # else is cut by the tokenizer itself.
        tokens = [last.lower()] if _PLAIN.fullmatch(last) else words_of(conn, last)
        if len(tokens) == 1:
            term = tokens[0]
            found = [r[0] for r in conn.execute(
                "SELECT term FROM search.vocab WHERE term >= ? AND term < ? ORDER BY term LIMIT ?",
                (term, term + "\U0010ffff", EXPANSION + 1))]
            if not found:
                return _Match(None, True)
            if len(found) <= EXPANSION:
                last = "(" + " OR ".join('"' + t.replace('"', '""') + '"' for t in found) + ")"
                return _Match(" AND ".join([*quoted[:-1], last]), True)
            # A prefix of very many words (one or two letters): FTS5 gathers it in full.
            return _Match(" ".join([*quoted[:-1], quoted[-1] + "*"]), False)
        return _Match(" ".join([*quoted[:-1], quoted[-1] + "*"]), False)

    def _senders(self, text: str) -> tuple[str, tuple]:
        """Customers whose name, an address or a display name contains `text` (a subquery)."""
        if len(text) >= 3:  # the trigram index finds any substring of three characters or more
            return "SELECT rowid FROM search.who WHERE who MATCH ?", ('"' + text.replace('"', '""') + '"',)
        like = "%" + re.sub(r"([%_\\])", r"\\\1", text) + "%"
        return "SELECT rowid FROM search.who WHERE text LIKE ? ESCAPE '\\'", (like,)

    # CROSS JOIN keeps the table written first as the outer loop: matches are read in the
    # index's order (newest first) and nothing is sorted.
    def _by_words(self, conn, match: "_Match", low: int, high: int, filters: str, params: list, limit: int):
        """(position, message id, conversation id) of messages with the words, newest first, in
        windows of time that double: a turn never reads more than its window, however few of
        the matches pass the filters. An expression FTS5 must gather in full is read in one."""
        sql = f"""SELECT f.rowid, d.message_id, d.conversation_id
                  FROM search.message_fts f CROSS JOIN search.doc d ON d.pos = f.rowid
                  WHERE f.message_fts MATCH ? AND f.rowid BETWEEN ? AND ?{filters} ORDER BY f.rowid DESC"""
        windows = list(_windows(conn, low, high, match.lazy))
        for top, bottom in windows:
            done = (windows[0][0] - bottom + 1) / (windows[0][0] - windows[-1][1] + 1)
            for rows in _chunks(conn.execute(sql, (match.text, bottom, top, *params)), limit):
                yield rows, done

    def _by_time(self, conn, low: int, high: int, filters: str, params: list, limit: int):
        """Every indexed message, newest first (a query of filters only). NOT INDEXED: in
        position order, not through the customer index and a sort."""
        cursor = conn.execute(
            f"""SELECT d.pos, d.message_id, d.conversation_id FROM search.doc d NOT INDEXED
                WHERE d.pos BETWEEN ? AND ?{filters} ORDER BY d.pos DESC""", (low, high, *params))
        for rows in _chunks(cursor, limit):
            yield rows, 0.0  # unknown: it has to be given turns to know

    def _by_candidates(self, conn, match: "_Match | None", sql: str, args: list, count: int):
        """Few candidates (position, message id, conversation id), newest first, checked for
        the words a chunk at a time (FTS5 looks each one up)."""
        cursor = conn.execute(sql + " ORDER BY d.pos DESC", args)
        seen = 0
        while chunk := cursor.fetchmany(STEP):
            seen += len(chunk)
            if match is not None:
                marks = ",".join("?" * len(chunk))
                matching = {r[0] for r in conn.execute(
                    f"SELECT rowid FROM search.message_fts WHERE message_fts MATCH ? AND rowid IN ({marks})",
                    (match.text, *[r[0] for r in chunk]))}
                chunk = [r for r in chunk if r[0] in matching]
            yield chunk, min(1.0, seen / max(1, count))

    def _hits(self, conn: sqlite3.Connection, ids: list[int], words: list[str]) -> list[SearchHit]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = {r["id"]: r for r in conn.execute(
            f"""SELECT m.id, m.conversation_id, m.channel, m.sent_at, m.subject, m.body, c.customer_id, c.status,
                       cu.name
                FROM message m JOIN conversation c ON c.id = m.conversation_id
                JOIN customer cu ON cu.id = c.customer_id WHERE m.id IN ({marks})""", ids)}
        return [SearchHit(r["customer_id"], r["conversation_id"], r["id"], r["name"], r["channel"], r["status"],
                          r["sent_at"], matching_line(r["subject"] + "\n" + r["body"], words))
                for r in (rows.get(i) for i in ids) if r is not None]


@dataclass(frozen=True)
class _Match:
    text: str | None  # None: nothing can match
    lazy: bool  # FTS5 reads it match by match (not gathering a prefix's every document first)


def _windows(conn: sqlite3.Connection, low: int, high: int, lazy: bool):
    """(top, bottom) position ranges from `high` down to `low`: 1/64 of the messages' time span
    first, each next one twice as long; the whole range at once when not `lazy`."""
    # Two subqueries: min() and max() in one select would read the whole table.
    first, last = conn.execute("SELECT (SELECT min(pos) FROM search.doc), (SELECT max(pos) FROM search.doc)").fetchone()
    if first is None:
        return
    top, low = min(high, last), max(low, first)
    span = max(1, (top - low) // 64) if lazy else top - low + 1
    while top >= low:
        bottom = max(low, top - span + 1)
        yield top, bottom
        top, span = bottom - 1, span * 2


def _chunks(cursor: sqlite3.Cursor, limit: int):
    """The cursor's rows in growing chunks: a selective filter makes every row fetched cost many
    rows read, so the first chunk is about what the hits need."""
    size = max(FIRST_STEP, limit + limit // 4)
    while rows := cursor.fetchmany(size):
        yield rows
        size *= 2


class _Reader:
    """One way to the answer: rows (position, message id, conversation id) newest first, kept
    when their conversation has no hit yet, until `limit` hits or the end."""

    def __init__(self, limit: int, chunks):
        self.limit = limit
        self.chunks = chunks
        self.hits: list[int] = []
        self.spent = 0.0  # seconds of its turns so far
        self.done = 0.0  # the share of what it has to read that it has read
        self._conversations: set[int] = set()

    def remaining(self) -> float:
        """Seconds this way still needs, as far as its turns so far tell (0 before any)."""
        if self.done <= 0.0:
            return 0.0 if self.spent == 0.0 else self.spent * 1000
        return self.spent * (1.0 - self.done) / self.done

    def step(self) -> bool:
        """Read one chunk; True when this way has the answer."""
        item = next(self.chunks, None)
        if item is None:
            return True
        chunk, self.done = item
        for _, message_id, conversation_id in chunk:
            if conversation_id in self._conversations:
                continue
            self._conversations.add(conversation_id)
            self.hits.append(message_id)
            if len(self.hits) == self.limit:
                return True
        return False
