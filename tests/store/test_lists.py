"""The conversation list's precomputed rows and counts always equal what the conversations say.

The rows are refreshed before each commit from the customers a transaction touched; these tests
change the store every way the app and the engine do (new messages, replies, status moves,
snoozes, merges, splits) and compare every tab, grouped and per thread, with a direct computation.
"""

from __future__ import annotations

import random

from console.model import Address, InboundMessage, PullResult
from console.store import STATUSES, ListFilter, Store

CHANNELS = (("email", "email"), ("sms", "phone"), ("whatsapp", "phone"), ("telegram", "telegram"))


def expected_rows(store: Store, flt: ListFilter) -> list[tuple[int, float]]:
    """(key, since) in tab order, computed from the conversation table alone."""
    clauses, params = ["status = ?"], [flt.status]
    if flt.channel:
        clauses.append("channel = ?")
        params.append(flt.channel)
    key = {"open": "COALESCE(waiting_since, last_inbound_at, last_message_at)",
           "snoozed": "COALESCE(snooze_until, last_message_at)"}.get(flt.status, "last_message_at")
    ascending = flt.status in ("open", "snoozed")
    rows = store.db.query(f"SELECT id, customer_id, {key} AS since FROM conversation WHERE {' AND '.join(clauses)}",
                          params)
    if flt.by_customer:
        grouped: dict[int, float] = {}
        for r in rows:
            pick = min if ascending else max
            grouped[r["customer_id"]] = pick(grouped.get(r["customer_id"], r["since"]), r["since"])
        items = list(grouped.items())
    else:
        items = [(r["id"], r["since"]) for r in rows]
    items.sort(key=lambda kv: ((kv[1] if ascending else -kv[1]), kv[0]))
    return items


def assert_lists_match(store: Store) -> None:
    for status in STATUSES:
        for channel in (None, "email", "sms", "whatsapp", "telegram"):
            for grouped in (True, False):
                flt = ListFilter(status, channel, by_customer=grouped)
                want = expected_rows(store, flt)
                got = store.list_rows(flt, 0, 10_000)
                assert [(r.key, r.since) for r in got] == want, (status, channel, grouped)
                assert store.count_rows(flt) == len(want), (status, channel, grouped)
                counts = store.status_counts(flt)
                assert counts[status] == len(want)
    in_use = sorted({r[0] for r in store.db.query("SELECT DISTINCT channel FROM conversation")})
    assert store.channels_in_use() == in_use


def inbound(n: int, person: int, at: float, direction: str = "in", channel: int | None = None) -> InboundMessage:
    channel_name, kind = CHANNELS[person % len(CHANNELS) if channel is None else channel]
    address = f"p{person}@example.com" if kind == "email" else (
        f"+1555{person:07d}" if kind == "phone" else str(7000 + person))
    return InboundMessage(f"m{n}", f"t{person}-{channel_name}", channel_name, direction,
                          Address(kind, address, f"Person {person}"), at, f"message {n}")


def test_rows_and_counts_follow_every_kind_of_change(tmp_path):
    rng = random.Random(5)
    store = Store(tmp_path / "console.db")
    n = 0
    for step in range(40):
        batch = []
        for _ in range(rng.randint(1, 15)):
            n += 1
            batch.append(inbound(n, rng.randrange(25), 1_000_000 + n * 60, rng.choice(("in", "in", "out")),
                                 rng.choice((None, 0, 1))))
        store.apply_pull("acct", PullResult(messages=batch))
        customers = [r[0] for r in store.db.query("SELECT id FROM customer")]
        action = rng.choice(("status", "status", "snooze", "merge", "split", "reply", "none"))
        customer = rng.choice(customers)
        if action == "status":
            store.set_status(rng.choice(STATUSES), customer_id=customer)
        elif action == "snooze":
            store.set_status("snoozed", customer_id=customer, snooze_until=2_000_000 + step)
        elif action == "merge":
            other = rng.choice(customers)
            if other != customer:
                store.merge_customers(customer, other)
        elif action == "split":
            identities = store.identities(customer)
            if len(identities) > 1:
                store.split_identity(identities[-1].id)
        elif action == "reply":
            target = store.reply_targets(customer)[0]
            store.enqueue_reply(target["identity_id"], target["account"], target["channel"], "thanks",
                                conversation_id=target["conversation_id"])
        assert_lists_match(store)
    store.close()


def test_a_workspace_from_before_the_precomputed_list_gets_its_rows_on_upgrade(tmp_path):
    import sqlite3

    from console.store.schema import MIGRATIONS

    before = next(n for n, migration in enumerate(MIGRATIONS) if any("CREATE TABLE list_row" in s for s in migration))
    path = tmp_path / "console.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:before]:  # the workspace as the version before wrote it
        for statement in migration:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {before}")
    for n in range(7):
        conn.execute("INSERT INTO customer (id, name, created_at, updated_at) VALUES (?, ?, 0, 0)", (n + 1, f"P{n}"))
        conn.execute("INSERT INTO identity (id, customer_id, kind, address, created_at) VALUES (?, ?, 'email', ?, 0)",
                     (n + 1, n + 1, f"p{n}@example.com"))
        for k in range(n % 3 + 1):
            conn.execute(
                """INSERT INTO conversation (account, thread_key, channel, customer_id, identity_id, status,
                       waiting_since, last_inbound_at, last_message_at) VALUES ('a', ?, 'email', ?, ?, ?, ?, ?, ?)""",
                (f"t{n}-{k}", n + 1, n + 1, "open" if k == 0 else "done", 100.0 + n, 100.0 + n, 100.0 + n + k))
    conn.close()
    upgraded = Store(path)
    assert upgraded.count_rows(ListFilter("open")) == 7
    assert_lists_match(upgraded)
    upgraded.close()


def test_a_kept_row_stays_at_its_place_with_its_channels(tmp_path):
    store = Store(tmp_path / "console.db")
    store.apply_pull("acct", PullResult(messages=[inbound(i, i, 1_000_000 + i * 3600) for i in range(5)]))
    rows = store.list_rows(ListFilter("open"), 0, 10)
    middle = rows[2]
    # An old, already answered thread of the same customer on another channel.
    store.apply_pull("acct", PullResult(messages=[inbound(100, middle.customer_id - 1, 10.0, "in", 3),
                                                  inbound(101, middle.customer_id - 1, 20.0, "out", 3)]))
    target = store.reply_targets(middle.customer_id)
    sms = next(t for t in target if t["conversation_id"] == middle.conversation_id)
    store.enqueue_reply(sms["identity_id"], sms["account"], sms["channel"], "on its way",
                        conversation_id=middle.conversation_id)
    kept = ListFilter("open", keep=middle.key, keep_since=middle.since, keep_channels=middle.channels)
    after = store.list_rows(kept, 0, 10)
    assert [r.key for r in after] == [r.key for r in rows]
    assert after[2].since == middle.since and after[2].channels == middle.channels
    assert store.count_rows(kept) == 5 and store.count_rows(ListFilter("open")) == 4
    # Pages cut anywhere give the same list.
    assert [r.key for p in range(5) for r in store.list_rows(kept, p, 1)] == [r.key for r in rows]
    assert [r.key for r in store.list_rows(kept, 0, 2) + store.list_rows(kept, 2, 3)] == [r.key for r in rows]
    store.close()
