"""Presence: which consoles are open right now, and whom each agent is looking at or replying
to, kept by a heartbeat that expires (a console that died without saying goodbye is forgotten)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from console.store.db import Database, now

PRESENCE_HEARTBEAT = 5.0  # seconds between a console's presence writes
PRESENCE_EXPIRY = 15.0  # a console silent this long is gone


@dataclass
class Presence:
    agent: str
    customer_id: int | None
    activity: str


class PresenceMixin:
    db: Database

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another agent's process: alive
        return True
    return True
