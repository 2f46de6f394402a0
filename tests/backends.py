"""The store's two backends in the tests: every test that asks for `backend` runs on both.

`backend` (a fixture, conftest.py) is parametrised over SQLite and PostgreSQL; the `store` and
`demo` fixtures use it, and so does every test in tests/store, tests/sync and tests/ui (an
autouse fixture of those folders). A test gets its stores from it, never by building a path:

- `backend.location(name)`: where store `name` of this test lives: a file in the test's
  tmp_path, or a fresh PostgreSQL database (the same name gives the same place within a test);
- `backend.open(name, region, outreach)`: a Store there, closed after the test;
- `backend.configure(ws)`: point a workspace config at it (a `[store]` url for PostgreSQL);
- `backend.toml()`: the `[store]` table a config file for a subprocess needs ('' for SQLite).

PostgreSQL: one throw-away cluster per test session (tests/servers/postgres.py), started the
first time a test needs it; a fresh database per store per test, copied from a template that
holds the migrated schema (kept until the session ends: see `close`). Without PostgreSQL installed the PostgreSQL half of each test skips,
saying how to install it (under CI it fails, like every missing service).
"""

from __future__ import annotations

from pathlib import Path

from console.config import StoreSettings, WorkspaceConfig

BACKENDS = ("sqlite", "postgresql")

current: "Backend | None" = None  # the running test's backend (set by the fixture)
_cluster = None
_templates: dict[str, str] = {}


def cluster():
    """The session's PostgreSQL cluster (started on first use), or skip / fail saying how to install it."""
    global _cluster
    if _cluster is None:
        from conftest import need_binary
        from servers.postgres import INSTALL, Cluster, bindir

        found = bindir()
        if found is None:
            need_binary("pg_ctl", INSTALL, search=("/usr/lib/postgresql/15/bin/pg_ctl",))
        _cluster = Cluster(found)
    return _cluster


def stop_cluster() -> None:
    global _cluster
    if _cluster is not None:
        _cluster.close()
        _cluster = None
        _templates.clear()


def template(name: str, fill=None) -> str:
    """A database to copy test databases from: `schema` (migrated, empty) or one `fill(store)`
    made once per session (the seeded demo)."""
    if name not in _templates:
        server = cluster()
        database = f"template_{name}"
        server.sql(f'DROP DATABASE IF EXISTS "{database}"')
        server.sql(f'CREATE DATABASE "{database}"')
        from console.store import Store

        store = Store(server.url(database))
        try:
            if fill is not None:
                fill(store)
            store.index.settle(30)
        finally:
            store.close()
        _templates[name] = database
    return _templates[name]


class Backend:
    def __init__(self, name: str, tmp_path: Path):
        self.name = name
        self.tmp_path = tmp_path
        self._places: dict[str, object] = {}
        self._stores: list = []
        self._databases: list[str] = []

    @property
    def postgres(self) -> bool:
        return self.name == "postgresql"

    def __repr__(self) -> str:
        return f"Backend({self.name})"

    def location(self, name: str = "console.db", empty: bool = False, copy_of: str | None = None):
        """Store `name`'s place: a path, or a PostgreSQL URL (a new database: migrated, or
        `empty`, or a copy of template `copy_of`)."""
        if name not in self._places:
            if not self.postgres:
                self._places[name] = self.tmp_path / name
            else:
                server = cluster()
                database = server.create_database(None if empty else (copy_of or template("schema")))
                self._databases.append(database)
                self._places[name] = server.url(database)
        return self._places[name]

    def open(self, name: str = "console.db", region: str = "US", outreach=None, **how):
        from console.store import Store

        store = Store(self.location(name, **how), region, outreach)
        self._stores.append(store)
        return store

    def old_workspace(self, version: int, name: str = "old.db") -> "OldWorkspace":
        """Store `name` as a console of schema `version` left it (the first `version` migrations,
        applied by hand, translated for PostgreSQL as the store does): rows go in with `execute`,
        then `close()`, then `open(name)` upgrades it."""
        from console.store.schema import MIGRATIONS

        if not self.postgres:
            import sqlite3

            conn = sqlite3.connect(self.location(name))
            run = conn.execute
        else:
            import psycopg

            from console.store.dialect import postgres_ddl, to_pyformat

            conn = psycopg.connect(self.location(name, empty=True))
            run = lambda sql, params=(): conn.execute(to_pyformat(sql), params)  # noqa: E731
            conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        triggers: dict[str, str] = {}
        for migration in MIGRATIONS[:version]:
            for statement in migration:
                for translated in (postgres_ddl(statement, triggers) if self.postgres else [statement]):
                    conn.execute(translated)
        if self.postgres:
            conn.execute("CREATE TABLE schema_version (name TEXT PRIMARY KEY, version BIGINT NOT NULL)")
            conn.execute("INSERT INTO schema_version VALUES ('store', %s)", (version,))
        else:
            conn.execute(f"PRAGMA user_version = {version}")
        return OldWorkspace(conn, run)

    def configure(self, ws: WorkspaceConfig, name: str = "console.db", **how) -> WorkspaceConfig:
        """Point `ws` at this backend's store `name` (its data dir stays where it is)."""
        if self.postgres:
            ws.store = StoreSettings(self.location(name, **how))
        else:
            self._places.setdefault(name, ws.store_path)
        return ws

    def toml(self, name: str = "console.db", **how) -> str:
        """The `[store]` table of a config file that opens store `name` ('' on SQLite)."""
        if not self.postgres:
            return ""
        return f'[store]\nurl = "{self.location(name, **how)}"\n'

    def close(self) -> None:
        for store in self._stores:
            try:
                store.close()
            except Exception:  # noqa: BLE001 - a test may have closed it already
                pass
        # The test's databases stay until the cluster goes at the end of the session: a DROP
        # DATABASE makes PostgreSQL checkpoint, and the next CREATE DATABASE then took ten times
        # as long (0.55 s instead of 0.05 s); a few MB each is cheaper than minutes of CI.


class OldWorkspace:
    """A workspace written by an older console (Backend.old_workspace)."""

    def __init__(self, conn, run):
        self.conn, self.execute = conn, run

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()


def location_text(ws: WorkspaceConfig) -> str:
    """The workspace's store as a string another process can give to `Store()`."""
    return ws.store.url if ws.store is not None else str(ws.store_path)
