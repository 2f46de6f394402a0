"""The contract every channel adapter keeps, run against each one through its fake.

One case per (account kind, channel) of the catalog, driven through the kind's `fakes.<kind>.Peer`
(tests/fakes/peer.py): the real adapter, the real engine and a real store; only the service is a
fake. A new account kind is held to all of this as soon as its fake module has a Peer.
"""

from __future__ import annotations

import importlib
import logging
import time

import pytest

from console.channels import catalog
from console.model import Address, AuthError, Outgoing, PermanentError, TransientError
from console.sanitize import clean
from fakes.peer import ACCOUNT, Customer, Peer
from servers.http import closed_port_url
from workspace import sync_once, with_open_channel, workspace_from

# Account kinds whose Peer is still to come, and why. Every other kind must have one.
AWAITING_PEER = {
    "email": "no Peer yet (Dovecot and aiosmtpd from tests/servers/dovecot.py); its sends in doubt are "
             "tested against them in tests/test_email.py (test_killing_a_send_at_any_step_never_sends_twice)",
}

HOSTILE = ("\x1b]0;owned\x07\x1b[2J\x1bc[@click=app.quit]click me[/] [/urgent] \u202efdp.exe "
           "zero\u200bwidth\u200c\u2060\ufeffjoin \x9b31m done")


def peer_class(kind: str) -> type[Peer]:
    return importlib.import_module(f"fakes.{kind}").Peer


CASES = [(kind.id, channel) for kind in catalog.account_kinds() if kind.id not in AWAITING_PEER
         for channel in peer_class(kind.id).channels]


@pytest.fixture(params=CASES, ids=[f"{kind}-{channel}" for kind, channel in CASES])
def peer(request):
    kind, channel = request.param
    running = peer_class(kind)()
    running.start()
    running.channel = channel
    yield running
    running.stop()
    assert running.violations == [], "requests or answers outside the service's description"


def workspace(tmp_path, peer: Peer, url: str | None = None):
    return workspace_from(f'[workspace]\nname = "Acme"\n[[accounts]]\nkind = "{peer.kind}"\nname = "{ACCOUNT}"\n'
                          + peer.account(url), tmp_path)


def with_adapter(tmp_path, peer: Peer, work, url: str | None = None):
    """`await work(adapter)` on a freshly opened adapter (as after a restart), closed afterwards."""
    return with_open_channel(workspace(tmp_path, peer, url), work)


def drain(tmp_path, peer: Peer, cursor: str | None):
    """Every pull of one catch-up from `cursor` (until nothing more), none of them applied."""
    async def pulls(adapter):
        results, at = [], cursor
        while True:
            result = await adapter.pull(at)
            results.append(result)
            at = result.cursor or at
            if not result.more:
                return results

    return with_adapter(tmp_path, peer, pulls)


def said_by(results, customer: Customer) -> list[str]:
    return [m.body for r in results for m in r.messages
            if m.direction == "in" and (m.peer.kind, m.peer.address) == (customer.address.kind, customer.address.address)]


def bodies_of(store, customer: Customer) -> list[str]:
    return [r["body"] for r in store.db.query(
        "SELECT m.body FROM message m JOIN identity i ON i.id = m.identity_id "
        "WHERE i.kind = ? AND i.address = ? ORDER BY m.sent_at, m.id", (customer.address.kind, customer.address.address))]


def reply(store, customer: Customer, body: str) -> int:
    identity = store.db.query_one("SELECT id FROM identity WHERE kind = ? AND address = ?",
                                  (customer.address.kind, customer.address.address))
    return store.enqueue_reply(identity["id"], ACCOUNT, customer.channel, body)


def unable(peer: Peer, clause: str) -> None:
    if clause in peer.cannot:
        pytest.skip(peer.cannot[clause])


def test_every_account_kind_has_a_peer_or_says_why_not():
    for kind in catalog.account_kinds():
        if kind.id in AWAITING_PEER:
            continue
        found = peer_class(kind.id)
        assert found.kind == kind.id and set(found.channels) <= set(kind.channels)


# ---- pulling ------------------------------------------------------------------------------------

def test_the_same_pull_applied_twice_stores_nothing_twice(tmp_path, peer, store):
    customer = peer.customer(peer.channel)
    peer.writes(customer, "Is the cake ready?")
    results = drain(tmp_path, peer, None)
    first = [store.apply_pull(ACCOUNT, result) for result in results]
    assert sum(first) > 0
    assert [store.apply_pull(ACCOUNT, result) for result in results] == [0] * len(results)
    assert [store.apply_pull(ACCOUNT, result) for result in drain(tmp_path, peer, None)] == [0] * len(results)
    assert bodies_of(store, customer).count("Is the cake ready?") == 1  # (the demo's people have a history)


def test_a_restart_with_the_saved_cursor_brings_only_what_is_new(tmp_path, peer, store):
    customer = peer.customer(peer.channel)
    peer.writes(customer, "first")
    assert sync_once(workspace(tmp_path, peer), store) == {}
    cursor = store.cursor(ACCOUNT)
    peer.writes(customer, "second")

    resumed = drain(tmp_path, peer, cursor)
    assert said_by(resumed, customer) == ["second"]
    for result in resumed:
        store.apply_pull(ACCOUNT, result)
    stored = bodies_of(store, customer)
    assert stored[-2:] == ["first", "second"] and stored.count("first") == 1


def test_hostile_text_comes_through_as_data(tmp_path, peer, store):
    customer = peer.customer(peer.channel)
    peer.writes(customer, HOSTILE)
    assert sync_once(workspace(tmp_path, peer), store) == {}
    assert bodies_of(store, customer)[-1] == HOSTILE  # kept exactly as written
    shown = clean(HOSTILE)
    assert not any(c in shown for c in "\x1b\x07\x9b\u202e")
    assert "[@click=app.quit]click me[/]" in shown  # characters on the screen, never markup


# ---- sending --------------------------------------------------------------------------------------

def _settled(store, message_id: int):
    return store.db.query_one("SELECT status, external_id FROM message WHERE id = ?", (message_id,))


def test_a_send_left_in_doubt_reaches_the_customer_once(tmp_path, peer, store):
    customer = peer.customer(peer.channel)
    peer.writes(customer, "Can I pick up at 4?")
    assert sync_once(workspace(tmp_path, peer), store) == {}
    message_id = reply(store, customer, "See you at 4")
    [out] = store.claim_due([ACCOUNT])
    sent = with_adapter(tmp_path, peer, lambda adapter: adapter.send(out))  # then the process died

    assert sync_once(workspace(tmp_path, peer), store) == {}
    assert sync_once(workspace(tmp_path, peer), store) == {}
    assert peer.received(customer) == [sent.external_id]
    row = _settled(store, message_id)
    if peer.reconciles:
        assert (row["status"] in ("queued", "sent", "delivered"), row["external_id"]) == (True, sent.external_id)
    else:
        assert row["status"] == "unknown"  # left to a person, never sent again


def test_two_identical_replies_left_in_doubt_are_each_matched_to_their_own_message(tmp_path, peer, store):
    customer = peer.customer(peer.channel)
    peer.writes(customer, "Can I pick up at 4?")
    assert sync_once(workspace(tmp_path, peer), store) == {}
    first, second = reply(store, customer, "Thanks!"), reply(store, customer, "Thanks!")
    claimed = store.claim_due([ACCOUNT])

    async def send_both(adapter):  # both sent, then the process died before recording either
        return [await adapter.send(out) for out in claimed]

    results = with_adapter(tmp_path, peer, send_both)
    assert sync_once(workspace(tmp_path, peer), store) == {}
    assert sync_once(workspace(tmp_path, peer), store) == {}
    assert peer.received(customer) == [r.external_id for r in results]
    rows = [_settled(store, first), _settled(store, second)]
    if peer.reconciles:
        assert [r["external_id"] for r in rows] == [r.external_id for r in results]
    else:
        assert [r["status"] for r in rows] == ["unknown", "unknown"]


# ---- errors ---------------------------------------------------------------------------------------

def test_refused_credentials_are_an_auth_error_with_a_sentence_and_no_secret(tmp_path, peer, store, caplog):
    unable(peer, "credentials")
    caplog.set_level(logging.DEBUG)
    peer.refuse_credentials()

    async def pull(adapter):
        with pytest.raises(AuthError) as caught:
            await adapter.pull(None)
        return str(caught.value)

    said = with_adapter(tmp_path, peer, pull)
    assert said[:1].isupper() and "\n" not in said and len(said) < 400
    failed = sync_once(workspace(tmp_path, peer), store)
    [state] = store.account_states()
    assert state.state == "auth" and failed[ACCOUNT]
    for secret in peer.secrets():
        assert secret not in said and secret not in state.detail and secret not in caplog.text


def test_a_rate_limit_is_a_transient_error_saying_how_long_to_wait(tmp_path, peer):
    unable(peer, "rate_limit")

    async def pull(adapter):
        asked = peer.rate_limit_next_pull(42)
        with pytest.raises(TransientError) as caught:
            await adapter.pull(None)
        return asked, caught.value

    asked, error = with_adapter(tmp_path, peer, pull)
    assert error.retry_after is not None and abs(error.retry_after - asked) <= 2
    assert "rat" in str(error).lower()  # "rate limiting": the person sees why it waits


# ---- length: what the composer allows is what the adapter sends -----------------------------------

def _texts() -> list[str]:
    """Around every limit of every channel, in plain letters, accents, emoji, CJK and URLs."""
    sizes = (70, 71, 160, 161, 335, 336, 500, 501, 670, 671, 999, 1000, 1001, 1530, 1531, 1600, 1601,
             2000, 2001, 2048, 2049, 4096, 4097)
    url = "https://acme.example/orders/118?ref=" + "x" * 60
    texts = []
    for n in sizes:
        texts += ["a" * n, "é" * n, "\U0001F382" * (n // 2), "\U0001F382" * (n // 2 + 1), "漢" * n, "€" * (n // 2)]
        texts.append(("see " + url + " ") * (n // 100 + 1) + "z" * (n % 100))
        texts.append("a" * (n - 25) + " " + url)
    return texts


def test_the_composer_verdict_is_what_the_adapter_enforces(tmp_path, peer):
    customer = peer.customer(peer.channel)
    account = workspace(tmp_path, peer).accounts[0]
    settings = catalog.length_settings(account.raw, mention=customer.address.display_name)
    nowhere = closed_port_url()  # a send the length rule lets through stops at the network, not before
    to = Address(customer.address.kind, customer.address.address, customer.address.display_name)

    async def check_all(adapter):
        mismatches = []
        for n, text in enumerate(_texts()):
            verdict = catalog.measure(peer.channel, text, settings)
            out = Outgoing(n + 1, n + 1, ACCOUNT, peer.channel, to, text, idempotency_key=f"k{n}",
                           thread_key="", thread_external_ids=("1",), created_at=time.time())
            try:
                await adapter.send(out)
                refused = None
            except PermanentError as exc:
                refused = str(exc) if exc.code == "too_long" else None
            except TransientError:
                refused = None
            if refused != (verdict.refusal or None):
                mismatches.append((len(text), text[:12], verdict.note, refused))
        return mismatches

    assert with_adapter(tmp_path, peer, check_all, url=nowhere) == []
