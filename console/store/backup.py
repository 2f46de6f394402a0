"""Export and import: the whole workspace as JSON lines, a complete, re-importable backup.

One object per line with a "type" field (customer, identity, conversation, message, cursor, the
triage data: tag, note, draft, template, and what measuring and automation keep that cannot be
computed again: satisfaction ratings, what rules did, which rule fired for which event), in an
order that import can apply line by line. Episodes are not exported: importing the messages
builds them again (console/store/episodes.py), a conversation imported as done resolved at its
last message.
Raw email bytes are base64, inside their message (from the raw file, console/store/rawfile.py).
The last line says how many records of each type came before it and their SHA-256: an export
cut short (a full disk, a dropped connection, `head`) is recognised, and import applies a file
all or nothing, in one transaction, only once the last line has matched. Import is idempotent:
rows already present (same ids / same account + external id) are left alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import IO, Iterator

from console.store.db import Database
from console.store.rawfile import RawFile, digest

_TABLES = (
    ("customer", "id"),
    ("identity", "id"),
    ("conversation", "id"),
    ("message", "id"),
    ("cursor", "account"),
    ("tag", "customer_id, name"),
    ("note", "id"),
    ("draft", "customer_id, agent"),
    ("template", "name"),
    ("csat", "conversation_id"),
    ("activity", "id"),
    ("rule_firing", "rule, event_key"),
)


class BackupError(Exception):
    pass


def _encode(row) -> dict:
    out = {}
    for key in row.keys():
        value = row[key]
        if isinstance(value, bytes):
            out[key] = {"base64": base64.b64encode(value).decode("ascii")}
        else:
            out[key] = value
    return out


def each_row(conn, sql: str, params):
    """Every row of a query, without holding a large table in memory (PostgreSQL's connection
    reads in batches through a server-side cursor; SQLite's cursor already steps)."""
    if hasattr(conn, "batches"):
        for rows in conn.batches(sql, params):
            yield from rows
    else:
        yield from conn.execute(sql, params)


class BackupMixin:
    db: Database
    raw: RawFile

    def export_lines(self, since: float | None = None) -> Iterator[str]:
        """Yield JSON lines. With `since`, only conversations with activity since then (and the
        customers, identities and messages they need)."""
        checksum = hashlib.sha256()
        counts: dict[str, int] = {}
        with self.db.read() as conn:
            conv_filter = "" if since is None else "WHERE last_message_at >= :since"
            conv_ids = f"SELECT id FROM conversation {conv_filter}"
            queries = {
                "customer": f"SELECT * FROM customer WHERE id IN (SELECT customer_id FROM conversation {conv_filter})"
                            if since is not None else "SELECT * FROM customer",
                "identity": f"SELECT * FROM identity WHERE customer_id IN (SELECT customer_id FROM conversation {conv_filter})"
                            if since is not None else "SELECT * FROM identity",
                "conversation": f"SELECT * FROM conversation {conv_filter}",
                "message": f"SELECT * FROM message WHERE conversation_id IN ({conv_ids})"
                           + ("" if since is None else " AND sent_at >= :since"),
                "cursor": "SELECT * FROM cursor",
                "template": "SELECT * FROM template",
            }
            customers = ("" if since is None else
                         f" WHERE customer_id IN (SELECT customer_id FROM conversation {conv_filter})")
            for table in ("tag", "note", "draft"):
                queries[table] = f"SELECT * FROM {table}{customers}"
            conversations = "" if since is None else f" WHERE conversation_id IN ({conv_ids})"
            for table in ("csat", "activity", "rule_firing"):
                queries[table] = f"SELECT * FROM {table}{conversations}"
            for table, key in _TABLES:
                for row in each_row(conn, queries[table] + f" ORDER BY {key}", {"since": since}):
                    record = _encode(row)
                    if table == "message" and row["raw_sha"] and row["raw"] is None:
                        data = self.raw.get(row["raw_sha"])  # the bytes travel inside the export
                        if data is not None:
                            record["raw"] = {"base64": base64.b64encode(data).decode("ascii")}
                    line = json.dumps({"type": table, **record}, ensure_ascii=False)
                    checksum.update(line.encode("utf-8") + b"\n")
                    counts[table] = counts.get(table, 0) + 1
                    yield line
        yield json.dumps({"type": "end", "counts": counts, "sha256": checksum.hexdigest()})

    def import_lines(self, stream: IO[str]) -> dict[str, int]:
        """Apply an export, all or nothing. Returns how many rows of each type were added."""
        added = {table: 0 for table, _ in _TABLES}
        columns = {table: self.db.columns(table) for table, _ in _TABLES}
        blobs: dict[str, bytes] = {}
        closed: list[int] = []  # conversations imported as done: their episodes end with their history
        checksum = hashlib.sha256()
        seen: dict[str, int] = {}
        ended = False
        number = 0
        with self.db.write() as conn:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                if ended:
                    raise BackupError(f"line {number}: records after the export's last line")
                try:
                    obj = json.loads(line)
                    table = obj.pop("type")
                except (ValueError, KeyError, AttributeError, TypeError):
                    raise BackupError(f"line {number}: not an export record") from None
                if table == "end":
                    if obj.get("sha256") != checksum.hexdigest() or obj.get("counts") != seen:
                        raise BackupError(f"line {number}: the records before do not match the export's own count "
                                          "and checksum (a damaged or edited file)")
                    ended = True
                    continue
                checksum.update(line.rstrip("\n").encode("utf-8") + b"\n")
                seen[table] = seen.get(table, 0) + 1
                if table not in columns:
                    raise BackupError(f"line {number}: unknown record type {table!r}")
                values = {}
                for key, value in obj.items():
                    if key not in columns[table]:
                        raise BackupError(f"line {number}: unknown field {key!r} for {table}")
                    if isinstance(value, dict) and "base64" in value:
                        value = base64.b64decode(value["base64"])
                    values[key] = value
                if table == "message" and isinstance(values.get("raw"), bytes):
                    # Raw bytes go to the raw file, named by their digest (exports made before
                    # schema 4 have no raw_sha).
                    values["raw_sha"] = digest(values["raw"])
                    blobs[values["raw_sha"]] = values.pop("raw")
                names = ",".join(values)
                marks = ",".join("?" * len(values))
                try:
                    cur = conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                                       list(values.values()))
                except self.db.errors as exc:
                    raise BackupError(f"line {number}: {exc}") from None
                added[table] += cur.rowcount
                if table == "conversation" and cur.rowcount and values.get("status") == "done":
                    closed.append(values["id"])
            if not ended:
                raise BackupError(f"the export stops after line {number} without its last line (cut short?)")
            conn.executemany("INSERT INTO episode_change (conversation_id, old_status, new_status) "
                             "VALUES (?, 'history', 'done')", [(cid,) for cid in closed])
            self.raw.put(blobs)  # committed before the messages that name them
            self.db.ids_taken(conn, [table for table, key in _TABLES if key == "id"])
        return added
