"""The Mastodon account, end to end: a stateful local Mastodon (tests/fakes/mastodon.py, the
`mastodon-mock` server) <-> the adapter <-> the sync engine <-> a real store. The adapter is only
pointed at it by `instance_url`; nothing is patched.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timezone

import pytest

from console.channels import open_channel
from console.channels.catalog import mastodon_length
from console.config import ConfigError
from console.model import AuthError, TransientError
from fakes.mastodon import TOKEN, FakeMastodon
from workspace import sync_once, with_open_channel, workspace_from

@pytest.fixture
def mastodon():
    fake = FakeMastodon().start()
    yield fake
    fake.stop()


def config(tmp_path, fake, token: str = TOKEN, extra: str = ""):
    return workspace_from(
        '[workspace]\nname = "Acme"\n'
        '[[accounts]]\nkind = "mastodon"\nname = "masto"\n'
        f'access_token = "{token}"\ninstance_url = "{fake.url}"\npoll_interval = 0.01\ntimeout = 5\n' + extra,
        tmp_path)


def sync(tmp_path, fake, store, **kw) -> dict[str, str]:
    return sync_once(config(tmp_path, fake, **kw), store)


def with_channel(tmp_path, fake, work, **kw):
    return with_open_channel(config(tmp_path, fake, **kw), work)


def identity(store, account_id: str):
    return store.db.query_one("SELECT * FROM identity WHERE kind = 'mastodon' AND address = ?", (account_id,))


def bodies(store) -> list[str]:
    return [r["body"] for r in store.db.query("SELECT body FROM message ORDER BY sent_at, id")]


def state(store):
    return {s.name: s for s in store.account_states()}["masto"]


# ---- inbound ------------------------------------------------------------------------------------

def test_a_direct_message_appears_under_that_mastodon_account(tmp_path, mastodon, store):
    maria = mastodon.add_user("maria", "Maria Lopez")
    kofi = mastodon.add_user("kofi", "Kofi")
    mastodon.dm(maria, "Is the cake ready?")
    mastodon.dm(kofi, "Price for 20 boxes?")
    assert sync(tmp_path, mastodon, store) == {}

    ident = identity(store, maria["id"])
    assert ident["display_name"] == "@maria"
    [entry] = store.timeline(ident["customer_id"])
    assert (entry.channel, entry.direction, entry.body) == ("mastodon", "in", "Is the cake ready?")
    conversation = store.db.query_one("SELECT * FROM conversation WHERE identity_id = ?", (ident["id"],))
    assert conversation["status"] == "open" and conversation["thread_key"] == maria["id"]
    assert store.timeline(identity(store, kofi["id"])["customer_id"])[0].body == "Price for 20 boxes?"
    assert state(store).state == "ok"


def test_earlier_statuses_of_a_thread_come_from_its_context_and_only_dms_count(tmp_path, mastodon, store):
    ann = mastodon.add_user("ann")
    first = mastodon.dm(ann, "Hello!")
    mastodon.dm(ann, "a public shout-out", visibility="public")
    ours = mastodon.http.post("/api/v1/statuses", headers={"Authorization": f"Bearer {TOKEN}"}, json={
        "status": "@ann Hi Ann, how can we help?", "visibility": "direct", "in_reply_to_id": first["id"]}).json()
    second = mastodon.dm(ann, "Do you have <b>vegan</b> cakes?", in_reply_to=ours["id"])
    newest = mastodon.dm(ann, "And gluten-free?", in_reply_to=second["id"])
    assert sync(tmp_path, mastodon, store) == {}

    timeline = store.timeline(identity(store, ann["id"])["customer_id"])
    assert [(e.direction, e.body) for e in timeline] == [
        ("in", "Hello!"), ("out", "Hi Ann, how can we help?"), ("in", "Do you have <b>vegan</b> cakes?"),
        ("in", "And gluten-free?")]
    assert store.cursor("masto") == newest["id"]


def test_group_dms_are_not_one_customers_conversation(tmp_path, mastodon, store):
    ann, bob = mastodon.add_user("ann"), mastodon.add_user("bob")
    mastodon.dm(ann, "@bob shall we order together?")
    mastodon.dm(bob, "just me here")
    sync(tmp_path, mastodon, store)
    assert bodies(store) == ["just me here"]


def test_hostile_names_and_bodies_are_stored_unchanged_as_data(tmp_path, mastodon, store):
    name = "\x1b]0;owned\x07[bold red]Eve[/]"
    body = "\x1b[2J\x1bc[@click=app.quit]click me[/] [/urgent] <script>alert(1)</script> \u202efdp.exe \x9b31m"
    eve = mastodon.add_user("eve", name)
    mastodon.dm(eve, body)
    assert sync(tmp_path, mastodon, store) == {}
    ident = identity(store, eve["id"])
    assert ident["display_name"] == "@eve"
    [entry] = store.timeline(ident["customer_id"])
    assert entry.body == body
    row = store.db.query_one("SELECT html FROM message")
    assert "&lt;script&gt;" in row["html"]


# ---- replies -------------------------------------------------------------------------------------

def test_a_reply_is_a_direct_status_mentioning_the_customer_under_their_last_status(tmp_path, mastodon, store):
    maria = mastodon.add_user("maria")
    first = mastodon.dm(maria, "Is the cake ready?")
    last = mastodon.dm(maria, "For pickup at 4?", in_reply_to=first["id"])
    sync(tmp_path, mastodon, store)
    ident = identity(store, maria["id"])
    message_id = store.enqueue_reply(ident["id"], "masto", "mastodon", "Yes, pick up after 4.")
    assert sync(tmp_path, mastodon, store) == {}

    [posted] = mastodon.business_statuses()
    assert posted["visibility"] == "direct" and posted["in_reply_to_id"] == last["id"]
    assert [m["id"] for m in posted["mentions"]] == [maria["id"]]
    assert "@maria" in posted["content"] and "Yes, pick up after 4." in posted["content"]
    row = store.db.query_one("SELECT * FROM message WHERE id = ?", (message_id,))
    assert row["status"] == "sent" and row["external_id"] == posted["id"]
    # Maria sees it in her conversation with the business
    [conversation] = mastodon.get("/api/v1/conversations", token=maria["access_token"])
    assert conversation["last_status"]["id"] == posted["id"]
    # the next pull finds our own reply and does not store it twice
    sync(tmp_path, mastodon, store)
    assert bodies(store) == ["Is the cake ready?", "For pickup at 4?", "Yes, pick up after 4."]


def test_a_retried_send_posts_once_thanks_to_the_idempotency_key(tmp_path, mastodon, store):
    ann = mastodon.add_user("ann")
    mastodon.dm(ann, "hi")
    sync(tmp_path, mastodon, store)
    store.enqueue_reply(identity(store, ann["id"])["id"], "masto", "mastodon", "hello Ann")
    [out] = store.claim_due(["masto"])

    async def send_twice(channel):
        return await channel.send(out), await channel.send(out)  # the first answer "was lost"

    first, again = with_channel(tmp_path, mastodon, send_twice)
    assert first.external_id == again.external_id
    assert len(mastodon.business_statuses()) == 1


def test_a_send_interrupted_by_a_crash_is_found_again_not_posted_twice(tmp_path, mastodon, store):
    ann = mastodon.add_user("ann")
    mastodon.dm(ann, "hi")
    sync(tmp_path, mastodon, store)
    message_id = store.enqueue_reply(identity(store, ann["id"])["id"], "masto", "mastodon", "on its way")
    [out] = store.claim_due(["masto"])
    posted = with_channel(tmp_path, mastodon, lambda channel: channel.send(out))  # then the process died
    assert sync(tmp_path, mastodon, store) == {}
    assert len(mastodon.business_statuses()) == 1
    row = store.db.query_one("SELECT status, external_id FROM message WHERE id = ?", (message_id,))
    assert (row["status"], row["external_id"]) == ("sent", posted.external_id)


def test_a_reply_is_not_taken_for_a_longer_one_that_starts_the_same(tmp_path, mastodon, store):
    ann = mastodon.add_user("ann")
    mastodon.dm(ann, "Can I pick up at 4?")
    sync(tmp_path, mastodon, store)
    ident = identity(store, ann["id"])
    store.enqueue_reply(ident["id"], "masto", "mastodon", "Thanks! See you at 4, and bring the receipt")
    [longer] = store.claim_due(["masto"])
    with_channel(tmp_path, mastodon, lambda channel: channel.send(longer))  # then the process died
    store.record_failed(longer, "cancelled by hand")  # a person settled that one
    store.enqueue_reply(ident["id"], "masto", "mastodon", "Thanks! See you at 4")
    [out] = store.claim_due(["masto"])  # claimed, and the process died before posting it

    found = with_channel(tmp_path, mastodon, lambda channel: channel.reconcile(out))
    assert found is None  # the longer status is not this reply


def test_a_reply_over_500_characters_fails_at_once_without_calling_mastodon(tmp_path, mastodon, store):
    ann = mastodon.add_user("ann")
    mastodon.dm(ann, "hi")
    sync(tmp_path, mastodon, store)
    ident = identity(store, ann["id"])
    too_long = store.enqueue_reply(ident["id"], "masto", "mastodon", "x" * 496)  # "@ann " makes it 501
    fits = store.enqueue_reply(ident["id"], "masto", "mastodon", "y" * 495)
    sync(tmp_path, mastodon, store)
    row = store.db.query_one("SELECT status, status_detail FROM message WHERE id = ?", (too_long,))
    assert row["status"] == "failed" and "at most 500" in row["status_detail"]
    assert store.db.query_one("SELECT status FROM message WHERE id = ?", (fits,))["status"] == "sent"
    assert [s["content"] for s in mastodon.business_statuses()] == [f"<p>@ann {'y' * 495}</p>"]


def test_lengths_are_counted_as_mastodon_counts_them():
    # Every URL counts 23 characters and a remote mention only its user part. (The mock counts
    # raw characters, so this rule is checked here rather than against it.)
    assert mastodon_length("@ann@remote.example " + "y" * 400 + " https://acme.example/" + "z" * 200) == 5 + 401 + 23
    assert mastodon_length("\U0001F382" * 10) == 10


# ---- errors --------------------------------------------------------------------------------------

def _reset_in(seconds: int) -> str:
    return datetime.fromtimestamp(time.time() + seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def test_a_rate_limit_waits_until_mastodon_resets_it(tmp_path, mastodon, store):
    mastodon.fail("/api/v1/conversations", {"type": "ratelimit", "headers": {"X-RateLimit-Reset": _reset_in(40)}})
    failed = sync(tmp_path, mastodon, store)
    assert "rate limiting" in failed["masto"]
    assert state(store).state == "retrying" and re.search(r"retrying in (39|40)s", state(store).detail)

    async def pull(channel):
        mastodon.fail("/api/v1/conversations", {"type": "ratelimit", "headers": {"X-RateLimit-Reset": _reset_in(90)}})
        with pytest.raises(TransientError) as caught:
            await channel.pull(None)
        return caught.value

    assert 85 <= with_channel(tmp_path, mastodon, pull).retry_after <= 90


def test_a_rate_limited_reply_is_retried_after_the_reset_and_posted_once(tmp_path, mastodon, store):
    ann = mastodon.add_user("ann")
    mastodon.dm(ann, "hi")
    sync(tmp_path, mastodon, store)
    message_id = store.enqueue_reply(identity(store, ann["id"])["id"], "masto", "mastodon", "hello")
    mastodon.fail("/api/v1/statuses", {"type": "ratelimit", "headers": {"X-RateLimit-Reset": _reset_in(60)}},
                  methods=("POST",))
    sync(tmp_path, mastodon, store)
    outbox = store.db.query_one("SELECT * FROM outbox WHERE message_id = ?", (message_id,))
    assert outbox["state"] == "pending" and outbox["next_try_at"] >= time.time() + 55
    assert mastodon.business_statuses() == []
    with store.db.write() as conn:
        conn.execute("UPDATE outbox SET next_try_at = 0")
    sync(tmp_path, mastodon, store)
    assert len(mastodon.business_statuses()) == 1


def test_a_refused_token_stops_the_account_and_never_shows_the_token(tmp_path, mastodon, store, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "revoked-token-ffffeeeeddddcccc"
    failed = sync(tmp_path, mastodon, store, token=wrong)
    assert "refused the access token" in failed["masto"]
    account = state(store)
    assert account.state == "auth" and "access_token" in account.detail
    assert wrong not in account.detail and wrong not in caplog.text and TOKEN not in caplog.text

    async def check(channel):
        with pytest.raises(AuthError) as caught:
            await channel.check()
        return str(caught.value)

    assert wrong not in with_channel(tmp_path, mastodon, check, token=wrong)
    assert with_channel(tmp_path, mastodon, lambda channel: channel.check()).startswith("Mastodon @acmebakery on 127.0.0.1")


def test_a_missing_access_token_is_a_config_error_naming_the_key(tmp_path):
    ws = workspace_from('[[accounts]]\nkind = "mastodon"\nname = "masto"\ninstance_url = "https://m.example"\n', tmp_path)
    with pytest.raises(ConfigError, match="access_token"):
        open_channel(ws.accounts[0], ws)


# ---- cursor: restarts, batches -------------------------------------------------------------------

def test_a_restart_resumes_from_the_cursor_losing_and_duplicating_nothing(tmp_path, mastodon, store):
    ann, bob = mastodon.add_user("ann"), mastodon.add_user("bob")
    first = mastodon.dm(ann, "before")
    sync(tmp_path, mastodon, store)
    assert store.cursor("masto") == first["id"]
    during = mastodon.dm(ann, "during 1", in_reply_to=first["id"])
    mastodon.dm(bob, "during 2")

    lost = with_channel(tmp_path, mastodon, lambda channel: channel.pull(store.cursor("masto")))  # never applied
    assert sorted(m.body for m in lost.messages) == ["during 1", "during 2"]
    mastodon.dm(ann, "after", in_reply_to=during["id"])
    sync(tmp_path, mastodon, store)
    sync(tmp_path, mastodon, store)
    again = with_channel(tmp_path, mastodon, lambda channel: channel.pull(store.cursor("masto")))
    assert again.messages == [] and again.cursor is None
    store.apply_pull("masto", lost)  # even a late, repeated apply adds nothing
    assert bodies(store) == ["before", "during 1", "during 2", "after"]


def test_a_first_sync_of_many_conversations_goes_in_batches(tmp_path, mastodon, store):
    for n in range(45):
        mastodon.dm(mastodon.add_user(f"customer{n}"), f"message {n}")

    first = with_channel(tmp_path, mastodon, lambda channel: channel.pull(None))
    assert len(first.messages) == 40 and first.more
    assert sync(tmp_path, mastodon, store) == {}
    assert sorted(bodies(store)) == sorted(f"message {n}" for n in range(45))
