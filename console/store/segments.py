"""Saved segments, and who is in one right now.

A segment is a name, a query in the segment grammar (console/outreach/segments.py) and an
exclude list of customers. `segment_members` evaluates a query at a moment: the customer
filters as SQL on the customer table (tags, channels, when they last wrote), attributes in
Python (they are JSON), the message-search part through the workspace's search (the same
grammar and index as `/`), `replied:` through the campaign measurement's own definition of a
reply (console/store/measure.py). Nothing is cached: a step sent next week meets the segment as
it is next week. It can be cancelled between stages (`should_stop`), so the editor's count can
be recomputed as one types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from console.outreach.segments import SegmentQuery, SegmentSyntaxError, Term, attribute_holds, parse_segment
from console.store.db import Database, chunks, now

SEARCH_LIMIT = 10_000_000  # every matching conversation: a segment needs all of them


@dataclass
class Segment:
    id: int
    name: str
    query: str
    exclude: list[int] = field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0


class SegmentCancelled(Exception):
    """The caller stopped the evaluation (a newer count was asked for)."""


def _segment(row) -> Segment:
    try:
        exclude = [int(i) for i in json.loads(row["exclude"] or "[]")]
    except (ValueError, TypeError):
        exclude = []
    return Segment(row["id"], row["name"], row["query"], exclude, row["created_at"], row["updated_at"])


class SegmentMixin:
    db: Database

    # ---- saved segments -----------------------------------------------------------------------
    def save_segment(self, name: str, query: str, exclude: list[int] | None = None,
                     segment_id: int | None = None) -> int:
        """Create or change a segment; the query must parse (SegmentSyntaxError says why not)."""
        name = " ".join(name.split())
        if not name:
            raise ValueError("a segment needs a name")
        parse_segment(query, now())
        ids = json.dumps(sorted(set(exclude or [])))
        with self.db.write() as conn:
            clash = conn.execute("SELECT id FROM segment WHERE lower(name) = lower(?) AND id IS DISTINCT FROM ?",
                                 (name, segment_id)).fetchone()
            if clash is not None:
                raise ValueError(f"a segment is already named {name!r}")
            if segment_id is None:
                return conn.execute(
                    """INSERT INTO segment (name, query, exclude, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
                       RETURNING id""", (name, query.strip(), ids, now(), now())).fetchone()[0]
            conn.execute("UPDATE segment SET name = ?, query = ?, exclude = ?, updated_at = ? WHERE id = ?",
                         (name, query.strip(), ids, now(), segment_id))
            return segment_id

    def segments(self) -> list[Segment]:
        return [_segment(r) for r in self.db.query("SELECT * FROM segment ORDER BY lower(name)")]

    def segment(self, ref: int | str) -> Segment | None:
        if isinstance(ref, int):
            row = self.db.query_one("SELECT * FROM segment WHERE id = ?", (ref,))
        else:
            row = self.db.query_one("SELECT * FROM segment WHERE lower(name) = lower(?)", (ref.strip(),))
        return _segment(row) if row else None

    def delete_segment(self, segment_id: int) -> None:
        with self.db.write() as conn:
            used = conn.execute("SELECT name FROM campaign WHERE segment_id = ? LIMIT 1", (segment_id,)).fetchone()
            if used is not None:
                raise ValueError(f"the campaign {used['name']!r} uses this segment")
            conn.execute("DELETE FROM segment WHERE id = ?", (segment_id,))

    def set_excluded(self, segment_id: int, customer_id: int, excluded: bool = True) -> None:
        with self.db.write() as conn:
            row = conn.execute("SELECT exclude FROM segment WHERE id = ?", (segment_id,)).fetchone()
            if row is None:
                raise ValueError("no such segment")
            ids = set(json.loads(row["exclude"] or "[]"))
            ids = ids | {customer_id} if excluded else ids - {customer_id}
            conn.execute("UPDATE segment SET exclude = ?, updated_at = ? WHERE id = ?",
                         (json.dumps(sorted(ids)), now(), segment_id))

    # ---- who is in it -------------------------------------------------------------------------
    def segment_members(self, query: str, exclude=(), at: float | None = None, should_stop=None) -> list[int]:
        """Customer ids the query selects at `at` (now), minus the exclude list, in id order."""
        at = now() if at is None else at
        parsed = parse_segment(query, at)
        return sorted(self._members(parsed, at, should_stop) - set(exclude))

    def count_segment(self, query: str, exclude=(), should_stop=None) -> int:
        return len(self.segment_members(query, exclude, should_stop=should_stop))

    def _members(self, parsed: SegmentQuery, at: float, should_stop) -> set[int]:
        def check() -> None:
            if should_stop is not None and should_stop():
                raise SegmentCancelled()

        clauses, params = ["EXISTS (SELECT 1 FROM identity i WHERE i.customer_id = cu.id)"], []
        for term in parsed.terms:
            sql, values = _clause(term)
            if sql:
                clauses.append(f"NOT ({sql})" if term.negate else sql)
                params += values
        ids = {r[0] for r in self.db.query(f"SELECT cu.id FROM customer cu WHERE {' AND '.join(clauses)}", params)}
        check()
        for term in parsed.terms:
            if not ids:
                break
            if term.kind == "attribute":
                ids = {cid for cid, attrs in self._attributes(ids) if attribute_holds(term, attrs) != term.negate}
            elif term.kind == "search":
                found = {hit.customer_id for hit in self.search(term.key, limit=SEARCH_LIMIT)}
                ids = ids - found if term.negate else ids & found
            elif term.kind == "replied":
                answered = set()
                for name in term.values:
                    answered |= self.replied_to(name)
                ids = ids - answered if term.negate else ids & answered
            check()
        return ids

    def _attributes(self, ids: set[int]):
        for chunk in chunks(sorted(ids)):
            for row in self.db.query(f"SELECT id, attributes FROM customer WHERE id IN ({','.join('?' * len(chunk))})",
                                     chunk):
                try:
                    attributes = json.loads(row["attributes"] or "{}")
                except ValueError:
                    attributes = {}
                yield row["id"], attributes if isinstance(attributes, dict) else {}


def _clause(term: Term) -> tuple[str, list]:
    """The SQL of a customer filter (None for those evaluated in Python)."""
    if term.kind == "tag":
        return (f"EXISTS (SELECT 1 FROM tag t WHERE t.customer_id = cu.id AND t.name IN ({','.join('?' * len(term.values))}))",
                list(term.values))
    if term.kind == "channel":
        marks = ",".join("?" * len(term.values))
        # Reached on it: they wrote (or we wrote) there, or they agreed to hear from us there.
        return (f"""(EXISTS (SELECT 1 FROM conversation c WHERE c.customer_id = cu.id AND c.channel IN ({marks}))
                     OR EXISTS (SELECT 1 FROM consent k JOIN identity i ON i.id = k.identity_id
                                WHERE i.customer_id = cu.id AND k.channel IN ({marks}) AND k.state = 'granted'))""",
                list(term.values) * 2)
    if term.kind == "last_inbound":
        op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[term.op]  # "<30d": wrote after 30 days ago
        return (f"(SELECT MAX(c.last_inbound_at) FROM conversation c WHERE c.customer_id = cu.id) {op} ?",
                [term.number])
    return "", []


__all__ = ["Segment", "SegmentMixin", "SegmentCancelled", "SegmentSyntaxError"]
