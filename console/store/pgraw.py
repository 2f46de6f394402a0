"""Raw message bytes on PostgreSQL: a table of the workspace's database (`raw_mail`).

The SQLite workspace keeps them in files beside it (console/store/rawfile.py); on a shared server
there is no "beside", and every machine must read them, so they live in the database, named by
their SHA-256 as there. The same order keeps it safe: a pull's bytes are committed (by a
connection of their own, in a thread of their own, while the pull's messages are inserted)
before the transaction that adds the messages naming them; content keys make the writes
idempotent, and bytes are never deleted. The column is stored uncompressed (pgschema.py): a
mailbox's bytes are mostly attachments, compressed already.
"""

from __future__ import annotations

import concurrent.futures


class PgRawFile:
    def __init__(self, db):
        self.db = db
        self.path = None
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None

    def put(self, blobs: dict[str, bytes]) -> None:
        """Store {sha: bytes}, committed before returning (bytes already stored are left alone)."""
        if not blobs:
            return
        with self.db.write(serial=False) as conn:
            conn.executemany("INSERT INTO raw_mail (sha, data) VALUES (?, ?) ON CONFLICT (sha) DO NOTHING",
                             blobs.items())

    def put_soon(self, blobs: dict[str, bytes]) -> concurrent.futures.Future:
        """`put` in a thread of its own; wait for the future before committing what names them."""
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raw-writer")
        return self._writer.submit(self.put, blobs)

    def get(self, sha: str) -> bytes | None:
        row = self.db.query_one("SELECT data FROM raw_mail WHERE sha = ?", (sha,))
        return bytes(row[0]) if row else None

    def shas(self) -> set[str]:
        return {r[0] for r in self.db.query("SELECT sha FROM raw_mail")}

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
