"""The satisfaction question in the store: which closed conversations to ask, and asking once.

A conversation is asked at most once (`csat` is keyed by conversation): the question and its
row are written in one transaction, through the outbox like any reply, by the engine's CSAT duty
(console/csat_duty.py). The answer is read by the episode hook (console/store/episodes.py) when
the customer's message arrives.
"""

from __future__ import annotations

import json

from console.store import db as clock
from console.store.db import Database
from console.store.episodes import CSAT_AUTHOR


class CsatMixin:
    db: Database

    def csat_candidates(self, closed_after: float, closed_before: float, limit: int = 200) -> list[dict]:
        """Conversations done (and still done) whose episode we answered and that were closed in
        the window, not asked yet: with the identity, its opt-out, the channel and the customer's
        attributes."""
        rows = self.db.query(
            """SELECT c.id, c.customer_id, c.channel, c.account, c.last_inbound_at, i.kind, i.address,
                      EXISTS (SELECT 1 FROM consent k WHERE k.identity_id = c.identity_id AND k.channel = c.channel
                              AND k.purpose = 'service' AND k.state = 'withdrawn') AS opted_out,
                      cu.attributes, e.id AS episode_id, e.closed_at
               FROM episode e JOIN conversation c ON c.id = e.conversation_id
               JOIN identity i ON i.id = c.identity_id JOIN customer cu ON cu.id = c.customer_id
               WHERE e.closed_at >= ? AND e.closed_at <= ? AND e.resolution = 'done'
                 AND e.first_response_at IS NOT NULL AND c.status = 'done'
                 AND e.id = (SELECT MAX(id) FROM episode WHERE conversation_id = c.id)
                 AND NOT EXISTS (SELECT 1 FROM csat s WHERE s.conversation_id = c.id)
               ORDER BY e.closed_at LIMIT ?""", (closed_after, closed_before, limit))
        return [{**dict(r), "attributes": json.loads(r["attributes"] or "{}")} for r in rows]

    def ask_csat(self, conversation_id: int, episode_id: int, question: str) -> int | None:
        """Queue the question on the conversation, once; returns its message id (None: asked before)."""
        with self.db.write() as conn:
            taken = conn.execute(
                """INSERT INTO csat (conversation_id, episode_id, asked_at) VALUES (?, ?, ?)
                   ON CONFLICT (conversation_id) DO NOTHING RETURNING conversation_id""",
                (conversation_id, episode_id, clock.now())).fetchone()
            if taken is None:
                return None
            message_id = self.enqueue_automatic(conversation_id, question, CSAT_AUTHOR)
            conn.execute("UPDATE csat SET message_id = ? WHERE conversation_id = ?", (message_id, conversation_id))
            return message_id

    def skip_csat(self, conversation_id: int, episode_id: int, reason: str) -> None:
        """Never ask this conversation (opted out, no window to write in): say why, once."""
        with self.db.write() as conn:
            conn.execute("""INSERT INTO csat (conversation_id, episode_id, skipped) VALUES (?, ?, ?)
                            ON CONFLICT (conversation_id) DO NOTHING""", (conversation_id, episode_id, reason))

    def csat_of(self, conversation_id: int) -> dict | None:
        row = self.db.query_one("SELECT * FROM csat WHERE conversation_id = ?", (conversation_id,))
        return dict(row) if row else None

    def record_rating(self, conversation_id: int, rating: int, at: float, comment: str = "") -> None:
        """A rating given outside a reply to our question (an import from another tool, the demo's
        history), on the conversation's latest episode."""
        with self.db.write() as conn:
            episode = conn.execute("SELECT MAX(id) FROM episode WHERE conversation_id = ?",
                                   (conversation_id,)).fetchone()[0]
            conn.execute(
                """INSERT INTO csat (conversation_id, episode_id, asked_at, rating, comment, rated_at)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (conversation_id) DO UPDATE SET rating = excluded.rating, comment = excluded.comment,
                       rated_at = excluded.rated_at""", (conversation_id, episode, at, rating, comment, at))
