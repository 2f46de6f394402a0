"""Downloads: the attachments an agent asked for, which the engine fetches into a folder and
reports on (console/sync.py), one row per attachment."""

from __future__ import annotations

import json

from console.store.db import Database, now


class DownloadMixin:
    db: Database

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
