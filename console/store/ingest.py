"""Bringing what adapters pulled into the store: identities, conversations, messages, cursors.

Everything of one `PullResult` is applied in one transaction together with the cursor that covers
it, and every step is idempotent (messages are unique per account and external id), so a crash at
any point and a repeated pull lose nothing and duplicate nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sqlite3
import uuid

from console.identity import normalize
from console.model import Address, InboundMessage, PullResult
from console.sanitize import one_line
from console.store.db import Database, now
from console.store.rawfile import RawFile, digest
from console.store.searchindex import SearchIndex

PREVIEW_LENGTH = 160
SUBJECT_THREAD_DAYS = 60


@functools.lru_cache(maxsize=8192)
def _normalized(kind: str, address: str, region: str) -> str:
    # A first sync meets each sender many times; parsing the address (email.utils, phonenumbers)
    # once each cost 1.8 s of the store's time over 20,000 mails.
    return normalize(kind, address, region)


def resolve_identity(conn: sqlite3.Connection, peer: Address, region: str, at: float,
                     links: tuple[Address, ...] = ()) -> tuple[int, int]:
    """(identity id, customer id) for an address, creating both on first sight.

    Same normalised (kind, address) = same customer: that is how an SMS and a WhatsApp from one
    number, or one email address on two mailboxes, meet. A new identity with `links` (addresses
    the service vouches for) joins the customer of the first linked identity already stored.
    """
    address = _normalized(peer.kind, peer.address, region)
    row = conn.execute(
        "SELECT id, customer_id, display_name FROM identity WHERE kind = ? AND address = ?",
        (peer.kind, address),
    ).fetchone()
    if row:
        if peer.display_name and not row["display_name"]:
            conn.execute("UPDATE identity SET display_name = ? WHERE id = ?", (peer.display_name, row["id"]))
            conn.execute(
                "UPDATE customer SET name = ? WHERE id = ? AND name = ''", (peer.display_name, row["customer_id"])
            )
        return row["id"], row["customer_id"]
    customer_id = None
    for link in links:
        found = conn.execute("SELECT customer_id FROM identity WHERE kind = ? AND address = ?",
                             (link.kind, _normalized(link.kind, link.address, region))).fetchone()
        if found:
            customer_id = found["customer_id"]
            break
    if customer_id is None:
        name = peer.display_name or address
        customer_id = conn.execute(
            "INSERT INTO customer (name, created_at, updated_at) VALUES (?, ?, ?) RETURNING id", (name, at, at)
        ).fetchone()[0]
    identity_id = conn.execute(
        "INSERT INTO identity (customer_id, kind, address, display_name, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (customer_id, peer.kind, address, peer.display_name, at),
    ).fetchone()[0]
    return identity_id, customer_id


def _preview(text: str) -> str:
    """The list's one line of a message. Only the start can reach it: cleaning a whole 50 KB body
    for 160 characters cost a millisecond a message in the email benchmark, and twice the
    length is nearly always enough (more is read when blank lines and controls took the rest)."""
    preview = one_line(text[: PREVIEW_LENGTH * 2], PREVIEW_LENGTH)
    if len(preview) < PREVIEW_LENGTH and len(text) > PREVIEW_LENGTH * 2:
        preview = one_line(text[: PREVIEW_LENGTH * 8], PREVIEW_LENGTH)
    return preview


def _find_conversation(conn: sqlite3.Connection, account: str, msg: InboundMessage,
                       customer_id: int) -> sqlite3.Row | None:
    row = conn.execute(
        "SELECT * FROM conversation WHERE account = ? AND thread_key = ?", (account, msg.thread_key)
    ).fetchone()
    if row:
        return row
    if msg.related_keys:
        keys = list(msg.related_keys)[-50:]
        marks = ",".join("?" * len(keys))
        row = conn.execute(
            f"""SELECT c.* FROM message m JOIN conversation c ON c.id = m.conversation_id
                WHERE m.account = ? AND m.external_id IN ({marks})
                ORDER BY m.sent_at DESC LIMIT 1""",
            (account, *keys),
        ).fetchone() or conn.execute(
            f"SELECT * FROM conversation WHERE account = ? AND thread_key IN ({marks}) LIMIT 1", (account, *keys)
        ).fetchone()
        if row:
            return row
    if msg.reply_subject:
        recent = conn.execute(
            """SELECT * FROM conversation WHERE customer_id = ? AND account = ? AND last_message_at >= ?
               ORDER BY last_message_at DESC LIMIT 50""",
            (customer_id, account, msg.sent_at - SUBJECT_THREAD_DAYS * 86400),
        )
        for candidate in recent:
            # Conversations stored before schema 5, or opened by the outbox, have no key of their
            # own: their subject, folded, stands in for it.
            if (candidate["subject_key"] or fold_subject(candidate["subject"])) == msg.reply_subject:
                return candidate
    return None


def fold_subject(subject: str) -> str:
    """A subject without case or runs of spaces. The channel's own rules (email's "Re:" prefixes)
    are applied by the adapter, which hands over `reply_subject` already folded."""
    return " ".join((subject or "").casefold().split())


def _subject_key(msg: InboundMessage) -> str:
    """What a conversation opened by `msg` is found by when a later reply has only its subject:
    the key the adapter gave for a reply, else the folded subject."""
    return msg.reply_subject or fold_subject(msg.subject)


def _after_message(conn: sqlite3.Connection, conv: sqlite3.Row, direction: str, at: float,
                   preview: str, subject: str, subject_key: str | None = None) -> None:
    """Update a conversation's times and status for one new message.

    A customer message newer than our last reply (re)opens it, including a done or snoozed one;
    our reply newer than their last message moves an open conversation to waiting.
    """
    if subject_key is None:
        subject_key = fold_subject(subject)
    status, waiting_since = conv["status"], conv["waiting_since"]
    last_in, last_out = conv["last_inbound_at"], conv["last_outbound_at"]
    if direction == "in":
        if last_out is None or at > last_out:
            if status != "open":
                status, waiting_since = "open", at
            else:
                waiting_since = at if waiting_since is None else min(waiting_since, at)
        last_in = at if last_in is None else max(last_in, at)
    else:
        if last_in is None or at >= last_in:
            if status == "open":
                status = "waiting"
            waiting_since = None
        last_out = at if last_out is None else max(last_out, at)
    newest = at >= conv["last_message_at"]
    conn.execute(
        """UPDATE conversation SET status = ?, waiting_since = ?, last_inbound_at = ?, last_outbound_at = ?,
               last_message_at = CASE WHEN last_message_at >= ? THEN last_message_at ELSE ? END,
               message_count = message_count + 1,
               preview = CASE WHEN ? THEN ? ELSE preview END,
               subject_key = CASE WHEN subject = '' THEN ? ELSE subject_key END,
               subject = CASE WHEN subject = '' THEN ? ELSE subject END,
               snooze_until = CASE WHEN ? = 'snoozed' THEN snooze_until ELSE NULL END
           WHERE id = ?""",
        (status, waiting_since, last_in, last_out, at, at, newest, preview, subject_key, subject, status, conv["id"]),
    )


def insert_message(conn: sqlite3.Connection, account: str, msg: InboundMessage, region: str,
                   author: str | None = None, raw_sha: str | None = None) -> int | None:
    """Insert one message (and its customer, identity and conversation as needed). Its raw bytes
    are already in the raw file under `raw_sha` (see `apply_pull`).

    Returns the new message id, or None when (account, external id) is already stored — in which
    case only an edit or a status is applied.
    """
    at = now()
    existing = conn.execute(
        "SELECT id, body, fingerprint FROM message WHERE account = ? AND external_id = ?", (account, msg.external_id)
    ).fetchone()
    if existing and msg.fingerprint and existing["fingerprint"] and existing["fingerprint"] != msg.fingerprint:
        # Another message under a known id (a sender reusing a Message-ID): keep it, under its own
        # id, and in its own thread unless it points at one.
        own = f"{msg.external_id}#{msg.fingerprint}"
        msg = dataclasses.replace(msg, external_id=own,
                                  thread_key=own if msg.thread_key == msg.external_id else msg.thread_key)
        existing = conn.execute(
            "SELECT id, body, fingerprint FROM message WHERE account = ? AND external_id = ?", (account, own)
        ).fetchone()
    if existing:
        if msg.edited and msg.body != existing["body"]:
            conn.execute("UPDATE message SET body = ?, edited = 1 WHERE id = ?", (msg.body, existing["id"]))
        if msg.status:
            conn.execute(
                "UPDATE message SET status = ?, status_detail = ? WHERE id = ?",
                (msg.status, msg.status_detail, existing["id"]),
            )
        return None
    identity_id, customer_id = resolve_identity(conn, msg.peer, region, at, msg.peer_links)
    preview = _preview(msg.body or msg.subject)
    conv = _find_conversation(conn, account, msg, customer_id)
    if conv is None:
        status = "open" if msg.direction == "in" else "waiting"
        conv_id = conn.execute(
            """INSERT INTO conversation (account, thread_key, channel, customer_id, identity_id, subject, subject_key,
                   status, waiting_since, last_inbound_at, last_outbound_at, last_message_at, preview, message_count)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) RETURNING id""",
            (account, msg.thread_key, msg.channel, customer_id, identity_id, msg.subject, _subject_key(msg), status,
             msg.sent_at if status == "open" else None,
             msg.sent_at if msg.direction == "in" else None,
             msg.sent_at if msg.direction == "out" else None,
             msg.sent_at, preview),
        ).fetchone()[0]
    else:
        conv_id = conv["id"]
        _after_message(conn, conv, msg.direction, msg.sent_at, preview, msg.subject, _subject_key(msg))
    # HTML is kept only when it is the original (Mastodon): an email's HTML is in its raw bytes,
    # and storing it twice cost a tenth of a millisecond a message in a mailbox's first sync.
    attachments = json.dumps([
        {"name": a.name, "content_type": a.content_type, "size": a.size, "ref": a.ref} for a in msg.attachments
    ]) if msg.attachments else None
    return conn.execute(
        """INSERT INTO message (conversation_id, account, external_id, channel, direction, identity_id, sent_at,
               subject, body, html, raw_sha, attachments, status, status_detail, author, edited, created_at, fingerprint)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
        (conv_id, account, msg.external_id, msg.channel, msg.direction, identity_id, msg.sent_at,
         msg.subject, msg.body, msg.html if msg.raw is None else None, raw_sha, attachments,
         msg.status or ("sent" if msg.direction == "out" else None), msg.status_detail, author,
         int(msg.edited), at, msg.fingerprint or None),
    ).fetchone()[0]


class IngestMixin:
    db: Database
    raw: RawFile
    index: SearchIndex
    region: str

    def apply_pull(self, account: str, result: PullResult) -> int:
        """Apply one pull in one transaction; returns how many messages were new.

        The raw bytes go to the raw file from its own thread while the messages are inserted, and
        are committed first: a message never names bytes that are not stored."""
        added = 0
        shas = [digest(msg.raw) if msg.raw is not None else None for msg in result.messages]
        blobs = {sha: msg.raw for sha, msg in zip(shas, result.messages) if sha is not None}
        raw_saved = self.raw.put_soon(blobs) if blobs else None
        taken = self.index.hwm()
        with self.db.write() as conn:
            for msg, sha in zip(result.messages, shas):
                if insert_message(conn, account, msg, self.region, raw_sha=sha) is not None:
                    added += 1
            for update in result.status_updates:
                conn.execute(
                    "UPDATE message SET status = ?, status_detail = ? WHERE account = ? AND external_id = ?",
                    (update.status, update.detail, account, update.external_id),
                )
            # Opt-outs (what adapters report, and the keywords the engine read in the messages,
            # console/outreach/keywords.py) in the same transaction: a STOP is never stored
            # without its effect.
            self.apply_opt_out_changes(conn, account, result.opt_outs,
                                       lambda peer: resolve_identity(conn, peer, self.region, now()))
            # What the search index has taken from its queue (searchindex.py) is cleared here,
            # in a transaction the store opens anyway, rather than by the indexer taking the lock.
            conn.execute("DELETE FROM search_queue WHERE seq <= ?", (taken,))
            if result.cursor is not None:
                conn.execute(
                    """INSERT INTO cursor (account, value, updated_at) VALUES (?, ?, ?)
                       ON CONFLICT (account) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at""",
                    (account, result.cursor, now()),
                )
            if raw_saved is not None:
                raw_saved.result()  # raises (and rolls back) if the bytes could not be stored
        return added

    def cursor(self, account: str) -> str | None:
        row = self.db.query_one("SELECT value FROM cursor WHERE account = ?", (account,))
        return row["value"] if row else None

    def new_thread_key(self) -> str:
        return f"local:{uuid.uuid4().hex}"
