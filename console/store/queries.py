"""What the UI reads and the intents it writes: list pages, timelines, statuses, account states."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from console.store.rawfile import RawFile
from console.store.db import Database, now

STATUSES = ("open", "waiting", "snoozed", "done")


@dataclass(frozen=True)
class ListFilter:
    status: str = "open"
    channel: str | None = None
    by_customer: bool = True
    assignee: str | None = None
    tag: str | None = None
    # A row (customer id, or conversation id per thread) that stays listed under this tab after
    # its status moved, so replying to a customer does not whisk them away mid-conversation.
    keep: int | None = None


@dataclass
class ListRow:
    key: int  # customer id (grouped) or conversation id (per thread)
    customer_id: int
    conversation_id: int
    name: str
    channels: tuple[str, ...]
    subject: str
    preview: str
    since: float  # waiting since (open), last message (others)
    last_direction: str
    threads: int = 1
    assignee: str | None = None
    snooze_until: float | None = None


@dataclass
class IdentityRow:
    id: int
    kind: str
    address: str
    display_name: str
    opted_out: bool


@dataclass
class TimelineEntry:
    id: int
    conversation_id: int
    account: str
    channel: str
    direction: str
    sent_at: float
    subject: str
    body: str
    status: str | None
    status_detail: str
    author: str | None
    attachments: list[dict] = field(default_factory=list)
    edited: bool = False
    address: str = ""


@dataclass
class AccountState:
    name: str
    kind: str
    state: str
    detail: str
    progress: tuple[int, int] | None


def _order(status: str, grouped: bool) -> tuple[str, str]:
    """(aggregate sort key, direction) per status: oldest waiting first for open ones."""
    if status == "open":
        # last_inbound_at keeps a just-answered (kept) row where it was.
        expr = "COALESCE(waiting_since, last_inbound_at, last_message_at)"
        return (f"MIN({expr})" if grouped else expr), "ASC"
    if status == "snoozed":
        return ("MIN(snooze_until)" if grouped else "snooze_until"), "ASC"
    return ("MAX(last_message_at)" if grouped else "last_message_at"), "DESC"


class QueryMixin:
    db: Database
    raw: "RawFile"

    # ---- the conversation list -------------------------------------------------------------
    @staticmethod
    def _where(flt: ListFilter, prefix: str = "") -> tuple[str, list]:
        clauses, params = [], []
        if flt.channel:
            clauses.append(f"{prefix}channel = ?")
            params.append(flt.channel)
        if flt.assignee:
            clauses.append(f"{prefix}assignee = ?")
            params.append(flt.assignee)
        if flt.tag:
            clauses.append(f"{prefix}customer_id IN (SELECT customer_id FROM tag WHERE name = ?)")
            params.append(flt.tag)
        if flt.keep is None:
            where = " AND ".join([f"{prefix}status = ?", *clauses])
            return where, [flt.status, *params]
        key = "customer_id" if flt.by_customer else "id"
        # The kept row shows the conversations it had under this tab and the ones that just left it.
        status = f"({prefix}status = ? OR ({prefix}{key} = ? AND {prefix}status != 'done'))"
        if flt.status == "done":
            status = f"({prefix}status = ? OR {prefix}{key} = ?)"
        return " AND ".join([status, *clauses]), [flt.status, flt.keep, *params]

    def count_rows(self, flt: ListFilter) -> int:
        where, params = self._where(flt)
        what = "COUNT(DISTINCT customer_id)" if flt.by_customer else "COUNT(*)"
        return self.db.query_one(f"SELECT {what} FROM conversation WHERE {where}", params)[0]

    def status_counts(self, flt: ListFilter) -> dict[str, int]:
        """Rows per status tab, with the same channel/assignee filter."""
        counts = {}
        for status in STATUSES:
            counts[status] = self.count_rows(replace(flt, status=status, keep=None))
        if flt.keep is not None:
            counts["listed"] = self.count_rows(flt)
        return counts

    def list_rows(self, flt: ListFilter, offset: int, limit: int) -> list[ListRow]:
        where, params = self._where(flt)
        cwhere, _ = self._where(flt, "c.")
        key, direction = _order(flt.status, flt.by_customer)
        if flt.by_customer:
            keys = self.db.query(
                f"""SELECT customer_id, {key} AS since FROM conversation WHERE {where}
                    GROUP BY customer_id ORDER BY since {direction}, customer_id LIMIT ? OFFSET ?""",
                (*params, limit, offset),
            )
            if not keys:
                return []
            ids = [r["customer_id"] for r in keys]
            marks = ",".join("?" * len(ids))
            convs = self.db.query(
                f"""SELECT c.*, cu.name AS customer_name FROM conversation c JOIN customer cu ON cu.id = c.customer_id
                    WHERE c.customer_id IN ({marks}) AND {cwhere}
                    ORDER BY c.last_message_at DESC""",
                (*ids, *params),
            )
            per_customer: dict[int, list] = {}
            for conv in convs:
                per_customer.setdefault(conv["customer_id"], []).append(conv)
            rows = []
            for k in keys:
                group = per_customer.get(k["customer_id"])
                if not group:
                    continue
                latest = group[0]
                channels = tuple(dict.fromkeys(c["channel"] for c in group))
                rows.append(self._row(k["customer_id"], latest, channels, k["since"], len(group)))
            return rows
        convs = self.db.query(
            f"""SELECT c.*, cu.name AS customer_name, {key} AS since FROM conversation c
                JOIN customer cu ON cu.id = c.customer_id WHERE {cwhere}
                ORDER BY since {direction}, c.id LIMIT ? OFFSET ?""",
            (*params, limit, offset),
        )
        return [self._row(c["id"], c, (c["channel"],), c["since"], 1) for c in convs]

    def row_for(self, customer_id: int, conversation_id: int | None = None) -> ListRow | None:
        """A list row for one customer (e.g. a search hit), whatever tab they are under."""
        conv = self.db.query_one(
            f"""SELECT c.*, cu.name AS customer_name FROM conversation c JOIN customer cu ON cu.id = c.customer_id
                WHERE c.customer_id = ? {'AND c.id = ?' if conversation_id is not None else ''}
                ORDER BY c.last_message_at DESC LIMIT 1""",
            (customer_id,) if conversation_id is None else (customer_id, conversation_id))
        if conv is None:
            return None
        return self._row(customer_id, conv, (conv["channel"],), conv["waiting_since"], 1)

    @staticmethod
    def _row(key: int, conv, channels: tuple[str, ...], since: float | None, threads: int) -> ListRow:
        last_dir = "in" if (conv["last_inbound_at"] or 0) >= (conv["last_outbound_at"] or 0) else "out"
        return ListRow(
            key=key, customer_id=conv["customer_id"], conversation_id=conv["id"], name=conv["customer_name"],
            channels=channels, subject=conv["subject"], preview=conv["preview"],
            since=since if since is not None else conv["last_message_at"], last_direction=last_dir,
            threads=threads, assignee=conv["assignee"], snooze_until=conv["snooze_until"],
        )

    def count_messages(self) -> int:
        return self.db.query_one("SELECT COUNT(*) FROM message")[0]

    def channels_in_use(self) -> list[str]:
        return [r[0] for r in self.db.query("SELECT DISTINCT channel FROM conversation ORDER BY channel")]

    # ---- one customer -----------------------------------------------------------------------
    def customer_name(self, customer_id: int) -> str:
        row = self.db.query_one("SELECT name FROM customer WHERE id = ?", (customer_id,))
        return row["name"] if row else ""

    def identities(self, customer_id: int) -> list[IdentityRow]:
        return [
            IdentityRow(r["id"], r["kind"], r["address"], r["display_name"], bool(r["opted_out"]))
            for r in self.db.query("SELECT * FROM identity WHERE customer_id = ? ORDER BY id", (customer_id,))
        ]

    def timeline(self, customer_id: int, limit: int = 300) -> list[TimelineEntry]:
        """The customer's latest messages across every channel, oldest first."""
        rows = self.db.query(
            """SELECT m.id, m.conversation_id, m.account, m.channel, m.direction, m.sent_at, m.subject, m.body,
                      m.status, m.status_detail, m.author, m.attachments, m.edited, i.address
               FROM message m JOIN conversation c ON c.id = m.conversation_id JOIN identity i ON i.id = m.identity_id
               WHERE c.customer_id = ? ORDER BY m.sent_at DESC, m.id DESC LIMIT ?""",
            (customer_id, limit),
        )
        return [
            TimelineEntry(r["id"], r["conversation_id"], r["account"], r["channel"], r["direction"], r["sent_at"],
                          r["subject"], r["body"], r["status"], r["status_detail"], r["author"],
                          json.loads(r["attachments"]) if r["attachments"] else [], bool(r["edited"]), r["address"])
            for r in reversed(rows)
        ]

    def reply_targets(self, customer_id: int) -> list[dict]:
        """Where a reply to this customer can go: (account, channel, identity), last used first."""
        rows = self.db.query(
            """SELECT c.account, c.channel, c.identity_id, MAX(c.last_inbound_at) AS last_in, MAX(c.last_message_at) AS last,
                      i.address, i.opted_out, MAX(c.id) AS conversation_id
               FROM conversation c JOIN identity i ON i.id = c.identity_id
               WHERE c.customer_id = ? GROUP BY c.account, c.channel, c.identity_id
               ORDER BY COALESCE(MAX(c.last_inbound_at), 0) DESC, MAX(c.last_message_at) DESC""",
            (customer_id,),
        )
        return [dict(r) for r in rows]

    def message_raw(self, message_id: int) -> bytes | None:
        """The message as the service sent it (an email's MIME bytes), when it was kept."""
        row = self.db.query_one("SELECT raw, raw_sha FROM message WHERE id = ?", (message_id,))
        if row is None:
            return None
        if row["raw_sha"]:
            return self.raw.get(row["raw_sha"])
        return bytes(row["raw"]) if row["raw"] is not None else None  # stored before schema 4

    def conversation(self, conversation_id: int):
        return self.db.query_one("SELECT * FROM conversation WHERE id = ?", (conversation_id,))

    # ---- intents ------------------------------------------------------------------------------
    def set_status(self, status: str, *, customer_id: int | None = None, conversation_id: int | None = None,
                   from_statuses: tuple[str, ...] = STATUSES, snooze_until: float | None = None) -> int:
        """Move one conversation, or all of a customer's in `from_statuses`, to `status`."""
        assert status in STATUSES
        target = "conversation_id" if conversation_id is not None else "customer_id"
        ident = conversation_id if conversation_id is not None else customer_id
        column = "id" if target == "conversation_id" else "customer_id"
        marks = ",".join("?" * len(from_statuses))
        with self.db.write() as conn:
            if status == "open":
                return conn.execute(
                    f"""UPDATE conversation SET status = 'open', snooze_until = NULL,
                           waiting_since = COALESCE(waiting_since, last_inbound_at, last_message_at)
                        WHERE {column} = ? AND status IN ({marks})""",
                    (ident, *from_statuses),
                ).rowcount
            return conn.execute(
                f"""UPDATE conversation SET status = ?, snooze_until = ?,
                       waiting_since = CASE WHEN ? = 'snoozed' THEN waiting_since ELSE NULL END
                    WHERE {column} = ? AND status IN ({marks})""",
                (status, snooze_until, status, ident, *from_statuses),
            ).rowcount

    def wake_snoozed(self) -> int:
        """Snoozed conversations whose time has come return to open."""
        with self.db.write() as conn:
            return conn.execute(
                """UPDATE conversation SET status = 'open', snooze_until = NULL,
                       waiting_since = COALESCE(waiting_since, last_inbound_at, last_message_at)
                   WHERE status = 'snoozed' AND snooze_until <= ?""",
                (now(),),
            ).rowcount

    def close_waiting(self, quiet_since: float) -> int:
        """Conversations we answered and the customer never came back to (no message since
        `quiet_since`) move from waiting to done; a new message from the customer reopens them."""
        with self.db.write() as conn:
            return conn.execute(
                "UPDATE conversation SET status = 'done' WHERE status = 'waiting' AND last_message_at < ?",
                (quiet_since,),
            ).rowcount

    # ---- accounts -----------------------------------------------------------------------------
    def set_account_state(self, name: str, kind: str, state: str, detail: str = "",
                          progress: tuple[int, int] | None = None) -> None:
        done, total = progress or (None, None)
        with self.db.write() as conn:
            conn.execute(
                """INSERT INTO account (name, kind, state, detail, progress_done, progress_total, last_ok_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, CASE WHEN ? = 'ok' THEN ? END, ?)
                   ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, state = excluded.state,
                       detail = excluded.detail, progress_done = excluded.progress_done,
                       progress_total = excluded.progress_total,
                       last_ok_at = COALESCE(excluded.last_ok_at, account.last_ok_at), updated_at = excluded.updated_at""",
                (name, kind, state, detail, done, total, state, now(), now()),
            )

    def account_states(self) -> list[AccountState]:
        return [
            AccountState(r["name"], r["kind"], r["state"], r["detail"],
                         (r["progress_done"], r["progress_total"]) if r["progress_total"] else None)
            for r in self.db.query("SELECT * FROM account ORDER BY name")
        ]
