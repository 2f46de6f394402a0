"""The demo account kind: a realistic bakery inbox behind the real channel contract, no network."""

import asyncio
import json

import pytest

from console.channels import open_channel
from console.config import ConfigError, demo_config
from console.model import Address, Outgoing
from console.store import ListFilter, Store
from console.sync import Engine

from workspace import workspace_from


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    ws = demo_config(tmp_path_factory.mktemp("demo"))
    for account in ws.accounts:
        account.raw["chatter"] = False
    store = Store(ws.store_location)
    failed = asyncio.run(Engine(ws, store).run(once=True))
    yield ws, store, failed
    store.close()


def test_demo_workspace_is_a_realistic_bakery(seeded):
    ws, store, failed = seeded
    assert failed == {}
    db = store.db
    assert db.query_one("SELECT COUNT(*) FROM customer")[0] >= 60
    assert store.count_messages() >= 2000
    # Customers on two or three channels, including email + telegram and SMS + WhatsApp (one phone).
    kinds = db.query("SELECT customer_id, GROUP_CONCAT(DISTINCT kind) AS k FROM identity GROUP BY customer_id")
    multi = [set(r["k"].split(",")) for r in kinds if "," in r["k"]]
    assert len(multi) >= 10 and any({"email", "telegram"} <= k for k in multi)
    assert db.query_one("""SELECT COUNT(*) FROM (SELECT customer_id FROM conversation GROUP BY customer_id
                           HAVING COUNT(DISTINCT channel) >= 2)""")[0] >= 10
    # Email threads with quoted replies, and history spread over weeks.
    assert db.query_one("SELECT COUNT(*) FROM message WHERE channel = 'email' AND body LIKE '%> %'")[0] > 100
    span = db.query_one("SELECT MAX(sent_at) - MIN(sent_at) FROM message")[0]
    assert span > 30 * 86400
    # Conversations waiting for minutes, hours and more than a day; old answered ones closed.
    waits = sorted(r.since for r in store.list_rows(ListFilter("open"), 0, 500))
    ages = [(db.query_one("SELECT MAX(sent_at) FROM message")[0] - s) / 3600 for s in waits]
    assert max(ages) > 20 and min(ages) < 1 and len(ages) >= 10
    assert store.status_counts(ListFilter())["done"] > 30
    # Hostile strings, stored as data, and one customer who texted STOP.
    assert db.query_one("SELECT COUNT(*) FROM message WHERE body LIKE '%[@click=app.quit]%'")[0] >= 1
    assert db.query_one("SELECT COUNT(*) FROM message WHERE instr(body, char(27)) > 0")[0] >= 1
    # ... on SMS only: the same number's WhatsApp stays open.
    stopped = db.query("SELECT identity_id, channel FROM consent WHERE purpose = 'service' AND state = 'withdrawn'")
    assert [r["channel"] for r in stopped] == ["sms"]
    assert db.query_one("""SELECT COUNT(*) FROM conversation WHERE identity_id = ? AND channel = 'whatsapp'""",
                        (stopped[0]["identity_id"],))[0] >= 1


def test_first_pull_comes_in_batches_with_progress_and_repeats_safely(tmp_path):
    ws = workspace_from('[[accounts]]\nkind = "demo"\nname = "d"\nchannels = ["sms", "whatsapp"]\n'
                        'chatter = false\n', tmp_path)
    channel = open_channel(ws.accounts[0], ws)
    store = Store(tmp_path / "c.db")
    first = asyncio.run(channel.pull(None))
    assert first.more and first.progress[0] == len(first.messages) <= 500 < first.progress[1]
    store.apply_pull("d", first)
    cursor = first.cursor
    while True:
        result = asyncio.run(channel.pull(cursor))
        store.apply_pull("d", result)
        cursor = result.cursor or cursor
        if not result.more:
            break
    assert result.progress is None or result.progress[0] == result.progress[1]
    total = store.count_messages()
    # The same batch again (a crash before the cursor was stored) adds nothing.
    assert store.apply_pull("d", asyncio.run(channel.pull(first.cursor))) == 0
    assert store.count_messages() == total
    assert {r["channel"] for r in store.db.query("SELECT DISTINCT channel FROM message")} == {"sms", "whatsapp"}
    store.close()


def test_reply_is_sent_then_delivered_and_sometimes_answered(tmp_path):
    ws = workspace_from('[[accounts]]\nkind = "demo"\nname = "d"\nchannels = ["sms"]\nchatter = false\n'
                        'reply_delay = 0\n', tmp_path)
    channel = open_channel(ws.accounts[0], ws)
    peer = Address("phone", "+15550100001", "Ann")
    answered = 0
    for n in range(30):
        out = Outgoing(n, n, "d", "sms", peer, "Ready at four.", idempotency_key=f"k{n}", thread_key="sms:+15550100001")
        sent = asyncio.run(channel.send(out))
        assert sent.status == "sent" and sent.external_id == f"demo-k{n}"
        later = asyncio.run(channel.pull(json.dumps({"seed": 7, "anchor": 0, "done": 10**6})))
        assert [u.external_id for u in later.status_updates] == [sent.external_id]
        assert later.status_updates[0].status == "delivered"
        answered += len(later.messages)
        assert all(m.direction == "in" and m.peer == peer for m in later.messages)
    assert 0 < answered < 30


def test_bad_channels_name_the_line(tmp_path):
    ws = workspace_from('[[accounts]]\nkind = "demo"\nname = "d"\nchannels = ["sms", "fax"]\n', tmp_path)
    with pytest.raises(ConfigError, match=r"line 4, key 'accounts\[0\].channels': unknown channel 'fax'"):
        open_channel(ws.accounts[0], ws)


def test_chatter_is_lively_but_bounded(monkeypatch):
    """Made-up customers ask now and then, never more than a handful waiting at once; an answer
    to one of them lets another ask (the demo's Open tab no longer grows by dozens an hour)."""
    from console.channels import demo

    clock = [1_900_000_000.0]
    monkeypatch.setattr(demo.time, "time", lambda: clock[0])
    channel = demo.DemoChannel("phone", ("sms", "whatsapp"), seed=3, chatter=True, reply_delay=3600)

    async def run() -> list:
        cursor, questions = None, []
        while True:  # the first pulls bring the history
            result = await channel.pull(cursor)
            cursor = result.cursor
            if not result.more:
                break
        for _ in range(12 * 60):  # an hour of polls, every 5 seconds
            clock[0] += 5
            result = await channel.pull(cursor)
            cursor = result.cursor
            questions += result.messages
        return questions, cursor

    questions, cursor = asyncio.run(run())
    assert len(questions) == demo.CHATTER_OPEN  # and no more, however long the hour
    asked = questions[0]
    asyncio.run(channel.send(Outgoing(1, 1, "phone", asked.channel, asked.peer, "Yes!", idempotency_key="k1")))

    async def later():
        found = []
        for _ in range(12 * 10):
            clock[0] += 5
            found += [m for m in (await channel.pull(cursor)).messages if m.direction == "in"
                      and m.external_id.startswith("demo-live")]
        return found

    assert len(asyncio.run(later())) <= 1
