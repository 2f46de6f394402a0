"""The Facebook Page account (Messenger + Instagram), end to end: a local Graph API
(tests/fakes/meta.py) <-> the adapter <-> the sync engine <-> a real store. The adapter is only
pointed at the fake by `api_base_url`; nothing is patched.

Most tests raise `calls_per_second` so they run fast; the rate-limit test keeps Meta's 2."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import datetime, timezone

import pytest

from console.channels import open_channel
from console.config import ConfigError
from console.model import AuthError, TransientError
from console.sync import Engine
from fakes.meta import FakeMeta
from workspace import sync_once, with_open_channel, workspace_from

HOUR, DAY = 3600, 86400


@pytest.fixture
def meta():
    fake = FakeMeta().start()
    yield fake
    fake.stop()
    assert fake.violations == [], "requests outside the Graph API shapes the fake knows"


def config(tmp_path, fake, extra: str = "", rate: float = 200, token: str | None = None):
    return workspace_from(
        '[workspace]\nname = "Acme"\n'
        '[[accounts]]\nkind = "meta"\nname = "page"\n'
        f'page_id = "{fake.page_id}"\npage_access_token = "{token or fake.token}"\napi_base_url = "{fake.url}"\n'
        f"poll_interval = 0.01\ncalls_per_second = {rate}\ntimeout = 5\n" + extra,
        tmp_path)


def sync(tmp_path, fake, store, **kw) -> dict[str, str]:
    return sync_once(config(tmp_path, fake, **kw), store)


def with_channel(tmp_path, fake, work, **kw):
    return with_open_channel(config(tmp_path, fake, **kw), work)


def identity(store, user: dict):
    return store.db.query_one("SELECT * FROM identity WHERE kind = ? AND address = ?", (user["platform"], user["id"]))


def bodies(store) -> list[str]:
    return [r["body"] for r in store.db.query("SELECT body FROM message ORDER BY sent_at, id")]


def state(store):
    return {s.name: s for s in store.account_states()}["page"]


def status_of(store, message_id: int):
    return store.db.query_one("SELECT status, status_detail, external_id FROM message WHERE id = ?", (message_id,))


def reply(store, user: dict, body: str, **options) -> int:
    return store.enqueue_reply(identity(store, user)["id"], "page", user["platform"], body, options=options or None)


# ---- inbound ------------------------------------------------------------------------------------

def test_messenger_and_instagram_messages_appear_under_their_customers(tmp_path, meta, store):
    maria = meta.add_user("Maria Lopez", "messenger")
    kofi = meta.add_user("kofi_m", "instagram")
    meta.message(maria, "Is the cake ready?")
    meta.message(kofi, "Price for 20 boxes?")
    meta.page_message(kofi, "20 boxes are $90")  # answered from Meta Business Suite
    assert sync(tmp_path, meta, store) == {}

    ident = identity(store, maria)
    assert ident["display_name"] == "Maria Lopez"
    [entry] = store.timeline(ident["customer_id"])
    assert (entry.channel, entry.direction, entry.body) == ("messenger", "in", "Is the cake ready?")
    conversation = store.db.query_one("SELECT * FROM conversation WHERE identity_id = ?", (ident["id"],))
    assert conversation["thread_key"] == f"messenger:{maria['id']}" and conversation["status"] == "open"

    ig = identity(store, kofi)
    assert ig["display_name"] == "@kofi_m"
    assert [(e.channel, e.direction, e.body) for e in store.timeline(ig["customer_id"])] == [
        ("instagram", "in", "Price for 20 boxes?"), ("instagram", "out", "20 boxes are $90")]
    assert state(store).state == "ok"


def test_hostile_names_and_texts_are_stored_unchanged_as_data(tmp_path, meta, store):
    name = "\x1b]0;owned\x07[bold red]Eve[/] \u202efdp.exe"
    body = "\x1b[2J\x1bc[@click=app.quit]click me[/] [/urgent] <b>hi</b> \x9b31m"
    eve = meta.add_user(name, "messenger")
    meta.message(eve, body)
    assert sync(tmp_path, meta, store) == {}
    ident = identity(store, eve)
    assert ident["display_name"] == name and store.customer_name(ident["customer_id"]) == name
    assert store.timeline(ident["customer_id"])[0].body == body


def test_many_conversations_page_through_graph_and_arrive_in_batches_without_leaking_the_token(
        tmp_path, meta, store, caplog):
    caplog.set_level(logging.DEBUG)
    for n in range(30):
        meta.message(meta.add_user(f"Customer {n}"), f"message {n}")
    first = with_channel(tmp_path, meta, lambda channel: channel.pull(None), extra="instagram = false\n")
    assert len(first.messages) == 25 and first.more
    assert sync(tmp_path, meta, store) == {}
    assert sorted(bodies(store)) == sorted(f"message {n}" for n in range(30))
    assert meta.token not in caplog.text
    followed = [params for _, method, path, params in meta.calls if "after" in params]
    assert followed, "the listing's paging.next was followed"


# ---- replies and Meta's windows ------------------------------------------------------------------

def test_a_reply_within_24_hours_is_a_response(tmp_path, meta, store):
    maria = meta.add_user("Maria Lopez")
    meta.message(maria, "Is the cake ready?", ago=23 * HOUR)
    sync(tmp_path, meta, store)
    message_id = reply(store, maria, "Yes, pick up after 4.")
    assert sync(tmp_path, meta, store) == {}

    [sent] = meta.sent
    assert (sent["recipient"], sent["messaging_type"], sent["tag"], sent["text"]) == (
        {"id": maria["id"]}, "RESPONSE", None, "Yes, pick up after 4.")
    row = status_of(store, message_id)
    assert row["status"] == "sent" and row["external_id"] == sent["message_id"]
    sync(tmp_path, meta, store)  # the reply comes back in the conversation: not stored twice
    assert bodies(store) == ["Is the cake ready?", "Yes, pick up after 4."]


def test_after_24_hours_only_a_human_agent_reply_is_allowed_until_day_7(tmp_path, meta, store):
    kofi = meta.add_user("kofi_m", "instagram")
    asked = meta.message(kofi, "Still open on Sunday?", ago=30 * HOUR)
    sync(tmp_path, meta, store)
    plain = reply(store, kofi, "Yes!")
    tagged = reply(store, kofi, "Sorry for the wait: yes, 9 to 1.", tag="HUMAN_AGENT")
    assert sync(tmp_path, meta, store) == {}

    row = status_of(store, plain)
    until = datetime.strptime(asked["created_time"], "%Y-%m-%dT%H:%M:%S%z").timestamp() + 7 * DAY
    assert row["status"] == "failed"
    assert "outside Meta's 24-hour window; a HUMAN_AGENT reply is possible until " + \
        datetime.fromtimestamp(until, timezone.utc).strftime("%Y-%m-%d %H:%M UTC") in row["status_detail"]
    assert status_of(store, tagged)["status"] == "sent"
    [sent] = meta.sent
    assert (sent["messaging_type"], sent["tag"], sent["platform"]) == ("MESSAGE_TAG", "HUMAN_AGENT", "instagram")


def test_after_7_days_meta_does_not_allow_a_reply_and_nothing_is_sent(tmp_path, meta, store):
    ann = meta.add_user("Ann")
    meta.message(ann, "hello?", ago=8 * DAY)
    sync(tmp_path, meta, store, extra="history_days = 30\n")
    message_id = reply(store, ann, "Sorry!", tag="HUMAN_AGENT")
    sync(tmp_path, meta, store)
    row = status_of(store, message_id)
    assert row["status"] == "failed" and "more than 7 days: Meta does not allow a reply" in row["status_detail"]
    assert meta.paths("POST") == []


def test_meta_refusing_the_window_itself_fails_the_message_without_retrying(tmp_path, meta, store):
    ann = meta.add_user("Ann")
    meta.message(ann, "hi")
    sync(tmp_path, meta, store)
    message_id = reply(store, ann, "hello")
    meta.fail_next("messages", 10, "(#10) This message is sent outside of allowed window.", subcode=2018278)
    sync(tmp_path, meta, store)
    row = status_of(store, message_id)
    assert row["status"] == "failed" and "outside the allowed reply window" in row["status_detail"]
    assert store.db.query_one("SELECT state FROM outbox WHERE message_id = ?", (message_id,))["state"] == "failed"


def test_a_reply_over_2000_characters_fails_at_once_without_calling_meta(tmp_path, meta, store):
    ann = meta.add_user("Ann")
    meta.message(ann, "hi")
    sync(tmp_path, meta, store)
    too_long = reply(store, ann, "x" * 2001)
    fits = reply(store, ann, "y" * 2000)
    sync(tmp_path, meta, store)
    assert status_of(store, too_long)["status"] == "failed" and "at most 2000" in status_of(store, too_long)["status_detail"]
    assert status_of(store, fits)["status"] == "sent" and [s["text"] for s in meta.sent] == ["y" * 2000]


# ---- Instagram's 20-message cap ------------------------------------------------------------------

def test_instagram_hands_over_only_the_20_most_recent_messages_and_the_pull_says_so(tmp_path, meta, store):
    kofi = meta.add_user("kofi_m", "instagram")
    for n in range(3):
        meta.message(kofi, f"early {n}", ago=600 - n)
    sync(tmp_path, meta, store)
    for n in range(25):
        meta.message(kofi, f"burst {n:02d}", ago=100 - n)
    assert sync(tmp_path, meta, store) == {}
    stored = bodies(store)
    assert stored == [f"early {n}" for n in range(3)] + [f"burst {n:02d}" for n in range(5, 25)]
    assert "20 most recent messages" in state(store).detail and "@kofi_m" in state(store).detail


# ---- rate limits and errors ----------------------------------------------------------------------

def test_calls_stay_within_two_per_second_per_page(tmp_path, meta, store):
    meta.message(meta.add_user("Ann"), "one")
    meta.message(meta.add_user("bob_ig", "instagram"), "two")
    started = time.monotonic()
    assert sync(tmp_path, meta, store, rate=2) == {}
    assert sorted(bodies(store)) == ["one", "two"]
    assert len(meta.calls) == 5  # the Page, two listings, two conversations
    assert meta.max_calls_per_second() <= 2
    assert time.monotonic() - started >= 1.0


def test_a_rate_limit_waits_as_long_as_meta_asks(tmp_path, meta, store):
    usage = json.dumps({meta.page_id: [{"type": "pages", "call_count": 100, "total_cputime": 30, "total_time": 30,
                                        "estimated_time_to_regain_access": 3}]})
    meta.fail_next("conversations", 32, headers={"X-Business-Use-Case-Usage": usage})
    failed = sync(tmp_path, meta, store)
    assert "rate limiting" in failed["page"]
    assert state(store).state == "retrying" and "retrying in 180s" in state(store).detail

    async def pull(channel):
        meta.fail_next("conversations", 613)
        with pytest.raises(TransientError) as caught:
            await channel.pull(None)
        return caught.value

    assert with_channel(tmp_path, meta, pull).retry_after is None  # no usage header: the engine's backoff
    assert sync(tmp_path, meta, store) == {}


def test_a_revoked_token_stops_the_account_and_never_shows_the_token(tmp_path, meta, store, caplog):
    caplog.set_level(logging.DEBUG)
    old = meta.token
    meta.revoke_token()
    failed = asyncio.run(Engine(config(tmp_path, meta, token=old), store).run(once=True))
    assert "refused the Page access token" in failed["page"]
    account = state(store)
    assert account.state == "auth" and "page_access_token" in account.detail
    assert old not in account.detail and old not in caplog.text

    async def check(channel):
        with pytest.raises(AuthError) as caught:
            await channel.check()
        return str(caught.value)

    assert old not in with_channel(tmp_path, meta, check, token=old)


def test_a_missing_permission_is_an_auth_error_that_names_it(tmp_path, meta, store):
    ann = meta.add_user("Ann")
    meta.message(ann, "hi")
    sync(tmp_path, meta, store)
    message_id = reply(store, ann, "hello")
    meta.fail_next("messages", 200)
    sync(tmp_path, meta, store)
    outbox = store.db.query_one("SELECT state, last_error FROM outbox WHERE message_id = ?", (message_id,))
    assert outbox["state"] == "pending" and "lacks a permission" in outbox["last_error"]
    assert "pages_messaging" in outbox["last_error"] and meta.token not in outbox["last_error"]


def test_check_names_the_page_and_its_instagram_account(tmp_path, meta):
    assert with_channel(tmp_path, meta, lambda channel: channel.check()) == \
        "Facebook Page Acme Bakery and Instagram @acmebakery"


def test_a_missing_page_token_is_a_config_error_naming_the_key(tmp_path):
    ws = workspace_from('[[accounts]]\nkind = "meta"\nname = "page"\npage_id = "1234"\n', tmp_path)
    with pytest.raises(ConfigError, match="page_access_token"):
        open_channel(ws.accounts[0], ws)


# ---- cursor: restarts ----------------------------------------------------------------------------

def test_a_restart_resumes_from_the_cursor_losing_and_duplicating_nothing(tmp_path, meta, store):
    ann, kofi = meta.add_user("Ann"), meta.add_user("kofi_m", "instagram")
    meta.message(ann, "before", ago=5)
    sync(tmp_path, meta, store)
    meta.message(ann, "during 1", ago=3)
    meta.message(kofi, "during 2", ago=2)

    lost = with_channel(tmp_path, meta, lambda channel: channel.pull(store.cursor("page")))  # never applied
    assert sorted(m.body for m in lost.messages) == ["during 1", "during 2"]  # only what the store lacks
    meta.message(ann, "after")
    sync(tmp_path, meta, store)
    sync(tmp_path, meta, store)
    again = with_channel(tmp_path, meta, lambda channel: channel.pull(store.cursor("page")))
    assert again.messages == []
    store.apply_pull("page", lost)  # even a late, repeated apply adds nothing
    assert bodies(store) == ["before", "during 1", "during 2", "after"]
    assert re.fullmatch(r"\{.*\}", store.cursor("page"))


def test_a_message_in_the_cursors_own_second_is_not_lost(tmp_path, meta, store):
    ann = meta.add_user("Ann")
    first = meta.message(ann, "first")
    sync(tmp_path, meta, store)
    # Graph has whole seconds: a message in the same second leaves the conversation's updated_time as it was.
    meta.message(ann, "second", ago=time.time() - first["_at"])

    resumed = with_channel(tmp_path, meta, lambda channel: channel.pull(store.cursor("page")))
    assert [m.body for m in resumed.messages] == ["second"]


def test_once_the_cursors_second_is_long_past_a_quiet_pull_reads_no_conversation(tmp_path, meta, store):
    ann = meta.add_user("Ann")
    meta.message(ann, "hello", ago=300)
    sync(tmp_path, meta, store)
    calls = len(meta.paths())

    quiet = with_channel(tmp_path, meta, lambda channel: channel.pull(store.cursor("page")))
    assert (quiet.messages, quiet.cursor) == ([], None)
    conversation = meta.conversation_of(ann)["id"]
    assert not any(path.endswith(conversation) for path in meta.paths()[calls:])


def test_a_send_interrupted_by_a_crash_is_found_in_the_conversation_not_sent_twice(tmp_path, meta, store):
    ann = meta.add_user("Ann")
    meta.message(ann, "hi")
    sync(tmp_path, meta, store)
    message_id = reply(store, ann, "on its way")
    [out] = store.claim_due(["page"])
    posted = with_channel(tmp_path, meta, lambda channel: channel.send(out))  # then the process died
    assert sync(tmp_path, meta, store) == {}
    assert len(meta.sent) == 1
    row = status_of(store, message_id)
    assert (row["status"], row["external_id"]) == ("sent", posted.external_id)
    assert bodies(store) == ["hi", "on its way"]


def test_a_send_whose_answer_was_lost_is_checked_before_anything_is_sent_again(tmp_path, meta, store):
    ann = meta.add_user("Ann")
    meta.message(ann, "hi")
    sync(tmp_path, meta, store)
    message_id = reply(store, ann, "Thanks!")
    meta.drop_answer_next("messages")
    sync(tmp_path, meta, store)
    assert store.db.query_one("SELECT state FROM outbox WHERE message_id = ?", (message_id,))["state"] == "sending"
    with store.db.write() as conn:
        conn.execute("UPDATE outbox SET next_try_at = 0")  # the engine's next check is due
    assert sync(tmp_path, meta, store) == {}
    [sent] = meta.sent
    row = status_of(store, message_id)
    assert (row["status"], row["external_id"]) == ("sent", sent["message_id"])


def test_a_send_in_doubt_whose_copy_a_pull_already_stored_is_recognised_not_sent_again(tmp_path, meta, store):
    ann = meta.add_user("Ann")
    meta.message(ann, "hi", ago=10)
    sync(tmp_path, meta, store)
    message_id = reply(store, ann, "on its way")
    [out] = store.claim_due(["page"])
    posted = with_channel(tmp_path, meta, lambda channel: channel.send(out))  # then the process died
    store.apply_pull("page", with_channel(tmp_path, meta, lambda channel: channel.pull(store.cursor("page"))))

    assert sync(tmp_path, meta, store) == {}
    assert len(meta.sent) == 1
    assert status_of(store, message_id)["external_id"] == posted.external_id
    assert bodies(store) == ["hi", "on its way"]
