"""Templates: the shop's saved replies by name, which the composer fills in for a customer
(console/templates.py fills the placeholders)."""

from __future__ import annotations

from console.store.db import Database, now


class TemplateMixin:
    db: Database

    def save_template(self, name: str, body: str) -> None:
        name = name.strip()
        if not name or not body.strip():
            raise ValueError("a template needs a name and some text")
        with self.db.write() as conn:
            conn.execute("""INSERT INTO template (name, body, updated_at) VALUES (?, ?, ?)
                            ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at""",
                         (name, body, now()))

    def templates(self) -> dict[str, str]:
        return {r["name"]: r["body"] for r in self.db.query("SELECT name, body FROM template ORDER BY name")}
