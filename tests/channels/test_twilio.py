"""The Twilio account (SMS, MMS, WhatsApp), end to end: a local stateful Twilio
(tests/fakes/twilio.py, every request and response checked against Twilio's OpenAPI description)
<-> the official `twilio` client inside the adapter <-> the sync engine <-> a real store."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from console.channels import open_channel
from console.config import ConfigError
from console.model import Address, AuthError, InboundMessage, PermanentError, PullResult, TransientError
from console.outreach import keywords
from console.sanitize import clean
from console.store import OptedOut
from console.sync import Engine
from fakes.twilio import FakeTwilio, load_spec
from workspace import sync_once, workspace_from

OURS = "+15550001111"
MARIA = "+15557654321"
KOFI = "+15557650002"


@pytest.fixture
def twilio():
    fake = FakeTwilio(numbers=(OURS,), spec=load_spec()).start()
    yield fake
    fake.stop()
    assert fake.violations == [], "requests or responses outside Twilio's API description"


def config(tmp_path, fake, extra: str = "", auth: str | None = None):
    auth = auth if auth is not None else f'auth_token = "{fake.auth_token}"\n'
    return workspace_from(
        '[workspace]\nname = "Acme"\n'
        '[[accounts]]\nkind = "twilio"\nname = "phone"\n'
        f'account_sid = "{fake.account_sid}"\n{auth}'
        f'numbers = ["{OURS}", "whatsapp:{OURS}"]\napi_base_url = "{fake.url}"\n'
        "poll_interval = 0.01\ntimeout = 5\n" + extra,
        tmp_path)


def sync(tmp_path, fake, store, **kw) -> dict[str, str]:
    return sync_once(config(tmp_path, fake, **kw), store)


def step(tmp_path, fake, store, what: str, **kw) -> None:
    """Only the engine's delivery ("send") or only its pull ("pull"), for an exact order of events."""
    async def go():
        engine = Engine(config(tmp_path, fake, **kw), store)
        await engine.take_leases()  # who pulls the account: this engine (on either backend)
        try:
            if what == "send":
                await engine.deliver_loop("phone", once=True)
            else:
                await engine.pull_loop("phone", once=True)
        finally:
            await engine.runs["phone"].channel.close()
            engine.leases.close()

    asyncio.run(go())


async def with_channel(tmp_path, fake, use, **kw):
    ws = config(tmp_path, fake, **kw)
    channel = open_channel(ws.accounts[0], ws)
    try:
        return await use(channel)
    finally:
        await channel.close()


def identity(store, address: str):
    return store.db.query_one("SELECT * FROM identity WHERE kind = 'phone' AND address = ?", (address,))


def sms_opted_out(store, address: str) -> int:
    """1 when the number withdrew from SMS altogether (console/store/consent.py)."""
    return int(store.consent_state(identity(store, address)["id"], "sms", "service") == "withdrawn")


def message(store, message_id: int):
    return store.db.query_one("SELECT * FROM message WHERE id = ?", (message_id,))


def messages(store) -> list:
    return store.db.query("SELECT * FROM message ORDER BY id")


def state(store):
    return {s.name: s for s in store.account_states()}["phone"]


def reply(store, address: str, body: str, channel: str = "sms", **kw) -> int:
    return store.enqueue_reply(identity(store, address)["id"], "phone", channel, body, **kw)


# ---- inbound ------------------------------------------------------------------------------------

def test_an_sms_appears_under_the_customer_in_a_thread_with_our_number(tmp_path, twilio, store):
    sid = twilio.inbound(MARIA, "Is the cake ready?")
    twilio.inbound(KOFI, "Price for 20 boxes?")
    assert sync(tmp_path, twilio, store) == {}

    ident = identity(store, MARIA)
    [entry] = store.timeline(ident["customer_id"])
    assert (entry.channel, entry.direction, entry.body) == ("sms", "in", "Is the cake ready?")
    conversation = store.db.query_one("SELECT * FROM conversation WHERE identity_id = ?", (ident["id"],))
    assert (conversation["thread_key"], conversation["status"]) == (f"sms:{OURS}:{MARIA}", "open")
    assert messages(store)[0]["external_id"] == sid
    assert identity(store, KOFI)["customer_id"] != ident["customer_id"]
    assert state(store).state == "ok"


def test_sms_and_whatsapp_from_one_phone_are_one_customer_in_two_threads(tmp_path, twilio, store):
    twilio.inbound(MARIA, "by text")
    twilio.inbound(f"whatsapp:{MARIA}", "and on WhatsApp")
    sync(tmp_path, twilio, store)

    [ident] = store.db.query("SELECT * FROM identity")
    assert (ident["kind"], ident["address"]) == ("phone", MARIA)
    timeline = store.timeline(ident["customer_id"])
    assert [(e.channel, e.body) for e in timeline] == [("sms", "by text"), ("whatsapp", "and on WhatsApp")]
    keys = {r["thread_key"] for r in store.db.query("SELECT thread_key FROM conversation")}
    assert keys == {f"sms:{OURS}:{MARIA}", f"whatsapp:{OURS}:{MARIA}"}


def test_mms_media_become_attachments_that_can_be_downloaded(tmp_path, twilio, store):
    photo, card = b"\xff\xd8\xff\xe0 a jpeg", b"BEGIN:VCARD\nEND:VCARD\n"
    twilio.inbound(MARIA, "this design please", media=[("image/jpeg", photo), ("text/vcard", card)])
    sync(tmp_path, twilio, store)

    [entry] = store.timeline(identity(store, MARIA)["customer_id"])
    assert entry.body == "this design please"
    assert [(a["name"], a["content_type"]) for a in entry.attachments] == [
        ("media-1.jpg", "image/jpeg"), ("media-2.vcf", "text/vcard")]
    external_id = messages(store)[0]["external_id"]

    async def download(channel):
        return [await channel.fetch_attachment(external_id, a["ref"]) for a in entry.attachments]

    assert asyncio.run(with_channel(tmp_path, twilio, download)) == [photo, card]

    async def elsewhere(channel):  # the credentials go to Twilio's API and nowhere else
        with pytest.raises(PermanentError, match="credentials"):
            await channel.fetch_attachment(external_id, "https://media.evil.example/2010-04-01/x")

    asyncio.run(with_channel(tmp_path, twilio, elsewhere))


def test_messages_sent_from_our_number_by_other_tools_are_shown_as_ours(tmp_path, twilio, store):
    twilio.inbound(MARIA, "Where is my order?")
    sid = twilio.sent_elsewhere(OURS, MARIA, "It shipped this morning.")
    twilio.inbound(KOFI, "not for this shop", to="+15559990000")  # another number on the account
    sync(tmp_path, twilio, store)

    inbound, ours = store.timeline(identity(store, MARIA)["customer_id"])
    assert (ours.direction, ours.body, ours.status) == ("out", "It shipped this morning.", "delivered")
    assert messages(store)[1]["external_id"] == sid
    assert identity(store, KOFI) is None
    conv = store.db.query_one("SELECT * FROM conversation WHERE thread_key = ?", (f"sms:{OURS}:{MARIA}",))
    assert conv["status"] == "waiting"


def test_only_history_days_of_history_are_read_on_the_first_sync(tmp_path, twilio, store):
    twilio.inbound(MARIA, "long ago", at=time.time() - 40 * 86400)
    twilio.inbound(MARIA, "last week", at=time.time() - 6 * 86400)
    twilio.inbound(MARIA, "today")
    sync(tmp_path, twilio, store, extra="history_days = 7\n")
    assert [m["body"] for m in messages(store)] == ["last week", "today"]


def test_control_sequences_are_stored_as_sent_and_removed_for_display(tmp_path, twilio, store):
    body = "\x1b[31mURGENT\x1b[0m \x1b]0;owned\x07call me \u202efdp.exe"
    twilio.inbound(MARIA, body)
    sync(tmp_path, twilio, store)
    [entry] = store.timeline(identity(store, MARIA)["customer_id"])
    assert entry.body == body
    assert clean(entry.body) == "URGENT call me \u27e8RLO\u27e9fdp.exe"


# ---- replies -------------------------------------------------------------------------------------

def test_a_reply_leaves_from_the_number_written_to_and_is_followed_to_delivered(tmp_path, twilio, store):
    twilio.inbound(MARIA, "Is the cake ready?")
    sync(tmp_path, twilio, store)
    message_id = reply(store, MARIA, "Yes, pick up after 4.")

    step(tmp_path, twilio, store, "send")
    [sent] = twilio.outbound()
    assert (sent.from_, sent.to, sent.body) == (OURS, MARIA, "Yes, pick up after 4.")
    row = message(store, message_id)
    assert (row["external_id"], row["status"]) == (sent.sid, "queued")
    seen = []
    for _ in range(2):
        step(tmp_path, twilio, store, "pull")
        seen.append(message(store, message_id)["status"])
    assert seen == ["sent", "delivered"]
    assert len(twilio.outbound()) == 1 and len(messages(store)) == 2

    before = len(twilio.requests)
    step(tmp_path, twilio, store, "pull")  # nothing new, nothing left to follow
    [poll] = twilio.requests[before:]
    assert poll.method == "GET" and poll.path.endswith("/Messages.json") and poll.params["PageSize"] == "20"


def test_a_reply_that_cannot_be_delivered_says_why(tmp_path, twilio, store):
    twilio.inbound(MARIA, "hi")
    sync(tmp_path, twilio, store)
    twilio.undeliverable.add(MARIA)
    message_id = reply(store, MARIA, "Your order is ready")
    for _ in range(3):
        sync(tmp_path, twilio, store)
    row = message(store, message_id)
    assert row["status"] == "undelivered"
    assert "could not be reached" in row["status_detail"] and "30003" in row["status_detail"]


def test_stop_opts_the_customer_out_and_start_back_in(tmp_path, twilio, store):
    twilio.inbound(MARIA, "hi")
    sync(tmp_path, twilio, store)
    twilio.inbound(MARIA, "Stop ")
    sync(tmp_path, twilio, store)
    assert sms_opted_out(store, MARIA) == 1
    with pytest.raises(OptedOut):
        reply(store, MARIA, "are you sure?")

    twilio.inbound(MARIA, "START")
    sync(tmp_path, twilio, store)
    assert sms_opted_out(store, MARIA) == 0
    message_id = reply(store, MARIA, "Welcome back!")
    sync(tmp_path, twilio, store)
    assert [m.body for m in twilio.outbound()] == ["Welcome back!"]
    assert message(store, message_id)["status"] in ("queued", "sent")
    assert [m["body"] for m in messages(store)][:3] == ["hi", "Stop ", "START"]


def test_stop_and_start_in_one_pull_leave_the_newest_choice(tmp_path, twilio, store):
    twilio.inbound(MARIA, "STOP", at=time.time() - 60)
    twilio.inbound(MARIA, "unstop", at=time.time() - 30)
    twilio.inbound(KOFI, "START", at=time.time() - 60)
    twilio.inbound(KOFI, "quit", at=time.time() - 30)
    sync(tmp_path, twilio, store)
    assert (sms_opted_out(store, MARIA), sms_opted_out(store, KOFI)) == (0, 1)


def test_a_send_refused_for_stop_fails_and_marks_the_customer_opted_out(tmp_path, twilio, store):
    twilio.inbound(MARIA, "hi")
    sync(tmp_path, twilio, store)
    twilio.inbound(MARIA, "STOP")  # not pulled yet: console still thinks we may write
    message_id = reply(store, MARIA, "Thanks for your order")
    step(tmp_path, twilio, store, "send")

    row = message(store, message_id)
    assert row["status"] == "failed" and "replied STOP" in row["status_detail"]
    assert sms_opted_out(store, MARIA) == 1
    assert twilio.outbound() == [] and len(twilio.posts) == 1


def test_invalid_numbers_fail_with_a_sentence_and_are_not_retried(tmp_path, twilio, store):
    store.apply_pull("phone", PullResult([
        InboundMessage("SMlocal1", f"sms:{OURS}:12345", "sms", "in", Address("phone", "12345"), time.time(), "hi"),
        InboundMessage("SMlocal2", f"sms:{OURS}:+15005550001", "sms", "in", Address("phone", "+15005550001"),
                       time.time(), "hi")]))
    twilio.invalid.add("+15005550001")
    local = reply(store, "12345", "hello")
    remote = reply(store, "+15005550001", "hello")
    sync(tmp_path, twilio, store)
    assert "not a phone number in international format" in message(store, local)["status_detail"]
    assert "not a valid phone number" in message(store, remote)["status_detail"]
    assert {message(store, local)["status"], message(store, remote)["status"]} == {"failed"}
    assert [p["To"] for p in twilio.posts] == ["+15005550001"]


# ---- WhatsApp ------------------------------------------------------------------------------------

def test_whatsapp_free_text_after_24_hours_fails_and_a_template_goes_through(tmp_path, twilio, store):
    content_sid = twilio.add_content("Hi {{1}}, your order {{2}} is ready for pick-up.")
    extra = f'[accounts.templates]\norder_ready = "{content_sid}"\n'
    twilio.inbound(f"whatsapp:{MARIA}", "Can I order a cake?", at=time.time() - 2 * 86400)
    twilio.inbound(f"whatsapp:{KOFI}", "Open on Sunday?", at=time.time() - 3600)
    sync(tmp_path, twilio, store, extra=extra)

    free = reply(store, MARIA, "Your cake is ready", channel="whatsapp")
    in_window = reply(store, KOFI, "Yes, 8 to 12", channel="whatsapp")
    sync(tmp_path, twilio, store, extra=extra)
    row = message(store, free)
    assert row["status"] == "failed"
    assert "24 hours" in row["status_detail"] and "template" in row["status_detail"]
    assert [p["To"] for p in twilio.posts] == [f"whatsapp:{KOFI}"], "refused before reaching WhatsApp"
    assert message(store, in_window)["status"] in ("queued", "sent")

    templated = reply(store, MARIA, "(template order_ready)", channel="whatsapp",
                      options={"template": "order_ready", "variables": json.dumps({"1": "Maria", "2": "#118"})})
    for _ in range(3):
        sync(tmp_path, twilio, store, extra=extra)
    post = twilio.posts[-1]
    assert (post["From"], post["To"], post["ContentSid"]) == (f"whatsapp:{OURS}", f"whatsapp:{MARIA}", content_sid)
    assert "Body" not in post and len(twilio.posts) == 2
    assert twilio.outbound()[-1].body == "Hi Maria, your order #118 is ready for pick-up."
    assert message(store, templated)["status"] == "delivered"


def test_a_final_status_pulled_before_the_send_was_recorded_is_not_lost(tmp_path, twilio, store):
    twilio.inbound(MARIA, "hello")
    sync(tmp_path, twilio, store)
    twilio.filtered.add(MARIA)
    message_id = reply(store, MARIA, "WIN A PRIZE")
    [out] = store.claim_due(["phone"])

    async def send(channel):
        return await channel.send(out)

    result = asyncio.run(with_channel(tmp_path, twilio, send))
    assert result.status == "queued"
    step(tmp_path, twilio, store, "pull")  # the pull finds the message failed before the send is recorded
    store.record_sent(out, result)  # Twilio's first answer, "queued", must not overwrite it
    row = message(store, message_id)
    assert row["status"] == "failed" and "30007" in row["status_detail"]
    step(tmp_path, twilio, store, "pull")
    row = message(store, message_id)
    assert row["status"] == "failed" and "filtered" in row["status_detail"] and "30007" in row["status_detail"]
    assert len(messages(store)) == 2


def test_an_unknown_template_name_fails_without_calling_twilio(tmp_path, twilio, store):
    twilio.inbound(f"whatsapp:{MARIA}", "hello")
    sync(tmp_path, twilio, store)
    message_id = reply(store, MARIA, "x", channel="whatsapp", options={"template": "nope"})
    sync(tmp_path, twilio, store)
    row = message(store, message_id)
    assert row["status"] == "failed" and "No WhatsApp template named 'nope'" in row["status_detail"]
    assert twilio.posts == []


# ---- failures, crashes, restarts -----------------------------------------------------------------

def test_a_429_storm_is_waited_out_and_nothing_is_lost_or_doubled(tmp_path, twilio, store):
    twilio.inbound(MARIA, "hi")
    sync(tmp_path, twilio, store)
    twilio.inbound(MARIA, "are you open today?")
    twilio.inbound(KOFI, "and tomorrow?")
    message_id = reply(store, MARIA, "Until 6.")
    twilio.fail_next(count=5, retry_after="3")

    failed = sync(tmp_path, twilio, store)
    assert "rate limiting" in failed["phone"] and "wait 3s" in failed["phone"]
    assert state(store).state == "retrying"
    outbox = store.db.query_one("SELECT * FROM outbox WHERE message_id = ?", (message_id,))
    assert outbox["state"] == "pending" and outbox["next_try_at"] >= time.time() + 2
    for _ in range(8):  # the engine's next tries, without waiting for them
        with store.db.write() as conn:
            conn.execute("UPDATE outbox SET next_try_at = 0 WHERE state = 'pending'")
        if sync(tmp_path, twilio, store) == {} and twilio.outbound():
            break
    assert not any(f.count for f in twilio.faults)
    assert state(store).state == "ok"
    assert sorted(m["body"] for m in messages(store)) == sorted(["hi", "are you open today?", "and tomorrow?",
                                                                  "Until 6."])
    assert [m.body for m in twilio.outbound()] == ["Until 6."]

    async def pull(channel):
        twilio.fail_next(retry_after="11", methods=("GET",))
        with pytest.raises(TransientError) as caught:
            await channel.pull(store.cursor("phone"))
        return caught.value.retry_after

    assert asyncio.run(with_channel(tmp_path, twilio, pull)) == 11


def test_a_send_whose_answer_was_lost_is_found_and_not_sent_again(tmp_path, twilio, store):
    twilio.inbound(MARIA, "hi")
    sync(tmp_path, twilio, store)
    message_id = reply(store, MARIA, "On my way")
    twilio.drop_next_post()
    step(tmp_path, twilio, store, "send")
    step(tmp_path, twilio, store, "send")

    [sent] = twilio.outbound()
    assert len(twilio.posts) == 1
    row = message(store, message_id)
    assert row["external_id"] == sent.sid and row["status"] in ("queued", "sent")
    assert store.db.query_one("SELECT state FROM outbox WHERE message_id = ?", (message_id,))["state"] == "sent"


def test_a_crash_after_twilio_accepted_a_send_is_reconciled_not_resent(tmp_path, twilio, store):
    twilio.inbound(MARIA, "hi")
    sync(tmp_path, twilio, store)
    message_id = reply(store, MARIA, "See you at 4")
    other = reply(store, MARIA, "Bring the receipt")
    store.claim_due(["phone"])  # the engine claimed both, posted the first, then the process died
    with twilio.lock:
        twilio.create_message({"To": MARIA, "From": OURS, "Body": "See you at 4"})
    sync(tmp_path, twilio, store)
    sync(tmp_path, twilio, store)

    assert [m.body for m in twilio.outbound()] == ["See you at 4", "Bring the receipt"]
    first, second = twilio.outbound()
    assert message(store, message_id)["external_id"] == first.sid
    assert message(store, other)["external_id"] == second.sid
    assert len(store.timeline(identity(store, MARIA)["customer_id"])) == 3


def test_a_lost_answer_is_matched_to_its_own_message_not_to_an_identical_earlier_reply(tmp_path, twilio, store):
    # Issue 15: "Thanks!" sent, then "Thanks!" again two seconds later with the answer lost.
    twilio.inbound(MARIA, "Got it, thank you")
    sync(tmp_path, twilio, store)
    first = reply(store, MARIA, "Thanks!")
    sync(tmp_path, twilio, store)
    [earlier] = twilio.outbound()
    with twilio.lock:
        earlier.created -= 2  # sent two seconds before the second one
    second = reply(store, MARIA, "Thanks!")
    twilio.drop_next_post()

    assert sync(tmp_path, twilio, store) == {}
    assert sync(tmp_path, twilio, store) == {}  # and every later run

    assert [m.body for m in twilio.outbound()] == ["Thanks!", "Thanks!"]
    _, later = twilio.outbound()
    assert message(store, first)["external_id"] == earlier.sid
    assert message(store, second)["external_id"] == later.sid
    assert [r["state"] for r in store.db.query("SELECT state FROM outbox ORDER BY id")] == ["sent", "sent"]


def test_a_fetched_message_that_names_another_sid_is_not_taken_for_the_watched_one(tmp_path, twilio, store):
    twilio.inbound(MARIA, "hi")
    sync(tmp_path, twilio, store)
    message_id = reply(store, MARIA, "See you at 4")
    step(tmp_path, twilio, store, "send")
    [sent] = twilio.outbound()
    with twilio.lock:
        sent.script = ["sent"] * 4 + ["delivered"]  # the carrier takes its time
    step(tmp_path, twilio, store, "pull")  # our reply is watched until it is delivered
    later = time.time()
    for n in range(20):  # a page of newer messages: the next pulls no longer reach our reply's page
        twilio.inbound(KOFI, f"question {n}", at=later + 1)
    twilio.inbound(KOFI, "one more", at=later + 2)
    step(tmp_path, twilio, store, "pull")
    twilio.misanswer_next_fetch()  # the peer answers the fetch of our reply with another message

    step(tmp_path, twilio, store, "pull")
    assert state(store).state == "ok"
    assert message(store, message_id)["status"] == "sent"  # nothing taken from the other message
    for _ in range(3):
        step(tmp_path, twilio, store, "pull")
    assert message(store, message_id)["status"] == "delivered"


def test_a_restart_resumes_from_the_cursor_without_duplicates(tmp_path, twilio, store):
    t0 = int(time.time()) - 5
    for n in range(60):
        twilio.inbound(KOFI, f"old {n}", at=t0 - 3600 + n)
    for n in range(30):  # thirty in one second: the high-water mark is that second and their SIDs
        twilio.inbound(MARIA, f"before {n}", at=t0)
    sync(tmp_path, twilio, store)
    cursor = json.loads(store.cursor("phone"))
    assert cursor["hw"] == t0 and len(cursor["seen"]) == 30 and cursor["sweep"] is None
    for n in range(24):
        twilio.inbound(MARIA, f"during {n}")
    twilio.inbound(MARIA, "late, in the high-water second", at=t0)

    async def crash(channel):  # pulled, then the process died before the store applied it
        return await channel.pull(store.cursor("phone"))

    lost = asyncio.run(with_channel(tmp_path, twilio, crash))
    assert len(lost.messages) == 25
    before = len(twilio.requests)
    sync(tmp_path, twilio, store)
    assert len(twilio.requests) - before == 3, "pages of 20 read back to the mark, not the whole history"
    sync(tmp_path, twilio, store)
    store.apply_pull("phone", lost)  # even a late, repeated apply adds nothing
    bodies = [m["body"] for m in messages(store)]
    assert len(bodies) == 115 and len(set(bodies)) == 115
    assert "late, in the high-water second" in bodies


def test_a_long_first_sync_arrives_in_batches_that_resume_after_a_crash(tmp_path, twilio, store):
    base = time.time() - 3600
    twilio.inbound(MARIA, "STOP", at=base - 1)  # in the last batch read...
    for n in range(620):
        twilio.inbound(f"+1555700{n:04d}", f"message {n}", at=base + n)
    twilio.inbound(MARIA, "START", at=base + 700)  # ...but older than this, in the first

    async def first_batch(channel):
        return await channel.pull(None)

    batch = asyncio.run(with_channel(tmp_path, twilio, first_batch))
    assert batch.more and len(batch.messages) == 500
    # The engine applies it with the opt-outs its customers wrote; then the process stopped.
    batch.opt_outs.extend(keywords.read(batch, "twilio", store.outreach, time.time()))
    store.apply_pull("phone", batch)
    assert json.loads(store.cursor("phone"))["sweep"]["next"]
    assert sync(tmp_path, twilio, store) == {}
    assert store.count_messages() == 622
    assert json.loads(store.cursor("phone"))["sweep"] is None
    assert sms_opted_out(store, MARIA) == 0, "the newest choice wins across batches"
    twilio.inbound(MARIA, "new")
    sync(tmp_path, twilio, store)
    assert store.count_messages() == 623


# ---- credentials and configuration ---------------------------------------------------------------

def test_a_wrong_auth_token_stops_the_account_and_never_shows_the_token(tmp_path, twilio, store, caplog,
                                                                        monkeypatch):
    caplog.set_level(logging.DEBUG)
    old = twilio.auth_token
    monkeypatch.setenv("ACME_TWILIO_TOKEN", old)
    twilio.rotate_auth_token()
    failed = sync(tmp_path, twilio, store, auth='auth_token_env = "ACME_TWILIO_TOKEN"\n')
    assert "refused the credentials" in failed["phone"]
    account = state(store)
    assert account.state == "auth" and "auth_token" in account.detail
    assert old not in account.detail and old not in caplog.text and twilio.auth_token not in caplog.text

    async def check(channel):
        with pytest.raises(AuthError) as caught:
            await channel.check()
        return str(caught.value)

    assert old not in asyncio.run(with_channel(tmp_path, twilio, check, auth='auth_token_env = "ACME_TWILIO_TOKEN"\n'))


def test_an_api_key_works_and_check_describes_the_account(tmp_path, twilio, store, monkeypatch):
    key, secret = twilio.add_api_key()
    monkeypatch.setenv("ACME_TWILIO_SECRET", secret)
    auth = f'api_key = "{key}"\napi_secret_env = "ACME_TWILIO_SECRET"\n'

    async def check(channel):
        return await channel.check()

    description = asyncio.run(with_channel(tmp_path, twilio, check, auth=auth))
    assert "Acme Bakery" in description and OURS in description
    assert secret not in description and twilio.auth_token not in description
    twilio.inbound(MARIA, "hi")
    assert sync(tmp_path, twilio, store, auth=auth) == {}
    assert store.count_messages() == 1


@pytest.mark.parametrize("settings, key, words", [
    ('account_sid = "AC123"\nauth_token = "x"\nnumbers = ["+15550001111"]\n', "account_sid", "32 hex"),
    (f'account_sid = "AC{"0" * 32}"\nnumbers = ["+15550001111"]\n', "auth_token", "auth_token_env"),
    (f'account_sid = "AC{"0" * 32}"\nauth_token = "x"\nnumbers = ["555-1234"]\n', "numbers", "E.164"),
    (f'account_sid = "AC{"0" * 32}"\nauth_token = "x"\n', "numbers", "messaging_service_sid"),
    (f'account_sid = "AC{"0" * 32}"\nauth_token = "x"\napi_key = "SK{"1" * 32}"\napi_secret = "y"\n'
     'numbers = ["+15550001111"]\n', "api_key", "not both"),
    (f'account_sid = "AC{"0" * 32}"\nauth_token = "x"\nnumbers = ["+15550001111"]\n'
     '[accounts.templates]\nhello = "hello there"\n', "templates", "Content SID"),
])
def test_bad_settings_are_config_errors_naming_the_key(tmp_path, settings, key, words):
    ws = workspace_from('[[accounts]]\nkind = "twilio"\nname = "phone"\n' + settings, tmp_path)
    with pytest.raises(ConfigError, match=words) as caught:
        open_channel(ws.accounts[0], ws)
    assert caught.value.key.endswith(key)


def test_the_fake_refuses_requests_outside_the_api_description(twilio):
    import requests

    url = f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    answer = requests.post(url, data={"From": OURS}, auth=(twilio.account_sid, twilio.auth_token), timeout=5)
    assert answer.status_code == 400 and answer.json()["code"] == 21604
    assert len(twilio.violations) == 1 and "To" in twilio.violations[0]
    twilio.violations.clear()
