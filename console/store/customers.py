"""What the shop keeps about a customer: tags, notes and attributes, the card that shows them
with the customer's history on every channel, and finding customers by name or address."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from console.store.db import Database, now

TAG_RE = re.compile(r"^[\w][\w./-]{0,39}$")


@dataclass
class Note:
    id: int
    author: str
    body: str
    created_at: float


@dataclass
class CustomerCard:
    customer_id: int
    name: str
    first_seen: float
    attributes: dict[str, str]
    tags: list[str]
    notes: list[Note]
    per_channel: dict[str, int]  # messages per channel
    last_reply_at: float | None
    last_inbound_at: float | None


def normal_tag(text: str) -> str:
    tag = text.strip().lstrip("#").lower()
    if not TAG_RE.match(tag):
        raise ValueError(f"'{text.strip()}' is not a tag: use letters, digits, '-', '_', '.' or '/' (at most 40)")
    return tag


class CustomerMixin:
    db: Database

    def add_tag(self, customer_id: int, tag: str, at: float | None = None) -> str:
        """Tag a customer (`at`: when, if not now; a campaign counts a conversion by it)."""
        tag = normal_tag(tag)
        with self.db.write() as conn:
            conn.execute("INSERT INTO tag (customer_id, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                         (customer_id, tag, now() if at is None else at))
        return tag

    def remove_tag(self, customer_id: int, tag: str) -> bool:
        with self.db.write() as conn:
            return conn.execute("DELETE FROM tag WHERE customer_id = ? AND name = ?",
                                (customer_id, normal_tag(tag))).rowcount > 0

    def tags(self, customer_id: int) -> list[str]:
        return [r[0] for r in self.db.query("SELECT name FROM tag WHERE customer_id = ? ORDER BY name", (customer_id,))]

    def all_tags(self) -> list[str]:
        """Every tag in the workspace, most used first (for completion)."""
        return [r[0] for r in self.db.query("SELECT name FROM tag GROUP BY name ORDER BY COUNT(*) DESC, name")]

    def add_note(self, customer_id: int, author: str, body: str) -> int:
        body = body.strip()
        if not body:
            raise ValueError("a note needs some text")
        with self.db.write() as conn:
            return conn.execute(
                "INSERT INTO note (customer_id, author, body, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                (customer_id, author, body, now())).fetchone()[0]

    def notes(self, customer_id: int) -> list[Note]:
        return [Note(r["id"], r["author"], r["body"], r["created_at"])
                for r in self.db.query("SELECT * FROM note WHERE customer_id = ? ORDER BY created_at, id",
                                       (customer_id,))]

    def set_attribute(self, customer_id: int, key: str, value: str) -> None:
        with self.db.write() as conn:
            row = conn.execute("SELECT attributes FROM customer WHERE id = ?", (customer_id,)).fetchone()
            attributes = json.loads(row["attributes"] or "{}")
            attributes[key] = value
            conn.execute("UPDATE customer SET attributes = ? WHERE id = ?", (json.dumps(attributes), customer_id))
            # When it was set: a campaign counts a conversion by it (console/store/measure.py).
            conn.execute("INSERT INTO attribute_change (customer_id, name, value, at) VALUES (?, ?, ?, ?)",
                         (customer_id, key, str(value), now()))

    def card(self, customer_id: int) -> CustomerCard | None:
        row = self.db.query_one("SELECT * FROM customer WHERE id = ?", (customer_id,))
        if row is None:
            return None
        per_channel = {r["channel"]: r["n"] for r in self.db.query(
            """SELECT c.channel, SUM(c.message_count) AS n FROM conversation c WHERE c.customer_id = ?
               GROUP BY c.channel ORDER BY n DESC""", (customer_id,))}
        last = self.db.query_one(
            "SELECT MAX(last_outbound_at) AS out_at, MAX(last_inbound_at) AS in_at FROM conversation WHERE customer_id = ?",
            (customer_id,))
        # First seen: the customer's first message, on any channel (not when this store learnt of them).
        first = self.db.query_one(
            """SELECT MIN(m.sent_at) FROM message m JOIN conversation c ON c.id = m.conversation_id
               WHERE c.customer_id = ?""", (customer_id,))[0]
        return CustomerCard(customer_id, row["name"], first or row["created_at"], json.loads(row["attributes"] or "{}"),
                            self.tags(customer_id), self.notes(customer_id), per_channel,
                            last["out_at"], last["in_at"])

    def find_customers(self, text: str, limit: int = 20, exclude: int | None = None) -> list[tuple[int, str, str]]:
        """(customer id, name, addresses) whose name or any address contains every word of `text`."""
        words = [w.lower() for w in text.split()]
        if not words:
            return []
        # Every word in the name or in one of the addresses (with its display name).
        clauses = " AND ".join(["""(lower(cu.name) LIKE ? OR EXISTS (SELECT 1 FROM identity w WHERE w.customer_id = cu.id
                                    AND lower(w.address || ' ' || w.display_name) LIKE ?))"""] * len(words))
        rows = self.db.query(
            f"""SELECT cu.id, cu.name FROM customer cu
                WHERE EXISTS (SELECT 1 FROM identity i WHERE i.customer_id = cu.id) AND {clauses}
                  AND cu.id IS DISTINCT FROM ? ORDER BY cu.name, cu.id LIMIT ?""",
            (*[f"%{w}%" for w in words for _ in (0, 1)], exclude, limit))
        addresses: dict[int, list[str]] = {}
        if rows:
            marks = ",".join("?" * len(rows))
            for r in self.db.query(f"SELECT customer_id, address FROM identity WHERE customer_id IN ({marks}) ORDER BY id",
                                   [r["id"] for r in rows]):
                addresses.setdefault(r["customer_id"], []).append(r["address"])
        return [(r["id"], r["name"], ", ".join(addresses.get(r["id"], []))) for r in rows]
