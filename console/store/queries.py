"""What the UI reads and the intents it writes about conversations: timelines, reply targets,
statuses, account states. The list itself is console/store/lists.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from console.store.rawfile import RawFile
from console.store.db import Database, now
from console.store.lists import STATUSES



@dataclass
class IdentityRow:
    id: int
    kind: str
    address: str
    display_name: str
    # Channels this identity withdrew from altogether (SMS STOP): nothing but the confirmation
    # may go there. Marketing-only withdrawals are on the card (console/store/consent.py).
    opted_out_of: tuple[str, ...] = ()

    @property
    def opted_out(self) -> bool:
        return bool(self.opted_out_of)


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
    campaign: str = ""  # ours: the campaign and step it belongs to ("Spring menu · step 1")
    answers: str = ""  # theirs: the campaign message it answers (within that campaign's reply window)


@dataclass
class AccountState:
    name: str
    kind: str
    state: str
    detail: str
    progress: tuple[int, int] | None


class QueryMixin:
    db: Database
    raw: "RawFile"

    def count_messages(self) -> int:
        return self.db.query_one("SELECT COUNT(*) FROM message")[0]

    # ---- one customer -----------------------------------------------------------------------
    def customer_name(self, customer_id: int) -> str:
        row = self.db.query_one("SELECT name FROM customer WHERE id = ?", (customer_id,))
        return row["name"] if row else ""

    def identities(self, customer_id: int) -> list[IdentityRow]:
        withdrawn: dict[int, list[str]] = {}
        for r in self.db.query(
                """SELECT k.identity_id, k.channel FROM consent k JOIN identity i ON i.id = k.identity_id
                   WHERE i.customer_id = ? AND k.purpose = 'service' AND k.state = 'withdrawn'
                   ORDER BY k.channel""", (customer_id,)):
            withdrawn.setdefault(r["identity_id"], []).append(r["channel"])
        return [
            IdentityRow(r["id"], r["kind"], r["address"], r["display_name"], tuple(withdrawn.get(r["id"], ())))
            for r in self.db.query("SELECT * FROM identity WHERE customer_id = ? ORDER BY id", (customer_id,))
        ]

    def timeline(self, customer_id: int, limit: int = 300) -> list[TimelineEntry]:
        """The customer's latest messages across every channel, oldest first."""
        return self.timeline_page(customer_id, limit)[0]

    def timeline_page(self, customer_id: int, limit: int | None = 300,
                      before: tuple[float, int] | None = None) -> tuple[list[TimelineEntry], bool]:
        """Up to `limit` of the customer's messages (all with None) older than `before` (sent at,
        id) or the newest ones, oldest first; and whether older ones remain. What rules did to
        the customer's conversations comes in between, as entries of direction "event" (the
        actor in `author`, what it did in `body`, a negative id)."""
        clause, event_clause, params, event_params = "", "", [customer_id], [customer_id]
        if before is not None:
            clause = "AND (m.sent_at < ? OR (m.sent_at = ? AND m.id < ?))"
            event_clause = "AND (a.at < ? OR (a.at = ? AND -a.id < ?))"
            params += [before[0], before[0], before[1]]
            event_params += [before[0], before[0], before[1]]
        rows = self.db.query(
            f"""SELECT * FROM (
                   SELECT m.id, m.conversation_id, m.account, m.channel, m.direction, m.sent_at, m.subject, m.body,
                          m.status, m.status_detail, m.author, m.attachments, m.edited, i.address, 0 AS rank
                   FROM message m JOIN conversation c ON c.id = m.conversation_id JOIN identity i ON i.id = m.identity_id
                   WHERE c.customer_id = ? {clause}
                   UNION ALL
                   SELECT -a.id, a.conversation_id, c.account, c.channel, 'event', a.at, '', a.text, NULL, '',
                          a.actor, NULL, 0, '', 1
                   FROM activity a JOIN conversation c ON c.id = a.conversation_id
                   WHERE c.customer_id = ? {event_clause}
               ) AS entries ORDER BY sent_at DESC, rank DESC, ABS(id) DESC LIMIT ?""",
            (*params, *event_params, 1 << 62 if limit is None else limit + 1),
        )
        more = limit is not None and len(rows) > limit
        rows = rows[:limit] if more else rows
        entries = [
            TimelineEntry(r["id"], r["conversation_id"], r["account"], r["channel"], r["direction"], r["sent_at"],
                          r["subject"], r["body"], r["status"], r["status_detail"], r["author"],
                          json.loads(r["attachments"]) if r["attachments"] else [], bool(r["edited"]), r["address"])
            for r in reversed(rows)
        ]
        self._mark_campaigns(customer_id, entries)
        return entries, more

    def _mark_campaigns(self, customer_id: int, entries: list[TimelineEntry]) -> None:
        """Which of these messages a campaign sent, and which of the customer's answer one (the
        newest campaign message before it, on any channel, within that campaign's reply window)."""
        if not entries:
            return
        sent = self.db.query(
            """SELECT cr.message_id, cr.position, ca.name, ca.reply_days, m.sent_at, m.status FROM campaign_recipient cr
               JOIN campaign ca ON ca.id = cr.campaign_id JOIN message m ON m.id = cr.message_id
               WHERE cr.customer_id = ? ORDER BY m.sent_at""", (customer_id,))
        if not sent:
            return
        labels = {r["message_id"]: f"{r['name']} · step {r['position']}" for r in sent}
        sent = [r for r in sent if r["status"] not in ("queued", "sending", "failed", "undelivered")]
        for entry in entries:
            if entry.direction == "out":
                entry.campaign = labels.get(entry.id, "")
                continue
            answered = [r for r in sent if r["sent_at"] < entry.sent_at <= r["sent_at"] + r["reply_days"] * 86400]
            if answered:
                entry.answers = labels[answered[-1]["message_id"]]

    def reply_targets(self, customer_id: int, prefer: int | None = None, prefer_first: bool = False) -> list[dict]:
        """Where a reply to this customer can go: (account, channel, identity), last used first.

        Each target answers its latest thread, or the conversation `prefer` when it is one of its
        threads (the thread the user has selected); with `prefer_first` that target comes first."""
        rows = self.db.query(
            """SELECT c.account, c.channel, c.identity_id, MAX(c.last_inbound_at) AS last_in, MAX(c.last_message_at) AS last,
                      i.address, i.kind, i.display_name, MAX(c.id) AS conversation_id,
                      MAX(CASE WHEN c.id = ? THEN 1 ELSE 0 END) AS preferred,
                      MAX(CASE WHEN k.state = 'withdrawn' THEN 1 ELSE 0 END) AS opted_out
               FROM conversation c JOIN identity i ON i.id = c.identity_id
               LEFT JOIN consent k ON k.identity_id = c.identity_id AND k.channel = c.channel AND k.purpose = 'service'
               WHERE c.customer_id = ? GROUP BY c.account, c.channel, c.identity_id, i.address, i.kind,
                        i.display_name
               ORDER BY COALESCE(MAX(c.last_inbound_at), 0) DESC, MAX(c.last_message_at) DESC""",
            (prefer, customer_id),
        )
        targets = []
        for r in rows:
            target = dict(r)
            if target.pop("preferred"):
                target["conversation_id"] = prefer
                target["preferred"] = True
            targets.append(target)
        if prefer_first:
            targets.sort(key=lambda t: not t.get("preferred"))
        return targets

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
