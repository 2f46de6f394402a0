"""Drafts: what an agent has written to a customer and not sent yet, one per agent and customer,
kept as it is typed so that nothing written is lost."""

from __future__ import annotations

from console.store.db import Database, now


class DraftMixin:
    db: Database

    def save_draft(self, customer_id: int, agent: str, body: str) -> None:
        with self.db.write() as conn:
            if body.strip():
                conn.execute("""INSERT INTO draft (customer_id, agent, body, updated_at) VALUES (?, ?, ?, ?)
                                ON CONFLICT (customer_id, agent) DO UPDATE SET body = excluded.body,
                                    updated_at = excluded.updated_at""", (customer_id, agent, body, now()))
            else:
                conn.execute("DELETE FROM draft WHERE customer_id = ? AND agent = ?", (customer_id, agent))

    def draft(self, customer_id: int, agent: str) -> str:
        row = self.db.query_one("SELECT body FROM draft WHERE customer_id = ? AND agent = ?", (customer_id, agent))
        return row["body"] if row else ""

    def draft_info(self, customer_id: int, agent: str) -> tuple[str, float] | None:
        """(text, saved at) of this agent's draft for the customer, if one is kept."""
        row = self.db.query_one("SELECT body, updated_at FROM draft WHERE customer_id = ? AND agent = ?",
                                (customer_id, agent))
        return (row["body"], row["updated_at"]) if row else None

    def draft_customers(self, agent: str) -> set[int]:
        """Customers this agent has a draft for (marked on their list rows)."""
        return {r[0] for r in self.db.query("SELECT customer_id FROM draft WHERE agent = ?", (agent,))}
