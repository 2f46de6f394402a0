"""Test workspaces: a config from TOML text, one engine pass over it, one open adapter.

A plain module (not conftest) so that tests in any folder import it by name, however many
conftest.py files the folders grow.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import backends
from console.config import WorkspaceConfig, parse
from console.store import Store
from console.sync import Engine


def workspace_from(text: str, tmp_path: Path) -> WorkspaceConfig:
    """A workspace config from TOML text, with its data dir inside tmp_path."""
    config_path = tmp_path / "config.toml"
    config_path.write_text(text)
    config_path.chmod(0o600)
    ws = parse(text, config_path)
    ws.data_dir = tmp_path / "data"
    if backends.current is not None:  # the test's backend (tests/backends.py), one store per data dir
        backends.current.configure(ws, str(ws.data_dir))
    return ws


def sync_once(ws: WorkspaceConfig, store: Store) -> dict[str, str]:
    """One engine pass over the workspace's accounts (pull until drained, then the outbox), as
    `console sync --once` does; returns the accounts that failed."""
    return asyncio.run(Engine(ws, store).run(once=True))


def with_open_channel(ws: WorkspaceConfig, work):
    """Run `await work(channel)` on the workspace's first account's adapter, then close it."""
    from console.channels import open_channel

    async def go():
        channel = open_channel(ws.accounts[0], ws)
        try:
            return await work(channel)
        finally:
            await channel.close()

    return asyncio.run(go())


def drop_measuring_schema(conn) -> int:
    """Take the measuring and automation migration (episodes, SLA clocks, rules, CSAT), and every
    migration after it, out of a workspace again, as if it had been made before it; returns the
    schema version to set. Found by what it creates, not by its number (migrations are
    renumbered when branches meet)."""
    import re

    from console.store.schema import MIGRATIONS

    first = next(n for n, m in enumerate(MIGRATIONS) if any("CREATE TABLE episode (" in s for s in m))
    for migration in reversed(MIGRATIONS[first:]):
        for statement in reversed(migration):
            found = re.match(r"\s*CREATE (TABLE|INDEX|TRIGGER) (\w+)", statement)
            if found:
                conn.execute(f"DROP {found.group(1)} IF EXISTS {found.group(2)}")
            added = re.match(r"\s*ALTER TABLE (\w+) ADD COLUMN (\w+)", statement)
            if added:
                conn.execute(f"ALTER TABLE {added.group(1)} DROP COLUMN {added.group(2)}")
    return first
