"""Assignment: which agent a customer's open conversations belong to, and the agents the
workspace knows to give them to."""

from __future__ import annotations

from console.store.db import Database


class AssignmentMixin:
    db: Database

    def assign(self, customer_id: int, agent: str | None) -> int:
        """Give all of a customer's not-done conversations to `agent` (None: unassign)."""
        with self.db.write() as conn:
            return conn.execute("UPDATE conversation SET assignee = ? WHERE customer_id = ? AND status != 'done'",
                                (agent, customer_id)).rowcount

    def assigned_to(self, customer_id: int, agent: str) -> bool:
        return self.db.query_one(
            "SELECT 1 FROM conversation WHERE customer_id = ? AND status != 'done' AND assignee = ?",
            (customer_id, agent)) is not None

    def agents(self) -> list[str]:
        """Agents the workspace knows: assignees, note authors, reply authors and who is here."""
        rows = self.db.query(
            """SELECT assignee FROM conversation WHERE assignee IS NOT NULL
               UNION SELECT author FROM note UNION SELECT agent FROM presence
               UNION SELECT DISTINCT author FROM message WHERE author IS NOT NULL AND direction = 'out'""")
        return sorted({r[0] for r in rows if r[0]})
