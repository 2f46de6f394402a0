"""Merging and splitting customers, both undoable and both recorded in `merge_log`, with what a
merge would move and the customers who are probably the same person (suggested, never applied)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from console.store.db import Database, now


@dataclass
class Suggestion:
    customer_id: int
    name: str
    reason: str


class MergeMixin:
    db: Database
    region: str

    def merge_customers(self, kept_id: int, other_id: int) -> int:
        """Move every identity, conversation, tag and note of `other_id` to `kept_id`; returns the
        merge_log id that `undo_merge` takes."""
        if kept_id == other_id:
            raise ValueError("a customer cannot be merged with themselves")
        with self.db.write() as conn:
            other = conn.execute("SELECT * FROM customer WHERE id = ?", (other_id,)).fetchone()
            if other is None or conn.execute("SELECT 1 FROM customer WHERE id = ?", (kept_id,)).fetchone() is None:
                raise ValueError("no such customer")
            identities = [r[0] for r in conn.execute("SELECT id FROM identity WHERE customer_id = ?", (other_id,))]
            notes = [r[0] for r in conn.execute("SELECT id FROM note WHERE customer_id = ?", (other_id,))]
            kept_tags = {r[0] for r in conn.execute("SELECT name FROM tag WHERE customer_id = ?", (kept_id,))}
            tags = [r[0] for r in conn.execute("SELECT name FROM tag WHERE customer_id = ?", (other_id,))]
            conn.execute("UPDATE identity SET customer_id = ? WHERE customer_id = ?", (kept_id, other_id))
            conn.execute("UPDATE conversation SET customer_id = ? WHERE customer_id = ?", (kept_id, other_id))
            conn.execute("UPDATE note SET customer_id = ? WHERE customer_id = ?", (kept_id, other_id))
            conn.execute("INSERT INTO tag (customer_id, name, created_at) SELECT ?, name, created_at "
                         "FROM tag WHERE customer_id = ? ON CONFLICT DO NOTHING", (kept_id, other_id))
            conn.execute("DELETE FROM tag WHERE customer_id = ?", (other_id,))
            conn.execute("DELETE FROM draft WHERE customer_id = ?", (other_id,))
            moved = {"identities": identities, "notes": notes, "tags": tags,
                     "added_tags": [t for t in tags if t not in kept_tags]}
            return conn.execute(
                "INSERT INTO merge_log (kept_id, other_id, kind, moved, other_name, created_at) "
                "VALUES (?, ?, 'merge', ?, ?, ?) RETURNING id",
                (kept_id, other_id, json.dumps(moved), other["name"], now())).fetchone()[0]

    def split_identity(self, identity_id: int) -> int:
        """Give one identity (and its conversations) a customer of its own; returns the merge_log id."""
        with self.db.write() as conn:
            identity = conn.execute("SELECT * FROM identity WHERE id = ?", (identity_id,)).fetchone()
            if identity is None:
                raise ValueError("no such identity")
            owner = identity["customer_id"]
            if conn.execute("SELECT COUNT(*) FROM identity WHERE customer_id = ?", (owner,)).fetchone()[0] < 2:
                raise ValueError("this is the customer's only identity: there is nothing to split from")
            at = now()
            new_id = conn.execute("INSERT INTO customer (name, created_at, updated_at) VALUES (?, ?, ?) RETURNING id",
                                  (identity["display_name"] or identity["address"], at, at)).fetchone()[0]
            conn.execute("UPDATE identity SET customer_id = ? WHERE id = ?", (new_id, identity_id))
            conn.execute("UPDATE conversation SET customer_id = ? WHERE identity_id = ?", (new_id, identity_id))
            return conn.execute(
                "INSERT INTO merge_log (kept_id, other_id, kind, moved, created_at) VALUES (?, ?, 'split', ?, ?) RETURNING id",
                (owner, new_id, json.dumps({"identities": [identity_id]}), at)).fetchone()[0]

    def undo_merge(self, log_id: int) -> str:
        """Reverse a merge or a split; returns what was done, as a sentence."""
        with self.db.write() as conn:
            entry = conn.execute("SELECT * FROM merge_log WHERE id = ?", (log_id,)).fetchone()
            if entry is None or entry["undone_at"] is not None:
                raise ValueError("nothing to undo")
            moved = json.loads(entry["moved"])
            ids = moved["identities"]
            marks = ",".join("?" * len(ids))
            if entry["kind"] == "merge":
                target, source = entry["other_id"], entry["kept_id"]
            else:
                target, source = entry["kept_id"], entry["other_id"]
            conn.execute(f"UPDATE identity SET customer_id = ? WHERE id IN ({marks})", (target, *ids))
            conn.execute(f"UPDATE conversation SET customer_id = ? WHERE identity_id IN ({marks})", (target, *ids))
            if entry["kind"] == "merge":
                notes = moved.get("notes", [])
                if notes:
                    conn.execute(f"UPDATE note SET customer_id = ? WHERE id IN ({','.join('?' * len(notes))})",
                                 (target, *notes))
                for tag in moved.get("tags", []):
                    conn.execute("INSERT INTO tag (customer_id, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                 (target, tag, now()))
                for tag in moved.get("added_tags", []):
                    conn.execute("DELETE FROM tag WHERE customer_id = ? AND name = ?", (source, tag))
            else:
                conn.execute("UPDATE note SET customer_id = ? WHERE customer_id = ?", (target, source))
            conn.execute("UPDATE merge_log SET undone_at = ? WHERE id = ?", (now(), log_id))
            return "merge undone" if entry["kind"] == "merge" else "split undone"

    def customer_summary(self, customer_id: int) -> dict[str, int]:
        """How much a customer holds (what a merge would move): conversations, messages, notes, tags."""
        row = self.db.query_one(
            """SELECT (SELECT COUNT(*) FROM conversation WHERE customer_id = ?) AS conversations,
                      (SELECT COALESCE(SUM(message_count), 0) FROM conversation WHERE customer_id = ?) AS messages,
                      (SELECT COUNT(*) FROM note WHERE customer_id = ?) AS notes,
                      (SELECT COUNT(*) FROM tag WHERE customer_id = ?) AS tags""",
            (customer_id,) * 4)
        return dict(row)

    def last_merge(self) -> int | None:
        row = self.db.query_one("SELECT id FROM merge_log WHERE undone_at IS NULL ORDER BY id DESC LIMIT 1")
        return row["id"] if row else None

    def merge_suggestions(self, customer_id: int) -> list[Suggestion]:
        """Other customers who are probably this one: the same name on another identity, or a
        phone number quoted in this customer's messages (an email signature). Never applied."""
        out: dict[int, Suggestion] = {}
        me = self.db.query_one("SELECT name FROM customer WHERE id = ?", (customer_id,))
        if me and me["name"].strip() and not me["name"].startswith("@"):
            for r in self.db.query(
                    """SELECT cu.id, cu.name FROM customer cu WHERE lower(cu.name) = lower(?) AND cu.id != ?
                       AND EXISTS (SELECT 1 FROM identity i WHERE i.customer_id = cu.id) LIMIT 5""",
                    (me["name"], customer_id)):
                out[r["id"]] = Suggestion(r["id"], r["name"], "same name")
        bodies = self.db.query(
            """SELECT m.body FROM message m JOIN conversation c ON c.id = m.conversation_id
               WHERE c.customer_id = ? AND m.direction = 'in' ORDER BY m.sent_at DESC LIMIT 50""", (customer_id,))
        import phonenumbers  # here: the import is slow, and only the card's suggestions need it

        numbers = set()
        for row in bodies:
            for match in phonenumbers.PhoneNumberMatcher(row["body"] or "", self.region,
                                                          leniency=phonenumbers.Leniency.POSSIBLE):
                numbers.add(phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164))
        for number in numbers:
            for r in self.db.query(
                    """SELECT cu.id, cu.name FROM identity i JOIN customer cu ON cu.id = i.customer_id
                       WHERE i.kind = 'phone' AND i.address = ? AND cu.id != ?""", (number, customer_id)):
                out.setdefault(r["id"], Suggestion(r["id"], r["name"], f"their messages quote {number}"))
        return list(out.values())
