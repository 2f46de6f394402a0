"""SLA clocks in the store: each open conversation's most urgent clock, for the list's badges,
the "breaching soon" filter and the `sla_breaching` rules.

The engine's SLA duty (console/sla_duty.py) computes clocks with the workspace's calendar and
policies (console/sla.py) for the conversations marked in `sla_dirty` — by the episode hook
for every change, by triggers for a tag added or removed or a customer merged — and writes them
here. A conversation that is not waiting on us has no clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from console.store.db import Database


@dataclass(frozen=True)
class SlaClock:
    conversation_id: int
    policy: str
    kind: str  # first_response | next_response | resolution
    started_at: float
    due_at: float
    target: float
    business: bool


def _clock(r) -> SlaClock:
    return SlaClock(r["conversation_id"], r["policy"], r["kind"], r["started_at"], r["due_at"], r["target"],
                    bool(r["business"]))


class SlaMixin:
    db: Database

    def claim_sla_dirty(self, limit: int = 2000) -> list[dict]:
        """Conversations whose clock must be recomputed, taken off the dirty set (a change after
        this marks them again), with what the clock depends on: status, channel, account, the
        customer's tags and the current episode."""
        with self.db.write() as conn:
            ids = [r[0] for r in conn.execute("SELECT conversation_id FROM sla_dirty ORDER BY conversation_id LIMIT ?",
                                              (limit,))]
            if not ids:
                return []
            conn.execute("DELETE FROM sla_dirty WHERE conversation_id <= ?", (ids[-1],))
        marks = ",".join("?" * len(ids))
        rows = self.db.query(
            f"""SELECT c.id, c.status, c.channel, c.account, c.customer_id,
                       e.started_at, e.first_response_at, e.owed_since, e.owed, e.resolved_at
                FROM conversation c
                LEFT JOIN episode e ON e.id = (SELECT MAX(id) FROM episode WHERE conversation_id = c.id)
                WHERE c.id IN ({marks})""", ids)
        out = [dict(r) for r in rows]
        gone = set(ids) - {r["id"] for r in out}
        tags = self.tags_of(sorted({r["customer_id"] for r in out}))
        for r in out:
            r["tags"] = tags.get(r["customer_id"], set())
            r["owed"] = tuple(tuple(pair) for pair in json.loads(r["owed"] or "[]"))
        out += [{"id": cid, "status": "gone"} for cid in sorted(gone)]
        return out

    def save_clocks(self, clocks: dict) -> None:
        """Store each conversation's clock (a console.sla.Clock; None: it has none now)."""
        with self.db.write() as conn:
            for conversation_id, clock in clocks.items():
                if clock is None:
                    conn.execute("DELETE FROM sla_clock WHERE conversation_id = ?", (conversation_id,))
                else:
                    conn.execute(
                        """INSERT INTO sla_clock (conversation_id, policy, kind, started_at, due_at, target, business)
                           VALUES (?, ?, ?, ?, ?, ?, ?)
                           ON CONFLICT (conversation_id) DO UPDATE SET policy = excluded.policy, kind = excluded.kind,
                               started_at = excluded.started_at, due_at = excluded.due_at,
                               target = excluded.target, business = excluded.business""",
                        (conversation_id, clock.policy, clock.kind, clock.started_at, clock.due_at, clock.target,
                         int(clock.business)))

    def mark_all_sla_dirty(self) -> int:
        """Every waiting conversation's clock to be recomputed (the calendar or a policy changed)."""
        with self.db.write() as conn:
            return conn.execute(
                """INSERT INTO sla_dirty (conversation_id) SELECT id FROM conversation WHERE status IN ('open', 'snoozed')
                   ON CONFLICT (conversation_id) DO NOTHING""").rowcount

    def clocks_for(self, conversation_ids: list[int]) -> dict[int, SlaClock]:
        out: dict[int, SlaClock] = {}
        for first in range(0, len(conversation_ids), 500):
            part = conversation_ids[first:first + 500]
            marks = ",".join("?" * len(part))
            for r in self.db.query(f"SELECT * FROM sla_clock WHERE conversation_id IN ({marks})", part):
                out[r["conversation_id"]] = _clock(r)
        return out

    def customer_clocks(self, customer_ids: list[int], status: str, channel: str | None = None) -> dict[int, SlaClock]:
        """Each customer's most urgent clock among their conversations under `status`."""
        out: dict[int, SlaClock] = {}
        if not customer_ids:
            return out
        marks = ",".join("?" * len(customer_ids))
        extra, params = ("AND c.channel = ?", [channel]) if channel else ("", [])
        for r in self.db.query(
                f"""SELECT s.*, c.customer_id FROM sla_clock s JOIN conversation c ON c.id = s.conversation_id
                    WHERE c.customer_id IN ({marks}) AND c.status = ? {extra} ORDER BY s.due_at""",
                (*customer_ids, status, *params)):
            out.setdefault(r["customer_id"], _clock(r))
        return out

    def attach_clocks(self, rows: list, flt) -> list:
        """The list rows with their clocks (`row.clock`): per customer the most urgent of the
        tab, per thread the thread's own."""
        if not rows:
            return rows
        if flt.by_customer:
            found = self.customer_clocks([r.customer_id for r in rows], flt.status, flt.channel)
            for row in rows:
                row.clock = found.get(row.customer_id)
        else:
            found = self.clocks_for([r.conversation_id for r in rows])
            for row in rows:
                row.clock = found.get(row.conversation_id)
        return rows

    def clocks_due_between(self, earliest: float, latest: float) -> list[SlaClock]:
        """Clocks of open conversations due in [earliest, latest] (the `sla_breaching` events)."""
        return [_clock(r) for r in self.db.query(
            """SELECT s.* FROM sla_clock s JOIN conversation c ON c.id = s.conversation_id
               WHERE s.due_at >= ? AND s.due_at <= ? AND c.status = 'open' ORDER BY s.due_at""",
            (earliest, latest))]
