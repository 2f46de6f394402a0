"""Search on PostgreSQL: one `tsvector` per message with a GIN index, kept by an indexer thread.

The grammar is console/store/search.py's (`SearchQuery`); this is its PostgreSQL backend, and
tests/store/search_corpus.py holds both to the same answers.

**Words are cut in Python, not by PostgreSQL's parser**, with the rules of the SQLite index
(FTS5 `unicode61 remove_diacritics 2`): runs of letters and digits, lower-cased, accents
removed. PostgreSQL's own parser keeps `maria.lopez@example.com` or `3.14` as one word, and its
idea of a letter depends on the database's locale; the `simple` configuration would still fold
case only. So the indexer writes each document's words with their positions as a `tsvector`
literal (the subject first, then the first 8,000 characters of the body, two positions apart so
that a phrase never spans them), and a search builds its `tsquery` from the same cutting: each
word a lexeme (a word that cuts into several is a phrase, `<->`), the last word a prefix (`:*`).
No dictionary is involved, so the `simple` configuration's lexemes and these are the same thing.

- `search_doc`: per message its words, time (milliseconds, as the SQLite index orders by), and
  conversation, customer and channel, so filters never read the message rows.
- `search_who`: per customer, name, addresses and display names, lower-cased, with a trigram
  GIN index: `from:` is a substring match (`pg_trgm` makes `LIKE '%ko%'` an index lookup from
  three characters on).

**The indexer**: the migrations' triggers queue every change of a message, customer, identity or
conversation owner in `search_queue`, in the transaction that makes it (pgschema.py). A thread in
each process that opens the store works through the queue: recompute each named message's and
customer's document from its rows (or drop it when the row is gone), delete the queue rows, in
one transaction; order does not matter, and repeating is harmless. One indexer works at a time
(a transaction advisory lock; the others find it taken and wait to be woken again). A search
first waits briefly for what is queued (`settle`).

**Fast at a million messages**: hits are the newest matches, so a query reads matches newest
first and stops at the limit. PostgreSQL's planner chooses, from the word's frequency, between
walking the time index and checking each document (a frequent word: the first rows match) and
collecting the word's documents from the GIN index and sorting them (a rare word); a cursor
fetches in growing batches until enough conversations have a hit.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections import defaultdict
from typing import Callable

from console.store.search import SearchCancelled, SearchHit, SearchQuery, matching_line
from console.store.searchindex import BODY_INDEXED, position

log = logging.getLogger("console.store.search")

INDEX_LOCK = 0x636F6E736F6C65 + 7  # the advisory lock of the one indexer at work
ROUND = 2000  # queue rows per indexing transaction
MAX_POSITIONS = 256  # positions kept per word and document (PostgreSQL's own limit)
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The words of `text` as the index cuts them: letters and digits, lower case, no accents."""
    if not text:
        return []
    if not text.isascii():
        text = unicodedata.normalize("NFC", "".join(
            ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch)))
    return _WORD.findall(text.lower())


def document(subject: str, body: str) -> str:
    """A message's `tsvector` literal: each word with its positions (subject, a gap, body)."""
    places: dict[str, list[int]] = defaultdict(list)
    at = 0
    for part in (subject or "", (body or "")[:BODY_INDEXED]):
        for word in words(part):
            at += 1
            if at > 16383:  # PostgreSQL's last position
                break
            spots = places[word[:2000]]
            if len(spots) < MAX_POSITIONS:
                spots.append(at)
        at += 1  # the gap: a phrase never runs from the subject into the body
    return " ".join(f"'{word}':{','.join(map(str, spots))}" for word, spots in places.items())


def tsquery(query_words: tuple[str, ...]) -> str | None:
    """The `tsquery` of a search's words (None: nothing can match). Each word is a lexeme, or a
    phrase of the lexemes it cuts into; a word with no letters or digits is left out, as FTS5
    leaves out an empty phrase; the last word's last lexeme is a prefix."""
    parts = []
    for number, word in enumerate(query_words):
        lexemes = [f"'{w}'" for w in words(word)]
        if not lexemes:
            continue
        if number == len(query_words) - 1:
            lexemes[-1] += ":*"
        parts.append(lexemes[0] if len(lexemes) == 1 else "(" + " <-> ".join(lexemes) + ")")
    if not parts:
        return None
    return " & ".join(parts)


class PgSearchIndex:
    """The indexer of a PostgreSQL workspace (the SQLite one is console/store/searchindex.py)."""

    def __init__(self, db):
        self.db = db
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hwm(self) -> int:
        """Nothing for the store to clear: the indexer deletes what it has done."""
        return 0

    def wake(self) -> None:
        self._idle.clear()
        self._wake.set()
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="search-indexer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        from console.store.db import StoreError

        while not self._stop.is_set():
            self._wake.wait(timeout=2.0)  # also now and then: another process's indexer may have stopped
            self._wake.clear()
            try:
                while not self._stop.is_set():
                    done = self.index_pending()
                    if done is None:  # another process is indexing: look again soon
                        self._stop.wait(0.2)
                        self._wake.set()
                        break
                    if done == 0:
                        self._idle.set()
                        break
            except StoreError as exc:  # the server went away: try again when it is back
                log.info("search index: %s", exc)
                self._stop.wait(1.0)
            except Exception:  # noqa: BLE001 - a bad row must not stop indexing for good
                log.exception("search index: indexing failed; trying again")
                self._stop.wait(1.0)

    def pending(self) -> bool:
        return self.db.query_one("SELECT EXISTS (SELECT 1 FROM search_queue)")[0]

    def settle(self, timeout: float = 0.25) -> bool:
        """Wait up to `timeout` seconds for what is queued to be indexed; True when nothing is."""
        deadline = time.monotonic() + timeout
        while self.pending():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.wake()
            self._idle.wait(min(left, 0.05))
        return True

    def index_pending(self) -> int | None:
        """One round: how many queue rows it handled (0: none left), None if another indexer works."""
        with self.db.write(serial=False) as conn:
            if not conn.execute("SELECT pg_try_advisory_xact_lock(?)", (INDEX_LOCK,)).fetchone()[0]:
                return None
            rows = conn.execute("SELECT seq, message_id, customer_id, conversation_id FROM search_queue "
                                "ORDER BY seq LIMIT ?", (ROUND,)).fetchall()
            if not rows:
                return 0
            messages = list(dict.fromkeys(r[1] for r in rows if r[1] is not None))
            customers = list(dict.fromkeys(r[2] for r in rows if r[2] is not None))
            conversations = list(dict.fromkeys(r[3] for r in rows if r[3] is not None))
            if messages:
                self._index_messages(conn, messages)
            if customers:
                self._index_customers(conn, customers)
            for conversation_id in conversations:  # merged or split
                conn.execute("""UPDATE search_doc SET customer_id = c.customer_id FROM conversation c
                                WHERE c.id = ? AND search_doc.conversation_id = c.id""", (conversation_id,))
            conn.execute("DELETE FROM search_queue WHERE seq = ANY(?)", ([r[0] for r in rows],))
            return len(rows)

    def _index_messages(self, conn, ids: list[int]) -> None:
        found = conn.execute(
            f"""SELECT m.id, m.sent_at, m.subject, substr(m.body, 1, {BODY_INDEXED}), m.conversation_id,
                       c.customer_id, m.channel
                FROM message m JOIN conversation c ON c.id = m.conversation_id WHERE m.id = ANY(?)""",
            (ids,)).fetchall()
        docs = [(r[0], position(r[1] or 0.0) >> 20, r[4], r[5], r[6], document(r[2], r[3])) for r in found]
        if docs:
            conn.executemany(
                """INSERT INTO search_doc (message_id, sent_ms, conversation_id, customer_id, channel, words)
                   VALUES (?, ?, ?, ?, ?, ?::tsvector)
                   ON CONFLICT (message_id) DO UPDATE SET sent_ms = excluded.sent_ms,
                       conversation_id = excluded.conversation_id, customer_id = excluded.customer_id,
                       channel = excluded.channel, words = excluded.words""", docs)
        gone = sorted(set(ids) - {r[0] for r in found})
        if gone:
            conn.execute("DELETE FROM search_doc WHERE message_id = ANY(?)", (gone,))

    def _index_customers(self, conn, ids: list[int]) -> None:
        found = {r[0]: r[1] for r in conn.execute("SELECT id, name FROM customer WHERE id = ANY(?)", (ids,))}
        parts: dict[int, list[str]] = {cid: [name or ""] for cid, name in found.items()}
        for customer_id, address, display in conn.execute(
                "SELECT customer_id, address, display_name FROM identity WHERE customer_id = ANY(?) ORDER BY id",
                (list(found),)):
            parts[customer_id] += [address or "", display or ""]
        rows = [(cid, "\n".join(texts).lower()) for cid, texts in parts.items()]
        if rows:
            conn.executemany("""INSERT INTO search_who (customer_id, who) VALUES (?, ?)
                                ON CONFLICT (customer_id) DO UPDATE SET who = excluded.who""", rows)
        gone = sorted(set(ids) - set(found))
        if gone:
            conn.execute("DELETE FROM search_who WHERE customer_id = ANY(?)", (gone,))

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


class PgSearch:
    """Runs a `SearchQuery` against search_doc / search_who (see the module's docstring)."""

    def __init__(self, db, index: PgSearchIndex):
        self.db = db
        self.index = index

    def run(self, query: SearchQuery, limit: int, should_stop: Callable[[], bool] | None = None) -> list[SearchHit]:
        if query.empty or limit <= 0:
            return []
        self.index.settle()
        where, params = [], []
        if query.words:
            expression = tsquery(query.words)
            if expression is None:
                return []
            where.append("d.words @@ ?::tsquery")
            params.append(expression)
        if query.after is not None:
            where.append("d.sent_ms >= ?")
            params.append(position(query.after) >> 20)
        if query.before is not None:
            where.append("d.sent_ms < ?")
            params.append(position(query.before) >> 20)
        if query.channel:
            where.append("d.channel = ?")
            params.append(query.channel)
        with self.db.read() as conn:
            customers = None
            if query.sender:
                like = "%" + re.sub(r"([%_\\])", r"\\\1", query.sender) + "%"
                customers = {r[0] for r in conn.execute("SELECT customer_id FROM search_who WHERE who LIKE ?",
                                                        (like,))}
            if query.tag:
                tagged = {r[0] for r in conn.execute("SELECT customer_id FROM tag WHERE name = ?", (query.tag,))}
                customers = tagged if customers is None else customers & tagged
            if customers is not None:
                if not customers:
                    return []
                where.append("d.customer_id = ANY(?)")
                params.append(sorted(customers))
            if query.status:
                where.append("EXISTS (SELECT 1 FROM conversation c WHERE c.id = d.conversation_id AND c.status = ?)")
                params.append(query.status)
            found = self._newest(conn, " AND ".join(where) or "TRUE", params, limit, should_stop)
            return self._hits(conn, found, list(query.words))

    def _newest(self, conn, where: str, params: list, limit: int, should_stop) -> list[int]:
        """Message ids of the newest match of each conversation, newest first, at most `limit`."""
        hits: list[int] = []
        seen: set[int] = set()
        size = max(16, limit + limit // 4)
        for rows in conn.batches(
                f"""SELECT d.message_id, d.conversation_id FROM search_doc d WHERE {where}
                    ORDER BY d.sent_ms DESC, d.message_id DESC""", params, size, grow=True):
            if should_stop is not None and should_stop():
                raise SearchCancelled("search stopped")
            for message_id, conversation_id in rows:
                if conversation_id in seen:
                    continue
                seen.add(conversation_id)
                hits.append(message_id)
                if len(hits) == limit:
                    return hits
        return hits

    def _hits(self, conn, ids: list[int], query_words: list[str]) -> list[SearchHit]:
        if not ids:
            return []
        rows = {r["id"]: r for r in conn.execute(
            """SELECT m.id, m.conversation_id, m.channel, m.sent_at, m.subject, m.body, c.customer_id, c.status,
                      cu.name
               FROM message m JOIN conversation c ON c.id = m.conversation_id
               JOIN customer cu ON cu.id = c.customer_id WHERE m.id = ANY(?)""", (ids,))}
        return [SearchHit(r["customer_id"], r["conversation_id"], r["id"], r["name"], r["channel"], r["status"],
                          r["sent_at"], matching_line(r["subject"] + "\n" + r["body"], query_words))
                for r in (rows.get(i) for i in ids) if r is not None]
