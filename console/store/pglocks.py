"""PostgreSQL's leases (see console/store/leases.py): session advisory locks on a connection of
the engine's own, so that the server releases them when the engine goes, however it goes.

Locks are two-key advisory locks: the first key says what kind (a lease, an engine's token), the
second a 31-bit hash of the account's name, or the token itself. The connection asks its server
to notice a dead peer within seconds (TCP keepalives both ways), so a machine that vanishes
releases its leases too, not only a process that dies. When the connection breaks (the server
restarted), every lease is lost at once; the next `refresh` connects again, takes the token back
first (the engine's claims must not look abandoned), then whatever leases are free.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

import psycopg

from console.store.db import StoreUnavailable
from console.store.leases import new_token

log = logging.getLogger("console.sync")

LEASE = 0x636F  # first key of an account's (or the duties') lease
TOKEN = 0x636E  # first key of an engine's token
# A claim whose engine's token is not held counts as abandoned only this long after it was made:
# an engine that lost its connection (a restarted server) takes its token back within a second
# or two; until then its sends in flight must not look abandoned.
CLAIM_GRACE = 15.0


def key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") & 0x7FFFFFFF


def gone_clause(claimer: str, claimed_at: str) -> str:
    """SQL: the claim in columns `claimer` / `claimed_at` was made by an engine that is gone
    (parameter: the latest `claimed_at` that may count as abandoned)."""
    return f"""({claimed_at} <= ? AND NOT EXISTS (
        SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = {TOKEN} AND l.objsubid = 2
        AND l.objid::bigint = {claimer}
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())))"""


class PgLeases:
    def __init__(self, db):
        self.db = db
        self.token = new_token()
        self._conn: psycopg.Connection | None = None
        self._held: set[str] = set()

    def _connect(self) -> psycopg.Connection:
        conn = self.db.connect()
        # The server notices a vanished machine in about 5 + 3 * 2 seconds and drops its leases.
        for setting, value in (("tcp_keepalives_idle", 5), ("tcp_keepalives_interval", 2),
                               ("tcp_keepalives_count", 3)):
            with contextlib.suppress(psycopg.Error):
                conn.execute(f"SET {setting} = {value}")
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (TOKEN, self.token)).fetchone()[0]:
            self.token = new_token()  # astronomically unlikely: another engine drew the same number
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (TOKEN, self.token))
        return conn

    def refresh(self, wanted: set[str]) -> set[str]:
        """Hold what of `wanted` can be held (and let go of the rest); the set held."""
        try:
            if self._conn is None:
                self._held = set()
                self._conn = self._connect()
            conn = self._conn
            conn.execute("SELECT 1")  # still connected: what we hold is still ours
            for name in sorted(self._held - wanted):
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LEASE, key(name)))
                self._held.discard(name)
            for name in sorted(wanted - self._held):
                if conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LEASE, key(name))).fetchone()[0]:
                    self._held.add(name)
            return set(self._held)
        except (psycopg.Error, StoreUnavailable) as exc:
            self._drop()
            if isinstance(exc, StoreUnavailable):
                raise
            raise StoreUnavailable(f"the workspace's database is unreachable ({exc}); console keeps trying") from None

    def release(self, name: str) -> None:
        if name in self._held and self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LEASE, key(name)))
            self._held.discard(name)

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None
        self._held = set()

    def close(self) -> None:
        self._drop()
