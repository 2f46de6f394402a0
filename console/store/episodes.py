"""Episodes: each need of a customer in a conversation, kept at write time for the reports, the
SLA clocks and the rules.

An episode starts with a customer's message on a conversation that has none running (a new
conversation, one that was done, or one where we had the last word and all was quiet for a day:
a customer who writes again the next day about something else has a new need, even in an SMS
thread that never ends). It records the first response (our first reply that a person wrote:
replies console sent on its own — a rule's, the satisfaction question — do not count), the
intervals during which we owed the customer an answer, and when it was resolved:

- marked done after our reply (the customer had our answer): resolved at that reply, so a
  conversation closed by `close_waiting_after_days` days later is not counted as days slower;
- marked done while the customer waited: resolved when it was marked;
- a new need after a quiet day: resolved at our last reply (`resolution = 'quiet'`).

A conversation reopened by hand starts an episode at that moment. Triggers note every new
message, unsent reply and status change in `episode_change`; `record_episodes` runs just before
each commit (registered with the `Database` before the list's refresh, as it may close a
conversation again) and turns those notes into episodes, into `event` rows for the rules and the
consoles' notifications (only for messages at most `FRESH_FOR` old: a first sync of six weeks of
history triggers nothing), and into SLA clocks to recompute (`sla_dirty`). A customer's reply to
the satisfaction question that is only a rating is recorded on the conversation and leaves it
closed (console/csat.py reads it).

History synced out of order (a Sent folder read after the inbox) gives approximate episodes:
within one commit a conversation's messages are taken in time order, across commits in the
order they came.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from console.csat import parse_reply
from console.store import db as clock

AUTOMATIC = "auto:"  # author of what console sent on its own: "auto:rule wholesale", "auto:csat"
QUIET_GAP = 86400.0  # after our reply and this long quiet, a customer's message is a new need
FRESH_FOR = 6 * 3600.0  # a message older than this when stored is history: no event
EVENTS_KEPT = 50_000
CHUNK = 20_000
CSAT_AUTHOR = AUTOMATIC + "csat"


def is_automatic(author: str | None) -> bool:
    return bool(author) and author.startswith(AUTOMATIC)


@dataclass
class _Episode:
    id: int | None
    conversation_id: int
    account: str
    channel: str
    kind: str
    started_at: float
    first_response_at: float | None = None
    responder: str | None = None
    last_inbound_at: float | None = None
    last_outbound_at: float | None = None
    owed_since: float | None = None
    owed: list = field(default_factory=list)
    resolved_at: float | None = None
    resolution: str | None = None
    closed_at: float | None = None
    changed: bool = False

    def resolve(self, at: float, how: str, closed_at: float | None = None) -> None:
        if self.owed_since is not None:
            self.owed.append([self.owed_since, max(at, self.owed_since)])
            self.owed_since = None
        self.resolved_at, self.resolution, self.closed_at, self.changed = at, how, closed_at, True


_COLUMNS = ("conversation_id", "account", "channel", "kind", "started_at", "first_response_at", "responder",
            "last_inbound_at", "last_outbound_at", "owed_since", "owed", "resolved_at", "resolution", "closed_at")


def _values(ep: _Episode) -> tuple:
    return (ep.conversation_id, ep.account, ep.channel, ep.kind, ep.started_at, ep.first_response_at, ep.responder,
            ep.last_inbound_at, ep.last_outbound_at, ep.owed_since, json.dumps(ep.owed), ep.resolved_at,
            ep.resolution, ep.closed_at)


def _in_chunks(conn: sqlite3.Connection, sql: str, ids: list, extra: tuple = ()) -> list[sqlite3.Row]:
    out = []
    for first in range(0, len(ids), 500):
        part = ids[first:first + 500]
        out += conn.execute(sql.format(marks=",".join("?" * len(part))), (*part, *extra)).fetchall()
    return out


def record_episodes(conn: sqlite3.Connection) -> None:
    """Turn the changes noted by the triggers into episodes, events and dirty SLA clocks."""
    while True:
        changes = conn.execute("SELECT * FROM episode_change ORDER BY seq LIMIT ?", (CHUNK,)).fetchall()
        if not changes:
            return
        _Batch(conn, changes).run()
        conn.execute("DELETE FROM episode_change WHERE seq <= ?", (changes[-1]["seq"],))


class _Batch:
    def __init__(self, conn: sqlite3.Connection, changes: list[sqlite3.Row]):
        self.conn = conn
        self.changes = changes
        self.now = clock.now()
        self.conversations = sorted({c["conversation_id"] for c in changes})
        self.new: list[_Episode] = []
        self.replaced: list[_Episode] = []  # stored episodes this batch closed and followed with a new one
        self.current: dict[int, _Episode] = {}
        self.events: list[tuple] = []
        self.ratings: list[tuple] = []
        self.closed_again: list[int] = []

    def run(self) -> None:
        conn = self.conn
        message_ids = [c["message_id"] for c in self.changes if c["message_id"] is not None]
        self.messages = {r["id"]: r for r in _in_chunks(
            conn, "SELECT id, direction, sent_at, author, status FROM message WHERE id IN ({marks})", message_ids)}
        convs = {r["id"]: r for r in _in_chunks(
            conn, "SELECT id, account, channel FROM conversation WHERE id IN ({marks})", self.conversations)}
        for r in _in_chunks(conn, """SELECT * FROM episode WHERE id IN (SELECT MAX(id) FROM episode
                                    WHERE conversation_id IN ({marks}) GROUP BY conversation_id)""", self.conversations):
            self.current[r["conversation_id"]] = _Episode(
                r["id"], r["conversation_id"], r["account"], r["channel"], r["kind"], r["started_at"],
                r["first_response_at"], r["responder"], r["last_inbound_at"], r["last_outbound_at"], r["owed_since"],
                json.loads(r["owed"] or "[]"), r["resolved_at"], r["resolution"], r["closed_at"])
        self.asked = {r["conversation_id"]: r["asked_at"] for r in _in_chunks(
            conn, """SELECT conversation_id, asked_at FROM csat WHERE conversation_id IN ({marks})
                     AND asked_at IS NOT NULL AND rating IS NULL""", self.conversations)}
        by_conversation: dict[int, list[sqlite3.Row]] = {}
        for change in self.changes:
            by_conversation.setdefault(change["conversation_id"], []).append(change)
        for conversation_id, changes in by_conversation.items():
            conv = convs.get(conversation_id)
            if conv is not None:
                self._conversation(conv, self._ordered(changes))
        self._write()

    def _ordered(self, changes: list[sqlite3.Row]) -> list[sqlite3.Row]:
        """Messages in time order between the status changes that open or close an episode."""
        out, run = [], []

        def flush():
            run.sort(key=lambda c: (self.messages[c["message_id"]]["sent_at"], c["message_id"])
                     if c["message_id"] in self.messages else (0.0, 0))
            out.extend(run)
            run.clear()

        for change in changes:
            if change["message_id"] is not None and change["new_status"] is None:
                run.append(change)
            elif change["new_status"] in ("done", "unsent") or change["old_status"] == "done":
                flush()
                out.append(change)
            # open <-> waiting <-> snoozed follow from messages: nothing to do but the SLA clock
        flush()
        return out

    # ---- one conversation -------------------------------------------------------------------
    def _conversation(self, conv: sqlite3.Row, changes: list[sqlite3.Row]) -> None:
        cid = conv["id"]
        reopened_by_message = False
        for index, change in enumerate(changes):
            if change["message_id"] is None:
                if change["new_status"] == "done" and change["old_status"] != "done":
                    self._done(cid, change["old_status"])
                elif change["old_status"] == "done":
                    following = changes[index + 1] if index + 1 < len(changes) else None
                    msg = self.messages.get(following["message_id"]) if following is not None else None
                    if msg is not None and msg["direction"] == "in" and following["new_status"] is None:
                        reopened_by_message = True  # the customer's message starts the episode
                    else:
                        self._start(conv, self.now, "reopened", None)
                continue
            msg = self.messages.get(change["message_id"])
            if msg is None:
                continue
            if change["new_status"] == "unsent":
                self._unsent(cid, msg)
            elif msg["direction"] == "in":
                self._inbound(conv, msg, reopened_by_message)
                reopened_by_message = False
            else:
                self._outbound(cid, msg)

    def _start(self, conv: sqlite3.Row, at: float, kind: str, message_id: int | None) -> _Episode:
        ep = _Episode(None, conv["id"], conv["account"], conv["channel"], kind, at, owed_since=at, changed=True)
        previous = self.current.get(conv["id"])
        if previous is not None and previous.id is not None:
            self.replaced.append(previous)
        self.new.append(ep)
        self.current[conv["id"]] = ep
        if message_id is not None and at >= self.now - FRESH_FOR:
            self.events.append(("conversation_opened" if kind == "new" else "conversation_reopened", conv["id"],
                                message_id, at))
        return ep

    def _inbound(self, conv: sqlite3.Row, msg: sqlite3.Row, reopened: bool) -> None:
        cid, at = conv["id"], msg["sent_at"]
        asked = self.asked.get(cid)
        if asked is not None and at >= asked:
            body = self.conn.execute("SELECT body FROM message WHERE id = ?", (msg["id"],)).fetchone()["body"]
            answer = parse_reply(body)
            if answer.rating is not None:
                self.ratings.append((answer.rating, answer.comment, at, cid))
                del self.asked[cid]
                if answer.bare and reopened:
                    self.closed_again.append(cid)  # a rating only: recorded, the conversation stays done
                    return
        ep = self.current.get(cid)
        quiet = (ep is not None and ep.resolved_at is None and ep.owed_since is None and ep.first_response_at is not None
                 and ep.last_outbound_at is not None and at - ep.last_outbound_at >= QUIET_GAP)
        if quiet:
            ep.resolve(ep.last_outbound_at, "quiet")
        if ep is None or quiet or (ep.resolved_at is not None and at >= ep.resolved_at):
            ep = self._start(conv, at, "new" if ep is None else "reopened", msg["id"])
            ep.last_inbound_at = at
        else:
            ep.changed = True
            ep.last_inbound_at = at if ep.last_inbound_at is None else max(ep.last_inbound_at, at)
            if ep.resolved_at is None and ep.owed_since is None:
                ep.owed_since = at
            if at < ep.started_at:
                ep.started_at = at
        if at >= self.now - FRESH_FOR:
            self.events.append(("message_received", cid, msg["id"], at))

    def _outbound(self, cid: int, msg: sqlite3.Row) -> None:
        ep = self.current.get(cid)
        at = msg["sent_at"]
        if ep is None or at < ep.started_at or is_automatic(msg["author"]) or msg["status"] == "failed":
            return
        ep.changed = True
        ep.last_outbound_at = at if ep.last_outbound_at is None else max(ep.last_outbound_at, at)
        if ep.first_response_at is None or at < ep.first_response_at:
            ep.first_response_at, ep.responder = at, msg["author"]
        if ep.owed_since is not None and at >= ep.owed_since and ep.resolved_at is None:
            ep.owed.append([ep.owed_since, at])
            ep.owed_since = None

    def _unsent(self, cid: int, msg: sqlite3.Row) -> None:
        """A reply taken back or refused: it answered nothing."""
        ep = self.current.get(cid)
        if ep is None or is_automatic(msg["author"]):
            return
        at = msg["sent_at"]
        if ep.owed and ep.owed[-1][1] == at and ep.owed_since is None and ep.resolved_at is None:
            ep.owed_since = ep.owed.pop()[0]
            ep.changed = True
        if ep.first_response_at == at:
            row = self.conn.execute(
                f"""SELECT sent_at, author FROM message WHERE conversation_id = ? AND direction = 'out' AND id != ?
                    AND sent_at >= ? AND status IS DISTINCT FROM 'failed'
                    AND (author IS NULL OR author NOT LIKE '{AUTOMATIC}%') ORDER BY sent_at LIMIT 1""",
                (cid, msg["id"], ep.started_at)).fetchone()
            ep.first_response_at, ep.responder = (row["sent_at"], row["author"]) if row else (None, None)
            ep.changed = True

    def _done(self, cid: int, old_status: str | None) -> None:
        ep = self.current.get(cid)
        if ep is None or ep.resolved_at is not None:
            return
        if old_status == "history":  # closed before episodes were kept: at its last message
            at = max(t for t in (ep.last_outbound_at, ep.last_inbound_at, ep.started_at) if t is not None)
            ep.resolve(at, "done", at)
            return
        if ep.owed_since is None and ep.last_outbound_at is not None:
            at = ep.last_outbound_at  # the customer had our answer
        else:
            at = self.now
        ep.resolve(at, "done", self.now)

    # ---- writing back -----------------------------------------------------------------------
    def _write(self) -> None:
        conn = self.conn
        stored = {id(ep): ep for ep in (*self.current.values(), *self.replaced) if ep.id is not None}
        changed = [ep for ep in stored.values() if ep.changed]
        if changed:
            sets = ", ".join(f"{c} = ?" for c in _COLUMNS[4:])
            conn.executemany(f"UPDATE episode SET {sets} WHERE id = ?", [(*_values(ep)[4:], ep.id) for ep in changed])
        if self.new:
            marks = ", ".join("?" * len(_COLUMNS))
            conn.executemany(f"INSERT INTO episode ({', '.join(_COLUMNS)}) VALUES ({marks})",
                             [_values(ep) for ep in self.new])
        if self.events:
            conn.executemany("INSERT INTO event (kind, conversation_id, message_id, at) VALUES (?, ?, ?, ?)",
                             self.events)
            top = conn.execute("SELECT MAX(seq) FROM event").fetchone()[0] or 0
            if top % 1000 < len(self.events):
                conn.execute("DELETE FROM event WHERE seq <= ?", (top - EVENTS_KEPT,))
        if self.ratings:
            conn.executemany("UPDATE csat SET rating = ?, comment = ?, rated_at = ? WHERE conversation_id = ?",
                             self.ratings)
        for cid in self.closed_again:
            conn.execute("UPDATE conversation SET status = 'done', waiting_since = NULL, snooze_until = NULL "
                         "WHERE id = ?", (cid,))
        conn.executemany("INSERT INTO sla_dirty (conversation_id) VALUES (?) ON CONFLICT (conversation_id) DO NOTHING",
                         [(cid,) for cid in self.conversations])
