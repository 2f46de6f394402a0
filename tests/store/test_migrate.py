"""`console migrate`: a SQLite workspace moved into PostgreSQL by the real command, checked on
what a user of the new store sees (the list, search, a message, its raw bytes), after a kill -9
mid-copy, on a second run, and against databases it must refuse.

The source is the seeded demo workspace (conftest `seeded_demo`) plus one email with raw bytes;
the target a fresh database of the session's cluster (tests/backends.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from console.model import Address, InboundMessage, PullResult
from console.store import ListFilter, Store
from console.store.migrate import RAW

pytestmark = pytest.mark.postgres_only

RAW_MAIL = (b"From: Zo\xc3\xa9 <zoe@example.com>\r\nSubject: croissant order\r\n\r\n"
            b"Quarante croissants pour samedi, merci\r\n\x00\xff binary tail")


@pytest.fixture
def workspace(tmp_path: Path, seeded_demo: Path) -> Path:
    """A config file naming a SQLite workspace: the demo, plus one email with raw bytes."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(seeded_demo, data / "console.db")
    store = Store(data / "console.db")
    message = InboundMessage("raw-1", "thread-raw", "email", "in", Address("email", "zoe@example.com", "Zoé"),
                             time.time() - 60, body="Quarante croissants pour samedi, merci",
                             subject="croissant order", raw=RAW_MAIL)
    assert store.apply_pull("demo-mail", PullResult([message])) == 1
    store.close()
    config = tmp_path / "config.toml"
    config.write_text(f'[workspace]\nname = "Bakery"\nagent = "console"\ndata_dir = "{data}"\n')
    config.chmod(0o600)
    return config


def migrate(config: Path, to: str, *extra: str, wait: bool = True, env: dict | None = None):
    """The real `console migrate`, finished (or, with wait=False, running)."""
    command = [sys.executable, "-m", "console", "--config", str(config), "migrate", "--to", to, *extra]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def sqlite_counts(config: Path) -> dict[str, int]:
    import sqlite3

    conn = sqlite3.connect(config.parent / "data" / "console.db")
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%' AND name <> 'search_queue'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def pg_counts(url: str, tables) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_a_demo_workspace_moves_whole_and_reads_the_same_on_postgresql(workspace, backend):
    url = backend.location("target", empty=True)  # migrate makes the schema too
    before = (workspace.parent / "data" / "console.db").read_bytes()
    done = migrate(workspace, url)
    assert done.returncode == 0, done.stderr
    assert f'[store]\nurl = "{url}"' in done.stdout
    expected = sqlite_counts(workspace)
    assert pg_counts(url, expected) == expected
    assert expected["message"] > 20 and expected["episode"] > 0
    assert (workspace.parent / "data" / "console.db").read_bytes() == before  # the SQLite file is untouched

    old, new = Store(workspace.parent / "data" / "console.db"), backend.open("target")
    try:
        assert new.index.settle(30)
        for status in ("open", "done", "snoozed"):
            flt = ListFilter(status=status)
            assert [(r.key, r.since) for r in new.list_rows(flt, 0, 100)] == \
                   [(r.key, r.since) for r in old.list_rows(flt, 0, 100)]
            assert new.status_counts(flt) == old.status_counts(flt)
        hit, = new.search("quarante croissants")
        assert hit.name == "Zoé"
        row = new.db.query_one("SELECT id, body, raw_sha FROM message WHERE external_id = 'raw-1'")
        assert row["body"] == "Quarante croissants pour samedi, merci"
        assert new.raw.get(row["raw_sha"]) == RAW_MAIL
        first = old.db.query_one("SELECT id, subject, body, sent_at FROM message ORDER BY id LIMIT 1")
        assert tuple(new.db.query_one("SELECT id, subject, body, sent_at FROM message WHERE id = ?",
                                      (first["id"],))) == tuple(first)
        # New rows get new ids: the sequences were moved past the copied ones.
        newest = max(r[0] for r in old.db.query("SELECT id FROM note")) if expected["note"] else 0
        note = new.add_note(hit.customer_id, "console", "after the move")
        assert note > newest
    finally:
        old.close()


def test_a_kill_mid_copy_then_a_second_run_finishes_without_doubling_anything(workspace, backend):
    url = backend.location("target")
    expected = sqlite_counts(workspace)
    running = migrate(workspace, url, "--batch-size", "1", wait=False)
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if conn.execute("SELECT count(*) FROM migrate_progress WHERE item = 'message'").fetchone()[0]:
                break
            time.sleep(0.005)
    os.kill(running.pid, signal.SIGKILL)
    running.wait()
    halfway = pg_counts(url, ["message"])["message"]
    assert 0 < halfway < expected["message"], "the kill came too late to interrupt the copy"

    done = migrate(workspace, url, "--batch-size", "7")
    assert done.returncode == 0, done.stderr
    assert pg_counts(url, expected) == expected
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM (SELECT external_id, account FROM message "
                            "GROUP BY 1, 2 HAVING count(*) > 1) d").fetchone()[0] == 0
        assert conn.execute(f"SELECT count(*) FROM {RAW}").fetchone()[0] == 1


def test_a_second_run_says_so_and_changes_nothing(workspace, backend):
    url = backend.location("target")
    assert migrate(workspace, url).returncode == 0
    store = backend.open("target")
    assert store.index.settle(30)
    with psycopg.connect(url) as conn:
        marks = conn.execute("SELECT item, done FROM migrate_progress ORDER BY item").fetchall()
        sequence = conn.execute("SELECT last_value FROM message_id_seq").fetchone()[0]
    again = migrate(workspace, url)
    assert again.returncode == 0, again.stderr
    assert "already migrated" in again.stdout
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT item, done FROM migrate_progress ORDER BY item").fetchall() == marks
        assert conn.execute("SELECT last_value FROM message_id_seq").fetchone()[0] == sequence
        assert conn.execute("SELECT count(*) FROM search_queue").fetchone()[0] == 0
    assert pg_counts(url, sqlite_counts(workspace)) == sqlite_counts(workspace)


def one_line_failure(done) -> str:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("console: ") and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_an_unreachable_or_wrong_database_is_one_line(workspace, backend):
    from backends import cluster

    nowhere = one_line_failure(migrate(workspace, "postgresql://console@127.0.0.1:9/shop"))
    assert "cannot reach" in nowhere and "Connection refused" in nowhere and "\t" not in nowhere, nowhere
    wrong = one_line_failure(migrate(workspace, "mysql://db.example/shop"))
    assert wrong.startswith("console: --to: expected a PostgreSQL URL")
    with_password = one_line_failure(migrate(workspace, "postgresql://ana:s3cret@127.0.0.1/shop"))
    assert "password" in with_password and "s3cret" not in with_password
    no_database = one_line_failure(migrate(workspace, cluster().url("no_such_database")))
    assert "no_such_database" in no_database


def test_a_database_holding_another_workspace_is_refused(workspace, backend):
    url = backend.location("target")
    team = backend.open("target")
    team.apply_pull("shop-sms", PullResult([InboundMessage("x1", "t1", "sms", "in", Address("phone", "+15550100"),
                                                           time.time(), body="already working here")]))
    refused = one_line_failure(migrate(workspace, url))
    assert "already holds a workspace" in refused
    assert pg_counts(url, ["message"]) == {"message": 1}


def test_a_second_migrate_into_the_same_database_meanwhile_is_refused(workspace, backend):
    url = backend.location("target")
    running = migrate(workspace, url, "--batch-size", "1", wait=False)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            deadline = time.monotonic() + 30
            while not conn.execute("SELECT count(*) FROM migrate_progress").fetchone()[0]:
                assert time.monotonic() < deadline, "the first migrate never started copying"
                time.sleep(0.005)
        second = one_line_failure(migrate(workspace, url))
        assert "another console migrate is copying" in second
    finally:
        running.kill()
        running.wait()


def test_an_agents_role_may_not_migrate(workspace, backend):
    from backends import cluster

    url = backend.location("target", empty=True)
    backend.open("target")  # the owner makes the schema, and the database's agents' group role
    database = url.rsplit("/", 1)[1]
    cluster().sql(f"DROP ROLE IF EXISTS mig_agent; CREATE ROLE mig_agent LOGIN PASSWORD 'pw-mig' "
                  f"IN ROLE {database}_agents")
    host = url.split("@", 1)[1]
    done = migrate(workspace, f"postgresql://mig_agent@{host}", "--password-env", "MIG_PW",
                   env={**os.environ, "MIG_PW": "pw-mig"})
    line = one_line_failure(done)
    assert "owner" in line and "pw-mig" not in done.stdout + done.stderr


def test_a_row_postgresql_refuses_stops_the_copy_in_one_line(workspace, backend):
    import sqlite3

    conn = sqlite3.connect(workspace.parent / "data" / "console.db")
    conn.execute("UPDATE identity SET customer_id = 999999 WHERE id = (SELECT max(id) FROM identity)")
    conn.commit()
    conn.close()
    url = backend.location("target")
    refused = one_line_failure(migrate(workspace, url))
    assert "identity_customer_id_fkey" in refused and "goes on from there" in refused
    assert pg_counts(url, ["customer"]) == {"customer": sqlite_counts(workspace)["customer"]}


def test_counts_that_differ_are_shown_and_exit_non_zero(workspace, backend):
    url = backend.location("target")
    assert migrate(workspace, url).returncode == 0
    store = Store(workspace.parent / "data" / "console.db")  # a console that kept working on the SQLite file
    store.apply_pull("shop-sms", PullResult([InboundMessage("late", "t-late", "sms", "in", Address("phone", "+15550199"),
                                                            time.time(), body="one more")]))
    store.close()
    done = migrate(workspace, url)
    line = one_line_failure(done)
    assert done.returncode == 1 and "the counts differ in" in line and "message" in line
    assert any(row.startswith("message") and row.endswith("DIFFERENT") for row in done.stdout.splitlines())
    assert "[store]" not in done.stdout
