"""The conversation list: tab counts and pages of rows, kept instant at a million conversations.

One row per customer (or per thread) in a status tab, oldest waiting first for Open. A scan over
every conversation per page or per count grew with the workspace (161 ms for the first page and
85 ms for the counts at 1M conversations), so the grouped rows are precomputed:

- `list_row` holds, per (status, channel, customer), the row's sort key, its latest conversation
  and how many threads it groups; channel '' is the all-channels row. An index on
  (status, channel, since) gives any page by a range scan.
- `list_count` holds, per (status, channel), how many customers and threads are listed.

Both are refreshed before each write transaction commits (`refresh_lists`, registered with the
`Database`): triggers on `conversation` note which customers changed in `list_dirty`, and the
refresh recomputes only those customers' rows and adjusts the counts. No write path can forget
it. Filters that the precomputed rows do not cover (assignee, tag) read the conversation table,
whose rows they narrow down.

A *kept* row (the customer just answered, who now belongs to another tab) stays in the list at
the place and with the channels it had, so the selection does not jump; the UI passes its pinned
sort key and channels in the filter.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

from console.store.db import Database, now

STATUSES = ("open", "waiting", "snoozed", "done")

# The sort key of a conversation under its status: how long the customer has waited (open), when
# it wakes (snoozed), the latest message (waiting, done).
OPEN_KEY = "COALESCE(waiting_since, last_inbound_at, last_message_at)"
SNOOZE_KEY = "COALESCE(snooze_until, last_message_at)"
ASCENDING = {"open": True, "snoozed": True, "waiting": False, "done": False}


def _key_expr(status: str, prefix: str = "") -> str:
    if status == "open":
        return OPEN_KEY.replace("(", f"({prefix}").replace(", ", f", {prefix}")
    if status == "snoozed":
        return SNOOZE_KEY.replace("(", f"({prefix}").replace(", ", f", {prefix}")
    return f"{prefix}last_message_at"


@dataclass(frozen=True)
class ListFilter:
    status: str = "open"
    channel: str | None = None
    by_customer: bool = True
    assignee: str | None = None
    tag: str | None = None
    # A row (customer id, or conversation id per thread) that stays listed under this tab after
    # its status moved, at its pinned place (`keep_since`) with its pinned channels.
    keep: int | None = None
    keep_since: float | None = None
    keep_channels: tuple[str, ...] = ()
    # Only conversations whose SLA clock is due within this many seconds (or late): "breaching soon".
    breaching: float | None = None

    @property
    def narrowed(self) -> bool:
        """Filters the precomputed rows do not cover: the conversation table is read instead."""
        return bool(self.assignee or self.tag or self.breaching is not None)


@dataclass
class ListRow:
    key: int  # customer id (grouped) or conversation id (per thread)
    customer_id: int
    conversation_id: int
    name: str
    channels: tuple[str, ...]
    subject: str
    preview: str
    since: float  # waiting since (open), wakes at (snoozed), last message (others)
    last_direction: str
    threads: int = 1
    assignee: str | None = None
    snooze_until: float | None = None
    status: str = "open"  # of the row's latest conversation (a kept row may have moved on)
    clock: object = None  # its most urgent SLA clock (console/store/sla.py `attach_clocks`), if any


# ---- keeping the precomputed rows fresh -----------------------------------------------------------
def refresh_lists(conn: sqlite3.Connection) -> None:
    """Recompute the list rows and counts of the customers whose conversations changed in this
    transaction (noted in `list_dirty` by triggers). Runs just before the commit."""
    if conn.execute("SELECT 1 FROM list_dirty LIMIT 1").fetchone() is None:
        return
    dirty = "SELECT customer_id FROM list_dirty"
    before = _group_counts(conn, dirty)
    conn.execute(f"DELETE FROM list_row WHERE customer_id IN ({dirty})")
    latest = """(SELECT c2.id FROM conversation c2 WHERE c2.customer_id = c.customer_id AND c2.status = c.status
                 {channel} ORDER BY c2.last_message_at DESC, c2.id DESC LIMIT 1)"""
    since = f"""CASE c.status WHEN 'open' THEN MIN({_key_expr('open', 'c.')})
                              WHEN 'snoozed' THEN MIN({_key_expr('snoozed', 'c.')})
                              ELSE MAX(c.last_message_at) END"""
    conn.execute(
        f"""INSERT INTO list_row (status, channel, customer_id, since, conversation_id, threads)
            SELECT c.status, c.channel, c.customer_id, {since},
                   {latest.format(channel='AND c2.channel = c.channel')}, COUNT(*)
            FROM conversation c WHERE c.customer_id IN ({dirty}) GROUP BY c.status, c.channel, c.customer_id""")
    conn.execute(
        f"""INSERT INTO list_row (status, channel, customer_id, since, conversation_id, threads)
            SELECT c.status, '', c.customer_id, {since}, {latest.format(channel='')}, COUNT(*)
            FROM conversation c WHERE c.customer_id IN ({dirty}) GROUP BY c.status, c.customer_id""")
    after = _group_counts(conn, dirty)
    for key in set(before) | set(after):
        rows_before, threads_before = before.get(key, (0, 0))
        rows_after, threads_after = after.get(key, (0, 0))
        if (rows_before, threads_before) != (rows_after, threads_after):
            conn.execute(
                """INSERT INTO list_count (status, channel, customers, threads) VALUES (?, ?, ?, ?)
                   ON CONFLICT (status, channel) DO UPDATE SET customers = list_count.customers + excluded.customers,
                       threads = list_count.threads + excluded.threads""",
                (*key, rows_after - rows_before, threads_after - threads_before))
    conn.execute("DELETE FROM list_dirty")


def _group_counts(conn: sqlite3.Connection, dirty: str) -> dict[tuple[str, str], tuple[int, int]]:
    return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
        f"""SELECT status, channel, COUNT(*), SUM(threads) FROM list_row WHERE customer_id IN ({dirty})
            GROUP BY status, channel""")}


class ListsMixin:
    db: Database

    # ---- counts ---------------------------------------------------------------------------------
    def count_rows(self, flt: ListFilter) -> int:
        """Rows listed under `flt` (the kept row included)."""
        total = self._count_plain(flt)
        if flt.keep is not None and not self._listed(flt):
            total += 1
        return total

    def status_counts(self, flt: ListFilter) -> dict[str, int]:
        """Rows per status tab with the same channel / assignee / tag filter; with a kept row,
        also 'listed': what the current tab shows."""
        if flt.narrowed:
            counts = {status: self._count_plain(replace(flt, status=status)) for status in STATUSES}
        else:
            column = "customers" if flt.by_customer else "threads"
            found = {r[0]: r[1] for r in self.db.query(
                f"SELECT status, {column} FROM list_count WHERE channel = ?", (flt.channel or "",))}
            counts = {status: int(found.get(status) or 0) for status in STATUSES}
        if flt.keep is not None:
            counts["listed"] = counts[flt.status] + (0 if self._listed(flt) else 1)
        return counts

    def channels_in_use(self) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT channel FROM list_count WHERE channel != '' GROUP BY channel HAVING SUM(threads) > 0 ORDER BY channel")]

    def _count_plain(self, flt: ListFilter) -> int:
        if not flt.narrowed:
            column = "customers" if flt.by_customer else "threads"
            row = self.db.query_one(f"SELECT {column} FROM list_count WHERE status = ? AND channel = ?",
                                    (flt.status, flt.channel or ""))
            return int(row[0]) if row else 0
        where, params = _conversation_where(flt)
        what = "COUNT(DISTINCT customer_id)" if flt.by_customer else "COUNT(*)"
        return self.db.query_one(f"SELECT {what} FROM conversation WHERE {where}", params)[0]

    def _listed(self, flt: ListFilter) -> bool:
        """Whether the kept row is listed under the tab on its own merits."""
        if flt.keep is None:
            return True
        if flt.by_customer:
            where, params = _conversation_where(flt)
            return self.db.query_one(f"SELECT 1 FROM conversation WHERE {where} AND customer_id = ? LIMIT 1",
                                     (*params, flt.keep)) is not None
        where, params = _conversation_where(flt)
        return self.db.query_one(f"SELECT 1 FROM conversation WHERE {where} AND id = ?",
                                 (*params, flt.keep)) is not None

    # ---- pages ----------------------------------------------------------------------------------
    def list_rows(self, flt: ListFilter, offset: int, limit: int) -> list[ListRow]:
        """One page of rows, in the tab's order, with the kept row at its pinned place."""
        if flt.keep is None or flt.keep_since is None or self._listed(flt):
            return self._page(flt, offset, limit)
        position = self._position(flt)
        if position < offset:
            return self._page(flt, offset - 1, limit)
        if position >= offset + limit:
            return self._page(flt, offset, limit)
        rows = self._page(flt, offset, limit - 1)
        kept = self._kept_row(flt)
        if kept is not None:
            rows.insert(position - offset, kept)
        return rows

    def _keys(self, flt: ListFilter, offset: int, limit: int) -> list[tuple[int, float, int, int]]:
        """(row key, since, latest conversation id, threads) of a page."""
        order = "ASC" if ASCENDING[flt.status] else "DESC"
        if not flt.narrowed and flt.by_customer:
            return [tuple(r) for r in self.db.query(
                f"""SELECT customer_id, since, conversation_id, threads FROM list_row
                    WHERE status = ? AND channel = ? ORDER BY since {order}, customer_id LIMIT ? OFFSET ?""",
                (flt.status, flt.channel or "", limit, offset))]
        where, params = _conversation_where(flt)
        key = _key_expr(flt.status)
        if flt.by_customer:
            agg = "MIN" if ASCENDING[flt.status] else "MAX"
            rows = self.db.query(
                f"""SELECT customer_id, {agg}({key}) AS since, COUNT(*) AS threads FROM conversation WHERE {where}
                    GROUP BY customer_id ORDER BY since {order}, customer_id LIMIT ? OFFSET ?""",
                (*params, limit, offset))
            latest = self._latest_conversations(flt, [r["customer_id"] for r in rows])
            return [(r["customer_id"], r["since"], latest.get(r["customer_id"], 0), r["threads"]) for r in rows]
        return [(r["id"], r["since"], r["id"], 1) for r in self.db.query(
            f"""SELECT id, {key} AS since FROM conversation WHERE {where}
                ORDER BY since {order}, id LIMIT ? OFFSET ?""", (*params, limit, offset))]

    def _latest_conversations(self, flt: ListFilter, customers: list[int]) -> dict[int, int]:
        if not customers:
            return {}
        where, params = _conversation_where(flt)
        marks = ",".join("?" * len(customers))
        latest: dict[int, int] = {}
        for r in self.db.query(
                f"""SELECT customer_id, id FROM conversation WHERE {where} AND customer_id IN ({marks})
                    ORDER BY last_message_at DESC, id DESC""", (*params, *customers)):
            latest.setdefault(r["customer_id"], r["id"])
        return latest

    def _page(self, flt: ListFilter, offset: int, limit: int) -> list[ListRow]:
        if limit <= 0 or offset < 0:
            return []
        keys = self._keys(flt, offset, limit)
        if not keys:
            return []
        conversations = self._conversations([k[2] for k in keys])
        channels = self._row_channels(flt, [k[0] for k in keys]) if flt.by_customer else {}
        rows = []
        for key, since, conversation_id, threads in keys:
            conv = conversations.get(conversation_id)
            if conv is None:
                continue
            rows.append(_row(key, conv, channels.get(key) or (conv["channel"],), since, threads))
        return rows

    def _row_channels(self, flt: ListFilter, customers: list[int]) -> dict[int, tuple[str, ...]]:
        """The channels each customer's row groups under this tab, most recent first."""
        marks = ",".join("?" * len(customers))
        out: dict[int, list[str]] = {}
        if flt.narrowed:
            where, params = _conversation_where(replace(flt, channel=None))
            rows = self.db.query(
                f"""SELECT customer_id, channel, MAX(last_message_at) AS at FROM conversation
                    WHERE {where} AND customer_id IN ({marks}) GROUP BY customer_id, channel ORDER BY at DESC""",
                (*params, *customers))
        else:
            # `status || ''`: found by the page's customers (list_row_customer), not by the tab's
            # every row (the primary key's status prefix, which SQLite otherwise picks: 11 ms at
            # 100k open customers, growing with the workspace; 0.3 ms this way, at any size).
            rows = self.db.query(
                f"""SELECT r.customer_id, r.channel, c.last_message_at AS at FROM list_row r
                    JOIN conversation c ON c.id = r.conversation_id
                    WHERE r.status || '' = ? AND r.channel != '' AND r.customer_id IN ({marks}) ORDER BY at DESC""",
                (flt.status, *customers))
        for r in rows:
            out.setdefault(r["customer_id"], []).append(r["channel"])
        return {k: tuple(v) for k, v in out.items()}

    def _conversations(self, ids: list[int]) -> dict[int, sqlite3.Row]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return {r["id"]: r for r in self.db.query(
            f"""SELECT c.*, cu.name AS customer_name FROM conversation c JOIN customer cu ON cu.id = c.customer_id
                WHERE c.id IN ({marks})""", ids)}

    def _position(self, flt: ListFilter) -> int:
        """How many rows come before the kept row's pinned place."""
        since, key = flt.keep_since, flt.keep
        before = "<" if ASCENDING[flt.status] else ">"
        if not flt.narrowed and flt.by_customer:
            return self.db.query_one(
                f"""SELECT COUNT(*) FROM list_row WHERE status = ? AND channel = ?
                    AND (since {before} ? OR (since = ? AND customer_id < ?))""",
                (flt.status, flt.channel or "", since, since, key))[0]
        where, params = _conversation_where(flt)
        expr = _key_expr(flt.status)
        if flt.by_customer:
            agg = "MIN" if ASCENDING[flt.status] else "MAX"
            return self.db.query_one(
                f"""SELECT COUNT(*) FROM (SELECT customer_id, {agg}({expr}) AS since FROM conversation
                    WHERE {where} GROUP BY customer_id) AS grouped WHERE since {before} ? OR (since = ? AND customer_id < ?)""",
                (*params, since, since, key))[0]
        return self.db.query_one(
            f"""SELECT COUNT(*) FROM conversation WHERE {where} AND ({expr} {before} ? OR ({expr} = ? AND id < ?))""",
            (*params, since, since, key))[0]

    def _kept_row(self, flt: ListFilter) -> ListRow | None:
        """The kept row as it was pinned: its latest conversation for the preview."""
        if flt.by_customer:
            conv = self.db.query_one(
                f"""SELECT c.*, cu.name AS customer_name FROM conversation c JOIN customer cu ON cu.id = c.customer_id
                    WHERE c.customer_id = ? {'AND c.channel = ?' if flt.channel else ''}
                    ORDER BY c.last_message_at DESC, c.id DESC LIMIT 1""",
                (flt.keep, flt.channel) if flt.channel else (flt.keep,))
        else:
            conv = self.db.query_one(
                """SELECT c.*, cu.name AS customer_name FROM conversation c JOIN customer cu ON cu.id = c.customer_id
                   WHERE c.id = ?""", (flt.keep,))
        if conv is None:
            return None
        channels = flt.keep_channels or (conv["channel"],)
        return _row(flt.keep, conv, channels, flt.keep_since, 1)

    def row_for(self, customer_id: int, conversation_id: int | None = None) -> ListRow | None:
        """A list row for one customer (e.g. a search hit), whatever tab they are under."""
        conv = self.db.query_one(
            f"""SELECT c.*, cu.name AS customer_name FROM conversation c JOIN customer cu ON cu.id = c.customer_id
                WHERE c.customer_id = ? {'AND c.id = ?' if conversation_id is not None else ''}
                ORDER BY c.last_message_at DESC LIMIT 1""",
            (customer_id,) if conversation_id is None else (customer_id, conversation_id))
        if conv is None:
            return None
        return _row(customer_id, conv, (conv["channel"],), conv["waiting_since"], 1)


def _conversation_where(flt: ListFilter) -> tuple[str, list]:
    clauses, params = ["status = ?"], [flt.status]
    if flt.channel:
        clauses.append("channel = ?")
        params.append(flt.channel)
    if flt.assignee:
        clauses.append("assignee = ?")
        params.append(flt.assignee)
    if flt.tag:
        clauses.append("customer_id IN (SELECT customer_id FROM tag WHERE name = ?)")
        params.append(flt.tag)
    if flt.breaching is not None:
        clauses.append("id IN (SELECT conversation_id FROM sla_clock WHERE due_at <= ?)")
        params.append(now() + flt.breaching)
    return " AND ".join(clauses), params


def _row(key: int, conv, channels: tuple[str, ...], since: float | None, threads: int) -> ListRow:
    last_dir = "in" if (conv["last_inbound_at"] or 0) >= (conv["last_outbound_at"] or 0) else "out"
    return ListRow(
        key=key, customer_id=conv["customer_id"], conversation_id=conv["id"], name=conv["customer_name"],
        channels=channels, subject=conv["subject"], preview=conv["preview"],
        since=since if since is not None else conv["last_message_at"], last_direction=last_dir,
        threads=threads, assignee=conv["assignee"], snooze_until=conv["snooze_until"], status=conv["status"],
    )
