"""The search index beside the workspace: always caught up in the end, rebuilt when it cannot be
trusted, following merges; a search that can be stopped; a workspace from before it migrates."""

from __future__ import annotations

import shutil
import sqlite3
import time

import pytest

from console.model import Address, InboundMessage, PullResult
from console.store import SearchCancelled, Store
from console.store.schema import MIGRATIONS

MARIA = Address("email", "maria@example.com", "Maria Lopez")
TOM = Address("email", "tom@example.com", "Tom Baker")


def mail(n: int, peer: Address, body: str, at: float | None = None) -> InboundMessage:
    return InboundMessage(external_id=f"<m{n}@x>", thread_key=f"<t{n}@x>", channel="email", direction="in",
                          peer=peer, sent_at=at or 1_770_000_000.0 + n, body=body)


def found(store: Store, query: str) -> list[str]:
    return [hit.line for hit in store.search(query)]


@pytest.mark.sqlite_only
def test_a_search_stops_inside_sqlite_when_its_caller_asks_and_says_so(store):
    store.apply_pull("mail", PullResult(messages=[mail(n, MARIA, f"note {n}") for n in range(3000)]))
    assert len(store.search("channel:email")) == 50
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 1  # not at the first look, only once SQLite is at work

    with pytest.raises(SearchCancelled):
        store.search("channel:fax", should_stop=should_stop)  # reads every message: nothing matches
    assert len(calls) == 2, "stopped at SQLite's first progress call"
    assert store.search("note 2999") and store.search("channel:fax") == [], "the store is usable afterwards"


def test_messages_committed_before_a_crash_are_indexed_by_the_next_start(backend):
    store = Store(backend.location())
    store.index.wake = lambda: None  # the indexer never runs: as if the process died right after the commit
    store.db.after_commit.clear()
    store.apply_pull("mail", PullResult(messages=[mail(1, MARIA, "croissants for friday")]))
    store.index.close()
    store.db.close()
    store.raw.close()

    again = Store(backend.location())
    try:
        assert found(again, "croissants") == ["croissants for friday"]
        again.apply_pull("mail", PullResult(messages=[mail(2, TOM, "a cake")]))
        assert found(again, "cake") == ["a cake"]
        again.apply_pull("mail", PullResult(messages=[mail(2, TOM, "a cake")]))  # nothing new
        assert again.db.query_one("SELECT count(*) FROM search_queue")[0] == 0, "what was indexed is cleared"
    finally:
        again.close()


@pytest.mark.sqlite_only
def test_an_index_that_is_lost_or_belongs_to_another_workspace_is_rebuilt(tmp_path):
    for name, body in (("a", "sourdough please"), ("b", "rye please")):
        store = Store(tmp_path / name / "console.db")
        store.apply_pull("mail", PullResult(messages=[mail(1, MARIA, body)]))
        assert found(store, "please") == [body]
        store.close()
    index = tmp_path / "a" / "console.search.db"
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / "a" / f"console.search.db{suffix}").unlink(missing_ok=True)
    store = Store(tmp_path / "a" / "console.db")
    assert found(store, "sourdough") == ["sourdough please"], "a lost index is built again"
    store.close()
    shutil.copy(tmp_path / "b" / "console.search.db", index)  # b's index beside a's workspace
    store = Store(tmp_path / "a" / "console.db")
    try:
        assert found(store, "rye") == [] and found(store, "sourdough") == ["sourdough please"]
    finally:
        store.close()


def test_after_a_merge_the_kept_customer_is_found_by_every_name_and_filter(store):
    store.apply_pull("mail", PullResult(messages=[mail(1, MARIA, "order for saturday"), mail(2, TOM, "cake order")]))
    maria, tom = (store.find_customers(a)[0][0] for a in ("maria@", "tom@"))
    store.add_tag(maria, "vip")
    store.merge_customers(maria, tom)
    assert {h.customer_id for h in store.search("from:tom@example")} == {maria}
    assert [h.line for h in store.search("order tag:vip")] == ["cake order", "order for saturday"]
    store.undo_merge(store.last_merge())
    assert [h.customer_id for h in store.search("from:tom@example")] == [tom]
    assert [h.line for h in store.search("order tag:vip")] == ["order for saturday"]


def old_workspace(path, version: int) -> None:
    """An empty workspace as a console of schema `version` made it."""
    conn = sqlite3.connect(path)
    for statements in MIGRATIONS[:version]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


@pytest.mark.sqlite_only
def test_a_workspace_from_before_the_index_file_migrates_and_its_messages_stay_searchable(tmp_path):
    path = tmp_path / "console.db"
    old_workspace(path, 5)
    conn = sqlite3.connect(path)
    at = time.time()
    conn.execute("INSERT INTO customer (id, name, created_at, updated_at) VALUES (1, 'Maria Lopez', ?, ?)", (at, at))
    conn.execute("INSERT INTO identity (id, customer_id, kind, address, created_at) VALUES (1, 1, 'email', "
                 "'maria@example.com', ?)", (at,))
    conn.execute("""INSERT INTO conversation (id, account, thread_key, channel, customer_id, identity_id, subject,
                        last_message_at, message_count) VALUES (1, 'mail', '<t@x>', 'email', 1, 1, 'Re: Cake', ?, 2)""",
                 (at,))
    for n, body in ((1, "the croissant order"), (2, "and a cake")):
        conn.execute("""INSERT INTO message (conversation_id, account, external_id, channel, direction, identity_id,
                            sent_at, subject, body, created_at) VALUES (1, 'mail', ?, 'email', 'in', 1, ?, 'Re: Cake', ?, ?)""",
                     (f"<m{n}@x>", at - 10 + n, body, at))
    conn.commit()
    assert conn.execute("SELECT count(*) FROM message_fts WHERE message_fts MATCH 'croissant'").fetchone()[0] == 1
    conn.close()

    store = Store(path)
    try:
        assert found(store, "croissant") == ["the croissant order"]
        assert [h.message_id for h in store.search("from:maria")] == [2], "the newest of the conversation"
        # Its conversation has no subject key of its own: the folded subject stands in for it.
        reply = InboundMessage("<m3@x>", "<m3@x>", "email", "in", MARIA, at, body="three", subject="Re: cake",
                               reply_subject="re: cake")
        store.apply_pull("mail", PullResult(messages=[reply]))
        assert store.db.query_one("SELECT message_count FROM conversation WHERE id = 1")[0] == 3
    finally:
        store.close()
@pytest.mark.sqlite_only
def test_two_processes_on_one_workspace_index_it_once_and_both_find_everything(tmp_path):
    engine, ui = Store(tmp_path / "console.db"), Store(tmp_path / "console.db")  # as the sync and the UI
    try:
        engine.apply_pull("mail", PullResult(messages=[mail(n, MARIA, f"order {n}") for n in range(500)]))
        assert ui.index.settle(timeout=10), "the engine's indexer (or the UI's, when it lets go) catches up"
        [hit] = ui.search("order 499")
        assert hit.line == "order 499"
        assert len(engine.search("order")) == 50 and len(ui.search("order", limit=500)) == 500
    finally:
        ui.close()
        engine.close()
