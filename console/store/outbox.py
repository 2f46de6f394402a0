"""The durable outbox: a reply is committed here before any network call is made.

Life of a send: `enqueue_reply` (pending) -> `claim_due` (sending, attempts + 1, committed before
the adapter is called) -> `record_sent` / `record_retry` / `record_failed`. A row still "sending"
when the engine starts was interrupted mid-send: the engine asks the adapter to reconcile it
instead of sending again.

Any number of engines may deliver (a team on PostgreSQL): a claim locks the rows it takes with
`FOR UPDATE SKIP LOCKED`, so two engines never take the same row, and marks them with the
engine's token, with a lease (`next_try_at`, SEND_LEASE seconds on) during which no other engine
takes the send for one in doubt. A send is in doubt, for an engine, when its lease is over, or
when the engine that claimed it is gone (console/store/leases.py); `still_in_doubt` then takes
it over with a compare-and-set, so only one engine asks the service about it. The idempotency
key stays the last guard.

Every row has a purpose: `service` (a reply), `marketing` (a campaign's, or any message the
customer did not ask for), `test` (to the shop's own test addresses) or `ack` (the one
confirmation of an opt-out). `claim_due` puts replies first, so an answer never waits behind a
campaign, takes marketing rows only as fast as the engine's pacing allows, and asks restraint
(console/store/restraint.py, console/outreach/restraint.py) about every row at the moment of
claiming: a refused row is cancelled with its reason code in `refusal`, a held one waits until
quiet hours end. Whatever wrote the row, by hand included, nothing bypasses it.
"""

from __future__ import annotations

import json
import sqlite3
import uuid

from console.model import DELIVERY_STATES, Address, Outgoing, SendResult
from console.outreach.facts import SEND_PURPOSES
from console.store.db import Database, now
from console.store.ingest import _after_message
from console.sanitize import one_line


# How long an engine's claim keeps other engines from taking a send in flight for one in doubt:
# longer than the engine waits for the channel's answer (console/sync.py SEND_TIMEOUT).
SEND_LEASE = 180.0

# How long before a reply was written another reply's external id still counts as taken for it:
# every adapter looks for a send in doubt from its created_at on (minus minutes for clocks).
TAKEN_LOOKBACK = 86400.0


class OptedOut(Exception):
    """The recipient identity opted out; nothing may be sent to it."""


class OutboxMixin:
    db: Database

    def enqueue_reply(self, identity_id: int, account: str, channel: str, body: str, subject: str = "",
                      author: str = "", conversation_id: int | None = None,
                      options: dict[str, str] | None = None, delay: float = 0.0, new_thread: bool = False,
                      purpose: str = "service", key: str | None = None) -> int:
        """Write a reply and its outbox row in one transaction; returns the message id.

        The reply joins `conversation_id` when it is this account's thread with this identity,
        otherwise the latest such thread, otherwise a new one; with `new_thread` (a new email on
        a subject of its own) always a new one. A reply to an identity that withdrew its service
        consent on this channel (SMS STOP) raises OptedOut.
        """
        with self.db.write() as conn:
            return self._enqueue(conn, identity_id, account, channel, body, subject, author, conversation_id,
                                 options, now() + delay, new_thread, purpose, key)[0]

    def _enqueue(self, conn: sqlite3.Connection, identity_id: int, account: str, channel: str, body: str,
                 subject: str = "", author: str = "", conversation_id: int | None = None,
                 options: dict[str, str] | None = None, due: float | None = None, new_thread: bool = False,
                 purpose: str = "service", key: str | None = None, status: str = "done") -> tuple[int, int]:
        """One message and its outbox row, in the caller's transaction: (message id, outbox id).
        A message that starts a conversation of its own opens it as `status`: a reply waits for
        the customer (`waiting`), a campaign message waits for nobody (`done`, reopened by an answer)."""
        at = now()
        due = at if due is None else due
        if purpose not in SEND_PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}")
        identity = conn.execute("SELECT * FROM identity WHERE id = ?", (identity_id,)).fetchone()
        if identity is None:
            raise ValueError(f"no identity {identity_id}")
        if purpose == "service" and conn.execute(
                """SELECT 1 FROM consent WHERE identity_id = ? AND channel = ? AND purpose = 'service'
                   AND state = 'withdrawn'""", (identity_id, channel)).fetchone():
            raise OptedOut(f"{identity['address']} has opted out of messages on this channel")
        conv = None
        if conversation_id is not None:
            conv = conn.execute(
                "SELECT * FROM conversation WHERE id = ? AND account = ? AND identity_id = ? AND channel = ?",
                (conversation_id, account, identity_id, channel),
            ).fetchone()
        if conv is None and not new_thread:
            conv = conn.execute(
                """SELECT * FROM conversation WHERE account = ? AND identity_id = ? AND channel = ?
                   ORDER BY last_message_at DESC LIMIT 1""",
                (account, identity_id, channel),
            ).fetchone()
        key = key or uuid.uuid4().hex
        preview = one_line(body, 160)
        if conv is None:
            conv_id = conn.execute(
                """INSERT INTO conversation (account, thread_key, channel, customer_id, identity_id, subject,
                       status, last_outbound_at, last_message_at, preview, message_count)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) RETURNING id""",
                (account, f"local:{key}", channel, identity["customer_id"], identity_id, subject,
                 "waiting" if purpose == "service" else status, at, at, preview),
            ).fetchone()[0]
        else:
            conv_id = conv["id"]
            _after_message(conn, conv, "out", at, preview, subject)
        message_id = conn.execute(
            """INSERT INTO message (conversation_id, account, external_id, channel, direction, identity_id,
                   sent_at, subject, body, status, author, created_at)
               VALUES (?, ?, ?, ?, 'out', ?, ?, ?, ?, 'queued', ?, ?) RETURNING id""",
            (conv_id, account, f"local:{key}", channel, identity_id, due if purpose == "marketing" else at, subject,
             body, author, at),
        ).fetchone()[0]
        outbox_id = conn.execute(
            """INSERT INTO outbox (message_id, account, idempotency_key, options, next_try_at, created_at, updated_at,
                   purpose) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
            (message_id, account, key, json.dumps(options or {}), due, at, at, purpose),
        ).fetchone()[0]
        return message_id, outbox_id

    def cancel_send(self, message_id: int) -> bool:
        """Undo a send that has not been handed to the channel yet. True if it was stopped."""
        with self.db.write() as conn:
            done = conn.execute(
                "UPDATE outbox SET state = 'cancelled', updated_at = ? WHERE message_id = ? AND state = 'pending'",
                (now(), message_id),
            ).rowcount
            if done:
                conn.execute("UPDATE message SET status = 'failed', status_detail = 'cancelled' WHERE id = ?",
                             (message_id,))
        return bool(done)

    def last_pending_send(self, author: str, accounts: list[str] | None = None) -> dict | None:
        """The newest reply of `author` still waiting in the outbox (its send delay not over): what
        `U` takes back, found in the store, so it works after a restart too."""
        row = self.db.query_one(
            """SELECT o.message_id, o.next_try_at, c.customer_id, cu.name, m.channel, m.body
               FROM outbox o JOIN message m ON m.id = o.message_id JOIN conversation c ON c.id = m.conversation_id
               JOIN customer cu ON cu.id = c.customer_id
               WHERE o.state = 'pending' AND m.author = ? AND o.attempts = 0 ORDER BY o.id DESC LIMIT 1""",
            (author,))
        return dict(row) if row else None

    def outbox_waiting(self) -> list[dict]:
        """Replies not delivered yet (pending or in doubt): state, when each is due, for which
        account. What quitting the app says about."""
        return [dict(r) for r in self.db.query(
            """SELECT o.id, o.account, o.state, o.next_try_at, m.channel FROM outbox o JOIN message m ON m.id = o.message_id
               WHERE o.state IN ('pending', 'sending') ORDER BY o.next_try_at""")]

    def _outgoing(self, conn: sqlite3.Connection, row: sqlite3.Row) -> Outgoing:
        msg = conn.execute(
            """SELECT m.*, c.thread_key, c.subject AS conversation_subject, i.kind AS id_kind, i.address AS id_address, i.display_name AS id_name
               FROM message m JOIN conversation c ON c.id = m.conversation_id JOIN identity i ON i.id = m.identity_id
               WHERE m.id = ?""",
            (row["message_id"],),
        ).fetchone()
        earlier = conn.execute(
            """SELECT external_id FROM message WHERE conversation_id = ? AND id != ? AND external_id NOT LIKE 'local:%'
               ORDER BY sent_at""",
            (msg["conversation_id"], msg["id"]),
        ).fetchall()
        # Through the customer's conversations (indexed), then each one's messages by time.
        taken = conn.execute(
            """SELECT m.external_id FROM conversation c
               JOIN message m ON m.conversation_id = c.id AND m.sent_at >= ?
               JOIN outbox o ON o.message_id = m.id
               WHERE c.customer_id = (SELECT customer_id FROM identity WHERE id = ?) AND c.identity_id = ?
                 AND c.account = ? AND m.id != ? AND m.external_id NOT LIKE 'local:%'""",
            (row["created_at"] - TAKEN_LOOKBACK, msg["identity_id"], msg["identity_id"], row["account"], msg["id"]),
        ).fetchall()
        return Outgoing(
            outbox_id=row["id"], message_id=msg["id"], account=row["account"], channel=msg["channel"],
            to=Address(msg["id_kind"], msg["id_address"], msg["id_name"]), body=msg["body"],
            subject=msg["subject"] or msg["conversation_subject"], idempotency_key=row["idempotency_key"],
            thread_key="" if msg["thread_key"].startswith("local:") else msg["thread_key"],
            thread_external_ids=tuple(r["external_id"] for r in earlier),
            options=json.loads(row["options"] or "{}"), attempt=row["attempts"], purpose=row["purpose"],
            created_at=row["created_at"],
            taken_external_ids=frozenset(r["external_id"] for r in taken),
        )

    def claim_due(self, accounts: list[str], limit: int = 20, marketing: int | None = None,
                  at: float | None = None, claimer: int | None = None) -> list[Outgoing]:
        """Mark due sends as 'sending' (committed) and return them: the point of no return.

        Replies first; then at most `marketing` campaign rows (None: no pacing), never those of
        a paused or cancelled campaign. Every row but a plain reply passes restraint first (a
        reply only its consent): refused rows are cancelled with their reason, held ones wait.
        `claimer`: the engine's token (its claims are leased to it; see the module's docstring)."""
        if not accounts:
            return []
        at = now() if at is None else at
        marks = ",".join("?" * len(accounts))
        claimed: list[Outgoing] = []
        # A serial write (unlike the other side transactions of several engines): restraint reads
        # the frequency cap's sends and then counts new ones, and a refusal fails a message, which
        # the episodes' hook must see. The row locks keep an engine checking a send in doubt out.
        with self.db.write() as conn:
            for _ in range(10):  # rows refused or held make room for the next due ones
                room = limit - len(claimed)
                if room <= 0:
                    break
                rows = conn.execute(
                    f"""SELECT * FROM outbox WHERE state = 'pending' AND next_try_at <= ? AND account IN ({marks})
                        AND purpose != 'marketing' ORDER BY next_try_at LIMIT ?{self.db.dialect.skip_locked}""",
                    (at, *accounts, room)).fetchall()
                budget = room - len(rows) if marketing is None else min(room - len(rows), marketing - _marketing(claimed))
                if budget > 0:
                    rows += conn.execute(
                        f"""SELECT * FROM outbox o WHERE state = 'pending' AND next_try_at <= ? AND account IN ({marks})
                            AND purpose = 'marketing' AND NOT EXISTS (
                                SELECT 1 FROM campaign_recipient cr JOIN campaign c ON c.id = cr.campaign_id
                                WHERE cr.outbox_id = o.id AND c.state != 'running')
                            ORDER BY next_try_at, id LIMIT ?{self.db.dialect.skip_locked}""", (at, *accounts, budget)).fetchall()
                if not rows:
                    break
                verdicts = self.restrain(conn, rows, at)
                before = len(claimed)
                for row in rows:
                    verdict = verdicts.get(row["id"])
                    if verdict is not None and verdict.held:
                        hold(conn, row["id"], row["message_id"], verdict.at, verdict.detail)
                        continue
                    if verdict is not None and not verdict.ok:
                        _refuse(conn, row, verdict.reason.value, verdict.detail)
                        continue
                    claimed_at = now()
                    conn.execute(
                        """UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?, claimed_by = ?,
                               next_try_at = ? WHERE id = ?""",
                        (claimed_at, claimer, claimed_at + SEND_LEASE if claimer is not None else row["next_try_at"],
                         row["id"]),
                    )
                    conn.execute("UPDATE message SET status = 'sending', status_detail = '' WHERE id = ?",
                                 (row["message_id"],))
                    if row["purpose"] == "marketing":
                        # What the frequency cap counts, from the moment it may have left.
                        conn.execute(
                            """INSERT INTO marketing_send (outbox_id, customer_id, at)
                               SELECT ?, c.customer_id, ? FROM message m JOIN conversation c ON c.id = m.conversation_id
                               WHERE m.id = ? ON CONFLICT (outbox_id) DO UPDATE SET at = excluded.at""",
                            (row["id"], at, row["message_id"]))
                    claimed.append(self._outgoing(conn, conn.execute("SELECT * FROM outbox WHERE id = ?",
                                                                     (row["id"],)).fetchone()))
                if len(claimed) > before and len(rows) < room:
                    break
        return claimed

    def _doubtful(self, claimer: int | None) -> tuple[str, list]:
        """SQL (and its parameters) for a 'sending' row that engine `claimer` may check: its
        lease or next check is due, or the engine that claimed it is gone."""
        gone, params = self.db.claim_gone_clause("claimed_by", "updated_at")
        return (f"(next_try_at <= ? OR (claimed_by IS NOT NULL AND claimed_by IS DISTINCT FROM ? AND {gone}))",
                [now(), claimer, *params])

    def left_by_a_gone_engine(self, accounts: list[str], claimer: int | None = None) -> bool:
        """Whether sends of these accounts are still 'sending' for an engine that is gone, too
        recently to be checked yet (its grace: it may only have lost its connection)."""
        if not accounts:
            return False
        marks = ",".join("?" * len(accounts))
        gone, params = self.db.claim_gone_clause("claimed_by", "updated_at", grace=False)
        return self.db.query_one(
            f"""SELECT 1 FROM outbox WHERE state = 'sending' AND account IN ({marks}) AND claimed_by IS NOT NULL
                AND claimed_by IS DISTINCT FROM ? AND {gone} LIMIT 1""", (*accounts, claimer, *params)) is not None

    def in_doubt(self, accounts: list[str], claimer: int | None = None) -> list[Outgoing]:
        """Sends left 'sending' by an engine that stopped mid-send (or whose answer was lost), due
        for a check with the service."""
        if not accounts:
            return []
        marks = ",".join("?" * len(accounts))
        doubtful, params = self._doubtful(claimer)
        with self.db.read() as conn:
            # In the order they were written: an earlier reply is matched first (console.channels.reconcile).
            rows = conn.execute(f"""SELECT * FROM outbox WHERE state = 'sending' AND {doubtful}
                                    AND account IN ({marks}) ORDER BY id""", (*params, *accounts)).fetchall()
            return [self._outgoing(conn, row) for row in rows]

    def still_in_doubt(self, outbox_id: int, claimer: int | None = None) -> Outgoing | None:
        """One send in doubt as the store knows it now (with the ids other replies took since the
        list was read), taken over by engine `claimer` so that no other engine checks it at the
        same time; None when it was settled, or taken by another engine, meanwhile."""
        doubtful, params = self._doubtful(claimer)
        with self.db.write(serial=False) as conn:
            row = conn.execute(
                f"""UPDATE outbox SET claimed_by = ?, updated_at = ?, next_try_at = ?
                    WHERE id = ? AND state = 'sending' AND {doubtful} RETURNING *""",
                (claimer, now(), now() + SEND_LEASE if claimer is not None else now(), outbox_id, *params)).fetchone()
            return self._outgoing(conn, row) if row is not None else None

    def next_due_at(self, accounts: list[str]) -> float | None:
        """When the next send of these accounts is due (a paused campaign's rows wait: not due)."""
        if not accounts:
            return None
        marks = ",".join("?" * len(accounts))
        row = self.db.query_one(
            f"""SELECT MIN(next_try_at) AS t FROM outbox o WHERE state = 'pending' AND account IN ({marks})
                AND NOT EXISTS (SELECT 1 FROM campaign_recipient cr JOIN campaign c ON c.id = cr.campaign_id
                                WHERE cr.outbox_id = o.id AND c.state != 'running')""", accounts
        )
        return row["t"] if row else None

    def record_sent(self, out: Outgoing, result: SendResult) -> bool:
        """Record what the channel answered. False when the answer names a message that is already
        another reply of ours: nothing is deleted, this send is left 'unknown' for a person."""
        with self.db.write() as conn:
            # The channel's own pull may have stored this very message already (e.g. found in the
            # Sent folder before we recorded the send): keep ours, drop the copy.
            twin = conn.execute(
                "SELECT m.id, m.conversation_id, m.status, m.status_detail, o.id AS outbox_id FROM message m "
                "LEFT JOIN outbox o ON o.message_id = m.id WHERE m.account = ? AND m.external_id = ? AND m.id != ?",
                (out.account, result.external_id, out.message_id),
            ).fetchone()
            if twin is not None and twin["outbox_id"] is not None:
                # Not a pulled copy: another reply's own message (an identical earlier reply taken
                # for this one). Guessing either way could send twice or lose a reply.
                detail = (f"the service named message {result.external_id} as this reply, but that is another reply "
                          "already sent; check whether this one arrived before sending it again")
                _fail(conn, out, detail, "unknown")
                return False
            status, detail = result.status, result.detail
            # The pulled copy may already know a later status than the send's answer ("delivered"
            # after "queued"): a status never moves backwards.
            if (twin and twin["status"] in DELIVERY_STATES and status in DELIVERY_STATES and twin["status"] != "unknown"
                    and DELIVERY_STATES.index(twin["status"]) > DELIVERY_STATES.index(status)):
                status, detail = twin["status"], twin["status_detail"]
            if twin:
                conn.execute("DELETE FROM message WHERE id = ?", (twin["id"],))
                conn.execute("UPDATE conversation SET message_count = message_count - 1 WHERE id = ?",
                             (twin["conversation_id"],))
            conn.execute(
                """UPDATE message SET external_id = ?, status = ?, status_detail = ?, sent_at = COALESCE(?, sent_at)
                   WHERE id = ?""",
                (result.external_id, status, detail, result.sent_at, out.message_id),
            )
            if result.thread_key:
                conn.execute(
                    """UPDATE conversation SET thread_key = ? WHERE id = (SELECT conversation_id FROM message WHERE id = ?)
                       AND thread_key LIKE 'local:%'
                       AND NOT EXISTS (SELECT 1 FROM conversation WHERE account = ? AND thread_key = ?)""",
                    (result.thread_key, out.message_id, out.account, result.thread_key),
                )
            conn.execute("UPDATE outbox SET state = 'sent', last_error = '', updated_at = ? WHERE id = ?",
                         (now(), out.outbox_id))
        return True

    def record_checking(self, out: Outgoing, error: str, next_check_at: float) -> None:
        """A send in doubt that could not be checked yet: it stays 'sending' and is asked about later."""
        with self.db.write() as conn:
            conn.execute("UPDATE outbox SET last_error = ?, next_try_at = ?, updated_at = ? WHERE id = ?",
                         (error, next_check_at, now(), out.outbox_id))
            conn.execute("UPDATE message SET status = 'unknown', status_detail = ? WHERE id = ?",
                         (f"checking whether it was sent: {error}", out.message_id))

    def send_again(self, message_id: int) -> int:
        """Queue a copy of an outbound message whose delivery failed or is unknown, under a new
        idempotency key (the user checked and wants it sent); returns the new message id."""
        row = self.db.query_one("SELECT * FROM message WHERE id = ? AND direction = 'out'", (message_id,))
        if row is None or row["status"] not in ("failed", "undelivered", "unknown"):
            raise ValueError("only a failed, cancelled, undelivered or unknown reply can be sent again")
        return self.enqueue_reply(row["identity_id"], row["account"], row["channel"], row["body"],
                                  subject=row["subject"], author=row["author"] or "",
                                  conversation_id=row["conversation_id"])

    def record_retry(self, out: Outgoing, error: str, next_try_at: float) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE outbox SET state = 'pending', last_error = ?, next_try_at = ?, updated_at = ? WHERE id = ?",
                (error, next_try_at, now(), out.outbox_id),
            )
            conn.execute("DELETE FROM marketing_send WHERE outbox_id = ?", (out.outbox_id,))  # it never left
            conn.execute("UPDATE message SET status = 'queued', status_detail = ? WHERE id = ?",
                         (f"will retry: {error}", out.message_id))

    def record_failed(self, out: Outgoing, error: str, opted_out: bool = False, status: str = "failed") -> None:
        with self.db.write() as conn:
            _fail(conn, out, error, status)
            if status == "failed":  # certainly not delivered: the cap does not count it
                conn.execute("DELETE FROM marketing_send WHERE outbox_id = ?", (out.outbox_id,))
            if opted_out:
                identity = conn.execute("SELECT identity_id FROM message WHERE id = ?", (out.message_id,)).fetchone()
                self.withdraw_for_refusal(conn, identity["identity_id"], out.channel, one_line(error, 200))

    def retry_failed(self, message_id: int) -> bool:
        """The user asks to send a failed message again."""
        with self.db.write() as conn:
            done = conn.execute(
                """UPDATE outbox SET state = 'pending', next_try_at = ?, updated_at = ?
                   WHERE message_id = ? AND state = 'failed'""",
                (now(), now(), message_id),
            ).rowcount
            if done:
                conn.execute("UPDATE message SET status = 'queued', status_detail = '' WHERE id = ?", (message_id,))
        return bool(done)


def _marketing(claimed: list[Outgoing]) -> int:
    return sum(1 for out in claimed if out.purpose == "marketing")


def hold(conn: sqlite3.Connection, outbox_id: int, message_id: int, until: float, detail: str) -> None:
    """Quiet hours in the recipient's time: the row waits until `until`, and says so (`detail`,
    the policy's words: "held for quiet hours until Tue 09:00 Europe/Berlin")."""
    conn.execute("UPDATE outbox SET next_try_at = ?, last_error = ?, updated_at = ? WHERE id = ?",
                 (until, "held for quiet hours", now(), outbox_id))
    conn.execute("UPDATE message SET status = 'queued', status_detail = ?, sent_at = ? WHERE id = ?",
                 (detail, until, message_id))


def _refuse(conn: sqlite3.Connection, row: sqlite3.Row, code: str, sentence: str) -> None:
    """Restraint said no: never sent, never retried, the reason kept."""
    conn.execute("UPDATE outbox SET state = 'cancelled', refusal = ?, last_error = ?, updated_at = ? WHERE id = ?",
                 (code, sentence, now(), row["id"]))
    conn.execute("UPDATE message SET status = 'failed', status_detail = ? WHERE id = ?",
                 (f"not sent: {sentence}", row["message_id"]))


def _fail(conn: sqlite3.Connection, out: Outgoing, error: str, status: str) -> None:
    """The send is over without a known result: never tried again unless a person asks."""
    conn.execute("UPDATE outbox SET state = 'failed', last_error = ?, updated_at = ? WHERE id = ?",
                 (error, now(), out.outbox_id))
    conn.execute("UPDATE message SET status = ?, status_detail = ? WHERE id = ?", (status, error, out.message_id))
