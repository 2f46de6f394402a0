"""STOP on every channel, through each channel's real adapter and its fake (the contract's peers):
the customer's opt-out reaches the store as they wrote it, and nothing marketing reaches them
afterwards, whatever is in the outbox."""

from __future__ import annotations

import pytest

from channels.test_contract import ACCOUNT, CASES, peer_class, workspace
from console.store import Store
from outreach_world import ANYTIME
from workspace import sync_once


@pytest.fixture(params=CASES, ids=[f"{kind}-{channel}" for kind, channel in CASES])
def peer(request):
    kind, channel = request.param
    running = peer_class(kind)()
    running.start()
    running.channel = channel
    yield running
    running.stop()
    assert running.violations == [], "requests or answers outside the service's description"


def identity_of(store, customer) -> int:
    return store.db.query_one("SELECT id FROM identity WHERE kind = ? AND address = ?",
                              (customer.address.kind, customer.address.address))[0]


def test_stop_on_any_channel_withdraws_marketing_there_and_nothing_marketing_goes(tmp_path, peer):
    store = Store(tmp_path / "console.db", "US", ANYTIME)
    ws = workspace(tmp_path, peer)
    customer = peer.customer(peer.channel)
    peer.writes(customer, "hello, do you deliver?")
    assert sync_once(ws, store) == {}
    ident = identity_of(store, customer)
    store.set_consent(ident, peer.channel, "marketing", "granted", "asked in shop", at=0.0)
    peer.writes(customer, "STOP")
    assert sync_once(ws, store) == {}
    assert store.consent_state(ident, peer.channel, "marketing") == "withdrawn"
    assert sync_once(ws, store) == {}  # the confirmation, where the channel expects one, has gone
    before = peer.received(customer)
    store.enqueue_reply(ident, ACCOUNT, peer.channel, "Spring menu: 20% off!", purpose="marketing")
    assert sync_once(ws, store) == {}
    assert peer.received(customer) == before  # the outbox refused it: it never reached the service
    row = store.db.query_one("SELECT state, refusal FROM outbox WHERE purpose = 'marketing'")
    assert (row["state"], row["refusal"]) == ("cancelled", "opted_out")
    store.close()
