"""The Telegram bot account, end to end: a local Bot API (tests/fakes/telegram.py, validated against
the Bot API description) <-> the adapter <-> the sync engine <-> a real store."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from console.channels import open_channel
from console.config import ConfigError
from console.model import Address, AuthError, InboundMessage, PullResult, TransientError
from console.sync import Engine
from fakes.telegram import FakeTelegram
from workspace import sync_once, workspace_from


@pytest.fixture
def telegram():
    fake = FakeTelegram().start()
    yield fake
    fake.stop()
    assert fake.violations == [], "requests or responses outside the Bot API description"


def config(tmp_path, fake, extra: str = "", poll_timeout: int = 0):
    return workspace_from(
        '[workspace]\nname = "Acme"\n'
        '[[accounts]]\nkind = "telegram"\nname = "tg"\n'
        f'bot_token = "{fake.token}"\napi_base_url = "{fake.url}"\n'
        f"poll_timeout = {poll_timeout}\npoll_interval = 0.01\ntimeout = 5\n" + extra,
        tmp_path)


def sync(tmp_path, fake, store, **kw) -> dict[str, str]:
    return sync_once(config(tmp_path, fake, **kw), store)


def identity(store, address: str, kind: str = "telegram"):
    return store.db.query_one("SELECT * FROM identity WHERE kind = ? AND address = ?", (kind, address))


def messages(store) -> list:
    return store.db.query("SELECT * FROM message ORDER BY id")


def state(store):
    return {s.name: s for s in store.account_states()}["tg"]


# ---- inbound ------------------------------------------------------------------------------------

def test_a_customer_message_appears_under_that_telegram_user(tmp_path, telegram, store):
    maria = telegram.add_user("Maria", "Lopez", username="maria_l")
    kofi = telegram.add_user("Kofi", "Mensah")
    telegram.message(maria, "Is the cake ready?")
    telegram.message(kofi, "Price for 20 boxes?")
    assert sync(tmp_path, telegram, store) == {}

    ident = identity(store, str(maria["id"]))
    assert ident["display_name"] == "@maria_l"
    [entry] = store.timeline(ident["customer_id"])
    assert (entry.channel, entry.direction, entry.body) == ("telegram", "in", "Is the cake ready?")
    assert store.customer_name(identity(store, str(kofi["id"]))["customer_id"]) == "Kofi Mensah"
    conversation = store.db.query_one("SELECT * FROM conversation WHERE identity_id = ?", (ident["id"],))
    assert conversation["status"] == "open" and conversation["thread_key"] == str(maria["id"])
    assert state(store).state == "ok"


def test_the_cursor_is_the_next_offset_and_confirms_what_was_stored(tmp_path, telegram, store):
    user = telegram.add_user("Ann")
    telegram.message(user, "one")
    last = telegram.message(user, "two")
    sync(tmp_path, telegram, store)
    newest_update = telegram.last_update_id
    assert store.cursor("tg") == str(newest_update + 1)
    assert telegram.pending() == 2, "not confirmed until the next getUpdates carries the offset"
    sync(tmp_path, telegram, store)
    assert telegram.method_calls("getUpdates")[-1]["offset"] == newest_update + 1
    assert telegram.pending() == 0
    assert [m["external_id"] for m in messages(store)] == [f"{user['id']}:1", f"{user['id']}:{last['message_id']}"]


def test_an_edit_is_shown_as_an_edit_of_the_same_message(tmp_path, telegram, store):
    user = telegram.add_user("Ann", username="ann")
    original = telegram.message(user, "Pick up at 5")
    sync(tmp_path, telegram, store)
    telegram.edit(original, "Pick up at 6, sorry")
    sync(tmp_path, telegram, store)
    [row] = messages(store)
    assert row["external_id"] == f"{user['id']}:{original['message_id']}"
    assert (row["body"], row["edited"]) == ("Pick up at 6, sorry", 1)
    assert store.timeline(identity(store, str(user["id"]))["customer_id"])[0].edited


def test_photos_and_documents_are_attachments_that_can_be_fetched(tmp_path, telegram, store):
    user = telegram.add_user("Ann")
    photo = b"\xff\xd8\xff\xe0 a jpeg"
    pdf = b"%PDF-1.7 the order"
    telegram.message(user, caption="this one", photo=photo)
    telegram.message(user, document=("order 118.pdf", "application/pdf", pdf))
    sync(tmp_path, telegram, store)

    first, second = store.timeline(identity(store, str(user["id"]))["customer_id"])
    assert first.body == "this one"
    [pic] = first.attachments
    [doc] = second.attachments
    assert (pic["name"], pic["content_type"], pic["size"]) == ("photo.jpg", "image/jpeg", len(photo))
    assert (doc["name"], doc["content_type"], doc["size"]) == ("order 118.pdf", "application/pdf", len(pdf))

    async def fetch():
        ws = config(tmp_path, telegram)
        channel = open_channel(ws.accounts[0], ws)
        try:
            return [await channel.fetch_attachment(m["external_id"], a["ref"])
                    for m, a in ((messages(store)[0], pic), (messages(store)[1], doc))]
        finally:
            await channel.close()

    assert asyncio.run(fetch()) == [photo, pdf]


def test_a_shared_contact_links_the_telegram_user_to_their_phone_customer(tmp_path, telegram, store):
    store.apply_pull("sms", PullResult([InboundMessage("SM1", "t", "sms", "in", Address("phone", "+15550100001", "Ann"),
                                                       time.time() - 60, "hi by sms")]))
    user = telegram.add_user("Ann")
    telegram.message(user, contact={"phone_number": "+1 555 010 0001", "first_name": "Ann", "user_id": user["id"]})
    sync(tmp_path, telegram, store)
    assert identity(store, str(user["id"]))["customer_id"] == identity(store, "+15550100001", "phone")["customer_id"]


def test_hostile_names_and_bodies_are_stored_unchanged_as_data(tmp_path, telegram, store):
    name = "\x1b]0;owned\x07[bold red]Eve[/]"
    body = "\x1b[2J\x1bc[@click=app.quit]click me[/] [/urgent] \u202efdp.exe \x9b31m"
    user = telegram.add_user(name, "\x00\x07")
    telegram.message(user, body)
    assert sync(tmp_path, telegram, store) == {}
    ident = identity(store, str(user["id"]))
    assert ident["display_name"] == f"{name} \x00\x07"
    assert store.customer_name(ident["customer_id"]) == f"{name} \x00\x07"
    assert store.timeline(ident["customer_id"])[0].body == body


def test_group_chats_are_not_customer_conversations(tmp_path, telegram, store):
    user = telegram.add_user("Ann")
    with telegram._cond:
        group = {"id": -100123, "type": "supergroup", "title": "Bakery fans"}
        telegram._push({"message": {"message_id": 1, "from": user, "date": int(time.time()), "chat": group,
                                    "text": "hello all"}})
    telegram.message(user, "a private question")
    sync(tmp_path, telegram, store)
    assert [m["body"] for m in messages(store)] == ["a private question"]


# ---- replies -------------------------------------------------------------------------------------

def test_a_reply_reaches_the_customer_chat(tmp_path, telegram, store):
    user = telegram.add_user("Maria", username="maria_l")
    telegram.message(user, "Is the cake ready?")
    sync(tmp_path, telegram, store)
    ident = identity(store, str(user["id"]))
    message_id = store.enqueue_reply(ident["id"], "tg", "telegram", "Yes, pick up after 4.")
    sync(tmp_path, telegram, store)

    [sent] = telegram.sent
    assert (sent["chat_id"], sent["text"], sent["business_connection_id"]) == (user["id"], "Yes, pick up after 4.", None)
    row = store.db.query_one("SELECT * FROM message WHERE id = ?", (message_id,))
    assert row["status"] == "sent" and row["external_id"] == f"{user['id']}:{sent['message']['message_id']}"
    assert store.timeline(ident["customer_id"])[-1].direction == "out"


def test_a_business_chat_is_answered_on_behalf_of_the_business(tmp_path, telegram, store):
    connection = telegram.connect_business()
    customer = telegram.add_user("Kofi", username="kofi", started=False)
    telegram.message(customer, "Do you deliver on Sunday?", business=connection)
    telegram.message(customer, "Yes until noon", business=connection, from_owner=True)
    sync(tmp_path, telegram, store)

    ident = identity(store, str(customer["id"]))
    inbound, owner_reply = store.timeline(ident["customer_id"])
    assert (inbound.direction, owner_reply.direction) == ("in", "out")
    assert ident["display_name"] == "@kofi"
    conv = store.db.query_one("SELECT * FROM conversation WHERE identity_id = ?", (ident["id"],))
    assert conv["thread_key"] == f"{customer['id']}@{connection}" and conv["status"] == "waiting"

    telegram.message(customer, "And Saturday?", business=connection)
    sync(tmp_path, telegram, store)
    store.enqueue_reply(ident["id"], "tg", "telegram", "Saturday too.", conversation_id=conv["id"])
    sync(tmp_path, telegram, store)
    [sent] = telegram.sent
    assert (sent["chat_id"], sent["business_connection_id"], sent["text"]) == (customer["id"], connection, "Saturday too.")


def test_a_reply_over_4096_characters_fails_at_once_without_calling_telegram(tmp_path, telegram, store):
    user = telegram.add_user("Ann")
    telegram.message(user, "hi")
    sync(tmp_path, telegram, store)
    ident = identity(store, str(user["id"]))
    too_long = store.enqueue_reply(ident["id"], "tg", "telegram", "x" * 4097)
    emoji = store.enqueue_reply(ident["id"], "tg", "telegram", "\U0001F382" * 2049)  # 4098 UTF-16 units
    longest = store.enqueue_reply(ident["id"], "tg", "telegram", "y" * 4096)
    sync(tmp_path, telegram, store)
    for message_id in (too_long, emoji):
        row = store.db.query_one("SELECT status, status_detail FROM message WHERE id = ?", (message_id,))
        assert row["status"] == "failed" and "at most 4096" in row["status_detail"]
    assert [s["text"] for s in telegram.sent] == ["y" * 4096]
    assert store.db.query_one("SELECT status FROM message WHERE id = ?", (longest,))["status"] == "sent"


def test_a_send_left_in_doubt_is_not_sent_twice(tmp_path, telegram, store):
    user = telegram.add_user("Ann")
    telegram.message(user, "hi")
    sync(tmp_path, telegram, store)
    message_id = store.enqueue_reply(identity(store, str(user["id"]))["id"], "tg", "telegram", "hello")
    store.claim_due(["tg"])  # the engine claimed it, then the process died
    sync(tmp_path, telegram, store)
    assert telegram.sent == []
    assert store.db.query_one("SELECT status FROM message WHERE id = ?", (message_id,))["status"] == "unknown"


# ---- errors --------------------------------------------------------------------------------------

def test_a_rate_limit_on_getupdates_waits_as_long_as_telegram_asks(tmp_path, telegram, store):
    telegram.fail_next("getUpdates", 429, retry_after=7)
    failed = sync(tmp_path, telegram, store)
    assert "rate limiting" in failed["tg"]
    assert state(store).state == "retrying" and "retrying in 7s" in state(store).detail

    async def pull():
        ws = config(tmp_path, telegram)
        channel = open_channel(ws.accounts[0], ws)
        telegram.fail_next("getUpdates", 429, retry_after=11)
        try:
            with pytest.raises(TransientError) as caught:
                await channel.pull(None)
            return caught.value
        finally:
            await channel.close()

    assert asyncio.run(pull()).retry_after == 11


def test_a_rate_limited_reply_is_retried_after_the_wait_and_sent_once(tmp_path, telegram, store):
    user = telegram.add_user("Ann")
    telegram.message(user, "hi")
    sync(tmp_path, telegram, store)
    message_id = store.enqueue_reply(identity(store, str(user["id"]))["id"], "tg", "telegram", "hello")
    telegram.fail_next("sendMessage", 429, retry_after=30)
    sync(tmp_path, telegram, store)
    outbox = store.db.query_one("SELECT * FROM outbox WHERE message_id = ?", (message_id,))
    assert outbox["state"] == "pending" and outbox["next_try_at"] >= time.time() + 25
    with store.db.write() as conn:
        conn.execute("UPDATE outbox SET next_try_at = 0")
    sync(tmp_path, telegram, store)
    assert [s["text"] for s in telegram.sent] == ["hello"]


def test_a_revoked_token_stops_the_account_with_a_clear_state(tmp_path, telegram, store, caplog):
    caplog.set_level(logging.DEBUG)
    old_token = telegram.token
    telegram.revoke_token()
    failed = asyncio.run(Engine(workspace_from(
        '[[accounts]]\nkind = "telegram"\nname = "tg"\n'
        f'bot_token = "{old_token}"\napi_base_url = "{telegram.url}"\npoll_timeout = 0\n', tmp_path), store).run(once=True))
    assert "refused the bot token" in failed["tg"]
    account = state(store)
    assert account.state == "auth" and "bot_token" in account.detail and "BotFather" in account.detail
    assert old_token not in account.detail and old_token.split(":")[1] not in caplog.text
    assert len(telegram.method_calls("getUpdates")) == 1


def test_a_webhook_on_the_bot_is_reported_with_how_to_remove_it(tmp_path, telegram, store):
    telegram.set_webhook("https://old-server.example/hook")
    user = telegram.add_user("Ann")
    telegram.message(user, "hi")
    failed = sync(tmp_path, telegram, store)
    assert "webhook" in failed["tg"]
    account = state(store)
    assert account.state == "retrying" and "deleteWebhook" in account.detail

    async def check_then_remove():
        ws = config(tmp_path, telegram)
        channel = open_channel(ws.accounts[0], ws)
        try:
            with pytest.raises(Exception, match="deleteWebhook"):
                await channel.check()
            assert await channel.call("deleteWebhook") is True
            return await channel.check()
        finally:
            await channel.close()

    assert "@acme_bot" in asyncio.run(check_then_remove())
    assert sync(tmp_path, telegram, store) == {} and store.count_messages() == 1


def test_an_unreachable_api_is_transient_and_never_shows_the_token(tmp_path, telegram, store, caplog):
    caplog.set_level(logging.DEBUG)
    ws = config(tmp_path, telegram)
    telegram.stop()

    async def pull():
        channel = open_channel(ws.accounts[0], ws)
        try:
            with pytest.raises(TransientError) as caught:
                await channel.pull(None)
            return str(caught.value)
        finally:
            await channel.close()

    message = asyncio.run(pull())
    assert "could not be reached" in message
    secret = telegram.token.split(":")[1]
    assert secret not in message and secret not in caplog.text


def test_a_missing_bot_token_is_a_config_error_naming_the_key(tmp_path):
    ws = workspace_from('[[accounts]]\nkind = "telegram"\nname = "tg"\n', tmp_path)
    with pytest.raises(ConfigError, match="bot_token"):
        open_channel(ws.accounts[0], ws)


def test_an_invalid_token_from_the_start_is_an_auth_error(tmp_path, telegram):
    async def go():
        ws = config(tmp_path, telegram)
        ws.accounts[0].raw["bot_token"] = "999:nope"
        channel = open_channel(ws.accounts[0], ws)
        try:
            with pytest.raises(AuthError):
                await channel.check()
        finally:
            await channel.close()

    asyncio.run(go())


# ---- polling: offsets, batches, crashes, long polls ---------------------------------------------

def test_150_queued_updates_arrive_in_two_calls(tmp_path, telegram, store):
    user = telegram.add_user("Ann")
    for n in range(150):
        telegram.message(user, f"message {n}")
    assert sync(tmp_path, telegram, store) == {}
    assert store.count_messages() == 150
    calls = telegram.method_calls("getUpdates")
    assert len(calls) == 2 and all(c["limit"] == 100 for c in calls)


def test_a_crash_between_getupdates_and_the_store_loses_nothing_and_duplicates_nothing(tmp_path, telegram, store):
    user = telegram.add_user("Ann")
    for n in range(3):
        telegram.message(user, f"before {n}")
    sync(tmp_path, telegram, store)
    telegram.message(user, "during 1")
    telegram.message(user, "during 2")

    async def crash():
        ws = config(tmp_path, telegram)
        channel = open_channel(ws.accounts[0], ws)
        try:
            fetched = await channel.pull(store.cursor("tg"))  # then the process dies: never applied
            return fetched
        finally:
            await channel.close()

    lost = asyncio.run(crash())
    assert [m.body for m in lost.messages] == ["during 1", "during 2"]
    telegram.message(user, "after")
    sync(tmp_path, telegram, store)
    sync(tmp_path, telegram, store)
    store.apply_pull("tg", lost)  # even a late, repeated apply adds nothing
    assert [m["body"] for m in messages(store)] == ["before 0", "before 1", "before 2", "during 1", "during 2", "after"]
    assert telegram.pending() == 0


async def test_a_long_poll_returns_as_soon_as_a_message_arrives(tmp_path, telegram):
    ws = config(tmp_path, telegram, poll_timeout=20)
    channel = open_channel(ws.accounts[0], ws)
    user = telegram.add_user("Ann")
    try:
        started = time.monotonic()
        task = asyncio.create_task(channel.pull(None))
        await asyncio.sleep(0.3)
        assert not task.done()
        telegram.message(user, "are you there?")
        result = await asyncio.wait_for(task, timeout=5)
        assert [m.body for m in result.messages] == ["are you there?"]
        assert time.monotonic() - started < 3
        assert telegram.method_calls("getUpdates")[0]["timeout"] == 20
    finally:
        await channel.close()


def test_updates_older_than_a_day_are_gone_from_telegram(tmp_path, telegram, store):
    user = telegram.add_user("Ann")
    telegram.message(user, "old")
    telegram.advance(25 * 3600)
    telegram.message(user, "new")
    sync(tmp_path, telegram, store)
    assert [m["body"] for m in messages(store)] == ["new"]


def test_the_fake_rejects_requests_outside_the_bot_api(telegram):
    import httpx

    base = f"{telegram.url}/bot{telegram.token}"
    assert httpx.post(f"{base}/sendMessage", json={"chat_id": 1}).status_code == 400
    assert httpx.post(f"{base}/getUpdates", json={"offset": "12"}).status_code == 400
    assert httpx.post(f"{base}/sendMesage", json={}).status_code == 400
    assert len(telegram.violations) == 3
    telegram.violations.clear()
