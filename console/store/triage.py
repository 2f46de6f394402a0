"""Triage data around a customer: tags, notes, drafts, templates, assignment, presence, downloads,
and merging or splitting customers (both undoable, both recorded in `merge_log`)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from console.store.db import Database, now
# Search moved to console/store/search.py; the UI imports these from here.
from console.store.search import SearchHit, SearchSyntaxError, matching_line, parse_search  # noqa: F401

TAG_RE = re.compile(r"^[\w][\w./-]{0,39}$")
PRESENCE_HEARTBEAT = 5.0  # seconds between a console's presence writes
PRESENCE_EXPIRY = 15.0  # a console silent this long is gone


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


@dataclass
class Suggestion:
    customer_id: int
    name: str
    reason: str


@dataclass
class Presence:
    agent: str
    customer_id: int | None
    activity: str


def normal_tag(text: str) -> str:
    tag = text.strip().lstrip("#").lower()
    if not TAG_RE.match(tag):
        raise ValueError(f"'{text.strip()}' is not a tag: use letters, digits, '-', '_', '.' or '/' (at most 40)")
    return tag


class TriageMixin:
    db: Database
    region: str

    # ---- tags and notes -----------------------------------------------------------------------
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

    # ---- drafts and templates -----------------------------------------------------------------
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

    def save_template(self, name: str, body: str) -> None:
        name = name.strip()
        if not name or not body.strip():
            raise ValueError("a template needs a name and some text")
        with self.db.write() as conn:
            conn.execute("""INSERT INTO template (name, body, updated_at) VALUES (?, ?, ?)
                            ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at""",
                         (name, body, now()))

    def delete_template(self, name: str) -> bool:
        with self.db.write() as conn:
            return conn.execute("DELETE FROM template WHERE name = ?", (name,)).rowcount > 0

    def templates(self) -> dict[str, str]:
        return {r["name"]: r["body"] for r in self.db.query("SELECT name, body FROM template ORDER BY name")}

    # ---- assignment and presence --------------------------------------------------------------
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

    def set_presence(self, agent: str, pid: int, customer_id: int | None, activity: str = "viewing",
                     host: str = "") -> None:
        """This console's heartbeat: what it looks at, now. A console repeats it every few
        seconds (PRESENCE_HEARTBEAT); one that stops (killed, on another machine that lost its
        network) is forgotten after PRESENCE_EXPIRY, whatever its process id now means."""
        at = now()
        with self.db.write() as conn:
            conn.execute("""INSERT INTO presence (agent, pid, customer_id, activity, updated_at, host)
                            VALUES (?, ?, ?, ?, ?, ?)
                            ON CONFLICT (agent, pid) DO UPDATE SET customer_id = excluded.customer_id,
                                activity = excluded.activity, updated_at = excluded.updated_at, host = excluded.host""",
                         (agent, pid, customer_id, activity, at, host))
            conn.execute("DELETE FROM presence WHERE updated_at < ?", (at - PRESENCE_EXPIRY * 4,))
            if host:  # consoles of this host that died without saying goodbye
                for row in conn.execute("SELECT agent, pid FROM presence WHERE host = ? AND pid != ?",
                                        (host, pid)).fetchall():
                    if not _alive(row["pid"]):
                        conn.execute("DELETE FROM presence WHERE agent = ? AND pid = ?", (row["agent"], row["pid"]))

    def clear_presence(self, agent: str, pid: int) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM presence WHERE agent = ? AND pid = ?", (agent, pid))

    def presence(self, exclude_pid: int | None = None, agent: str | None = None) -> list[Presence]:
        """Who else is looking at or replying to which customer, right now: consoles whose
        heartbeat is fresh, but this one (`agent`, `exclude_pid`)."""
        return [Presence(r["agent"], r["customer_id"], r["activity"]) for r in self.db.query(
            """SELECT agent, pid, customer_id, activity FROM presence WHERE updated_at >= ?
               AND NOT (pid IS NOT DISTINCT FROM ? AND agent IS NOT DISTINCT FROM ?) ORDER BY agent, pid""",
            (now() - PRESENCE_EXPIRY, exclude_pid, agent))]

    # ---- attachments fetched by the engine -----------------------------------------------------
    def request_downloads(self, message_id: int, folder: str) -> list[int]:
        """Ask the engine to fetch every attachment of a message into `folder`; returns the ids."""
        with self.db.write() as conn:
            msg = conn.execute("SELECT account, attachments FROM message WHERE id = ?", (message_id,)).fetchone()
            if msg is None or not msg["attachments"]:
                return []
            ids = []
            for attachment in json.loads(msg["attachments"]):
                ids.append(conn.execute(
                    """INSERT INTO download (message_id, account, ref, name, folder, created_at, updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                    (message_id, msg["account"], attachment.get("ref") or "", attachment.get("name") or "attachment",
                     folder, now(), now())).fetchone()[0])
            return ids

    def pending_downloads(self, account: str, limit: int = 10) -> list[dict]:
        return [dict(r) for r in self.db.query(
            """SELECT d.*, m.external_id FROM download d JOIN message m ON m.id = d.message_id
               WHERE d.state = 'pending' AND d.account = ? ORDER BY d.id LIMIT ?""", (account, limit))]

    def record_download(self, download_id: int, path: str = "", error: str = "") -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE download SET state = ?, path = ?, error = ?, updated_at = ? WHERE id = ?",
                         ("failed" if error else "done", path, error, now(), download_id))

    def downloads(self, ids: list[int]) -> list[dict]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return [dict(r) for r in self.db.query(f"SELECT * FROM download WHERE id IN ({marks})", ids)]

    # ---- merging and splitting customers ------------------------------------------------------
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another agent's process: alive
        return True
    return True
