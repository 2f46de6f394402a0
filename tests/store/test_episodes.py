"""Episodes kept at write time: what counts as a customer's need, its first response, the time we
owed an answer and its resolution; and a workspace from before them gets them on upgrade."""

from __future__ import annotations

import json

import pytest

from console.model import Address, InboundMessage, PullResult
from console.store import Store
from console.store.schema import MIGRATIONS, SCHEMA_VERSION
from clock import at, install
from workspace import drop_measuring_schema

PEER = Address("phone", "+15550001111", "Maria")


def pull(store: Store, when: float, direction: str = "in", serial=[0]) -> None:
    serial[0] += 1
    store.apply_pull("shop", PullResult(messages=[InboundMessage(
        f"e{serial[0]}", "sms:maria", "sms", direction, PEER, when, "hello", status="delivered" if direction == "out"
        else None)]))


def episodes(store: Store) -> list[dict]:
    return [{**dict(r), "owed": json.loads(r["owed"])} for r in store.db.query("SELECT * FROM episode ORDER BY id")]


def reply(store: Store, clock, when: float, author: str = "ana") -> int:
    clock.set(when)
    conv = store.db.query_one("SELECT * FROM conversation")
    return store.enqueue_reply(conv["identity_id"], "shop", "sms", "answer", author=author, conversation_id=conv["id"])


def test_owed_intervals_first_response_and_the_quiet_day(store, monkeypatch):
    clock = install(monkeypatch, at("2026-12-21 10:00"))
    pull(store, at("2026-12-21 10:00"))
    reply(store, clock, at("2026-12-21 10:20"))
    pull(store, at("2026-12-21 10:30"))
    reply(store, clock, at("2026-12-21 11:00"))
    [ep] = episodes(store)
    assert ep["first_response_at"] == at("2026-12-21 10:20") and ep["responder"] == "ana"
    assert ep["owed"] == [[at("2026-12-21 10:00"), at("2026-12-21 10:20")],
                          [at("2026-12-21 10:30"), at("2026-12-21 11:00")]]
    assert ep["owed_since"] is None
    pull(store, at("2026-12-22 12:00"))  # more than a day after our reply: a new need
    first, second = episodes(store)
    assert (first["resolved_at"], first["resolution"]) == (at("2026-12-21 11:00"), "quiet")
    assert (second["kind"], second["started_at"], second["owed_since"]) == ("reopened", at("2026-12-22 12:00"),
                                                                             at("2026-12-22 12:00"))


def test_an_automatic_reply_and_an_unsent_one_answer_nothing(store, monkeypatch):
    clock = install(monkeypatch, at("2026-12-21 10:00"))
    pull(store, at("2026-12-21 10:00"))
    reply(store, clock, at("2026-12-21 10:01"), author="auto:rule after-hours")
    assert episodes(store)[0]["first_response_at"] is None
    taken_back = reply(store, clock, at("2026-12-21 10:05"))
    assert episodes(store)[0]["first_response_at"] == at("2026-12-21 10:05")
    assert store.cancel_send(taken_back)
    [ep] = episodes(store)
    assert (ep["first_response_at"], ep["owed_since"], ep["owed"]) == (None, at("2026-12-21 10:00"), [])


def test_done_after_our_answer_is_resolved_at_the_answer_and_a_reopening_by_hand_starts_anew(store, monkeypatch):
    clock = install(monkeypatch, at("2026-12-21 10:00"))
    pull(store, at("2026-12-21 10:00"))
    reply(store, clock, at("2026-12-21 10:30"))
    clock.set(at("2026-12-24 09:00"))  # closed days later (close_waiting_after_days)
    conv = store.db.query_one("SELECT id FROM conversation")[0]
    store.set_status("done", conversation_id=conv)
    [ep] = episodes(store)
    assert (ep["resolved_at"], ep["closed_at"]) == (at("2026-12-21 10:30"), at("2026-12-24 09:00"))
    clock.set(at("2026-12-24 10:00"))
    store.set_status("open", conversation_id=conv)  # `u`
    assert episodes(store)[1]["started_at"] == at("2026-12-24 10:00")
    clock.set(at("2026-12-24 11:00"))
    store.set_status("done", conversation_id=conv)  # closed while nobody answered: when it was marked
    assert episodes(store)[1]["resolved_at"] == at("2026-12-24 11:00")
    pull(store, at("2026-12-24 12:00"))  # the customer writes again: a new need
    assert [e["kind"] for e in episodes(store)] == ["new", "reopened", "reopened"]


def test_events_are_noted_only_for_fresh_messages(store, monkeypatch):
    install(monkeypatch, at("2026-12-21 10:00"))
    pull(store, at("2026-11-01 10:00"))  # history from a first sync
    assert store.events_after(0) == []
    pull(store, at("2026-12-21 09:58"))
    assert [e["kind"] for e in store.events_after(0)] == ["message_received"]


@pytest.mark.sqlite_only
def test_a_workspace_from_before_episodes_gets_them_on_upgrade(tmp_path, monkeypatch):
    install(monkeypatch, at("2026-12-21 18:00"))
    path = tmp_path / "console.db"
    store = Store(path)
    pull(store, at("2026-12-21 10:00"))
    pull(store, at("2026-12-21 10:40"), "out")
    conv = store.db.query_one("SELECT id FROM conversation")[0]
    store.set_status("done", conversation_id=conv)
    store.db.before_commit.clear()
    with store.db.write() as conn:
        conn.execute(f"PRAGMA user_version = {drop_measuring_schema(conn)}")
    store.close()
    upgraded = Store(path)
    assert upgraded.db.query_one("PRAGMA user_version")[0] == SCHEMA_VERSION
    [ep] = episodes(upgraded)
    assert (ep["started_at"], ep["first_response_at"]) == (at("2026-12-21 10:00"), at("2026-12-21 10:40"))
    assert (ep["resolved_at"], ep["resolution"]) == (at("2026-12-21 10:40"), "done")  # at its last message
    assert upgraded.db.query_one("SELECT COUNT(*) FROM episode_change")[0] == 0
    assert upgraded.events_after(0) == []  # history fires no rule
    upgraded.close()


def test_a_database_from_before_episodes_gets_them_on_upgrade_on_either_backend(backend, monkeypatch):
    """The console before measuring (its migrations, no episode hook) wrote the history."""
    import console.store
    from console.store import lists, pg

    install(monkeypatch, at("2026-12-21 18:00"))
    first = next(n for n, m in enumerate(MIGRATIONS) if any("CREATE TABLE episode (" in s for s in m))
    with monkeypatch.context() as older:
        for module in (console.store.db, pg):
            older.setattr(module, "SCHEMA_VERSION", first)
        older.setattr(pg, "EXTRAS_VERSION", 1)  # its PostgreSQL part too: the later ones name later tables
        older.setattr(console.store, "HOOKS", (lists.refresh_lists,))
        store = backend.open(empty=True)
        pull(store, at("2026-12-21 10:00"))
        pull(store, at("2026-12-21 10:40"), "out")
        conv = store.db.query_one("SELECT id FROM conversation")[0]
        store.set_status("done", conversation_id=conv)
        assert store.db.schema_version() == first
        store.close()
    upgraded = backend.open()
    assert upgraded.db.schema_version() == SCHEMA_VERSION
    [ep] = episodes(upgraded)
    assert (ep["started_at"], ep["first_response_at"]) == (at("2026-12-21 10:00"), at("2026-12-21 10:40"))
    assert (ep["resolved_at"], ep["resolution"]) == (at("2026-12-21 10:40"), "done")
    assert upgraded.db.query_one("SELECT COUNT(*) FROM episode_change")[0] == 0
    assert upgraded.events_after(0) == []


def test_ratings_and_rule_actions_survive_an_export_and_episodes_are_rebuilt(backend, monkeypatch):
    import io

    from console.store import Plan

    clock = install(monkeypatch, at("2026-12-21 10:00"))
    store = backend.open("a.db")
    pull(store, at("2026-12-21 10:00"))
    reply(store, clock, at("2026-12-21 10:30"))
    conv = store.db.query_one("SELECT id FROM conversation")[0]
    store.apply_firing(Plan("wholesale", "e1", conv, at("2026-12-21 10:00"), add_tags=("wholesale",)))
    clock.set(at("2026-12-21 11:00"))
    store.set_status("done", conversation_id=conv)
    store.record_rating(conv, 4, at("2026-12-21 12:00"))
    dump = "\n".join(store.export_lines()) + "\n"
    other = backend.open("b.db")
    added = other.import_lines(io.StringIO(dump))
    assert (added["csat"], added["activity"], added["rule_firing"]) == (1, 1, 1)
    [ep] = episodes(other)
    assert (ep["first_response_at"], ep["resolved_at"]) == (at("2026-12-21 10:30"), at("2026-12-21 10:30"))
    assert other.csat_of(conv)["rating"] == 4
    store.close()
    other.close()
