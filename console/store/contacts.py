"""Importing customers with their consent (rows read by console/outreach/csvimport.py).

All rows go in one transaction; a dry run runs the very same code and rolls it back, so its
report is exactly what the import would do. A row joins the customer who already has its email
or phone (the same person, as an SMS and an email from one customer meet); a row whose email
and phone belong to two different customers is refused until someone merges them. A consent
from the file never overrides a newer decision of the customer: a STOP recorded after the
file's consent date stands, and the report says so.
"""

from __future__ import annotations

import json

from console.model import Address
from console.outreach.facts import ImportReport, ImportRow, Refusal
from console.store.consent import _record
from console.store.db import Database, now
from console.store.ingest import resolve_identity
from console.store.customers import normal_tag


class _DryRun(Exception):
    pass


class ContactsMixin:
    db: Database
    region: str

    def import_contacts(self, rows: list[ImportRow], refused: list[Refusal], dry_run: bool = False,
                        agent: str = "") -> ImportReport:
        report = ImportReport(rows=len(rows) + len([r for r in refused if r.number > 1]), refused=list(refused),
                              dry_run=dry_run)
        try:
            with self.db.write() as conn:
                for row in rows:
                    self._import_row(conn, row, report, agent)
                if dry_run:
                    raise _DryRun()
        except _DryRun:
            pass
        report.refused.sort(key=lambda r: r.number)
        return report

    def _import_row(self, conn, row: ImportRow, report: ImportReport, agent: str) -> None:
        owners = {}
        for kind, address in (("email", row.email), ("phone", row.phone)):
            if address:
                found = conn.execute("SELECT customer_id FROM identity WHERE kind = ? AND address = ?",
                                     (kind, address)).fetchone()
                if found:
                    owners[kind] = found["customer_id"]
        if len(set(owners.values())) > 1:
            report.refused.append(Refusal(row.number, f"{row.email} and {row.phone} belong to two different customers; "
                                                      "merge them in console first (m on the customer)"))
            return
        at = now()
        existing = next(iter(owners.values()), None)
        identities: dict[str, int] = {}
        linked: list[Address] = []
        # The address a customer already has first: a new one then joins that customer.
        for kind, address in sorted((("email", row.email), ("phone", row.phone)), key=lambda ka: ka[0] not in owners):
            if address:
                identities[kind], customer_id = resolve_identity(conn, Address(kind, address, row.name), self.region, at,
                                                                 tuple(linked))
                linked.append(Address(kind, address))
        if existing is None:
            report.created += 1
        else:
            report.updated += 1
        if row.name:
            conn.execute("UPDATE customer SET name = ? WHERE id = ? AND (name = '' OR name IN (?, ?))",
                         (row.name, customer_id, row.email, row.phone))
        if row.attributes:
            current = json.loads(conn.execute("SELECT attributes FROM customer WHERE id = ?",
                                              (customer_id,)).fetchone()[0] or "{}")
            for key, value in row.attributes.items():
                if current.get(key) != value:
                    current[key] = value
                    conn.execute("INSERT INTO attribute_change (customer_id, name, value, at) VALUES (?, ?, ?, ?)",
                                 (customer_id, key, value, at))
            conn.execute("UPDATE customer SET attributes = ? WHERE id = ?", (json.dumps(current), customer_id))
        for tag in row.tags:
            try:
                conn.execute("""INSERT INTO tag (customer_id, name, created_at) VALUES (?, ?, ?)
                                ON CONFLICT (customer_id, name) DO NOTHING""", (customer_id, normal_tag(tag), at))
            except ValueError as error:
                report.refused.append(Refusal(row.number, f"tag left out: {error}"))
        for channel, kind, state in row.consents:
            identity_id = identities[kind]
            newer = conn.execute(
                """SELECT state, changed_at, COALESCE(NULLIF(withdrawn_source, ''), source) AS why FROM consent
                   WHERE identity_id = ? AND channel = ? AND purpose = 'marketing'""", (identity_id, channel)).fetchone()
            if newer is not None and newer["changed_at"] > row.at and newer["state"] != state:
                report.refused.append(Refusal(row.number, f"consent_{channel} left as it is: the customer decided "
                                                          f"otherwise later ({newer['state']}: {newer['why']})"))
                continue
            _record(conn, identity_id, channel, "marketing", state, row.source, row.text, "imported", agent, row.at,
                    None)
            report.consents += 1

    def identity_for(self, address: Address) -> int:
        """The identity of an address, made (with its customer) if it is new."""
        with self.db.write() as conn:
            return resolve_identity(conn, address, self.region, now())[0]

    def customer_ids(self) -> list[int]:
        return [r[0] for r in self.db.query("SELECT id FROM customer ORDER BY id")]
