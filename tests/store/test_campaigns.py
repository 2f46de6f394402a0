"""Segments and campaigns in the store: who is in a segment, the dry run with every exclusion,
the launch into the outbox, restraint at the moment of sending (even for a row written by hand),
the cap across channels, quiet hours on a fake clock, stop conditions, control, measurement."""

from __future__ import annotations

from console.outreach import planner

import datetime as dt
import json
import time

import pytest

from console.model import Address, InboundMessage, PullResult, SendResult
from console.outreach.campaign import ChannelText, Step
from console.outreach.reasons import Reason
from console.outreach.settings import OutreachSettings
from console.outreach.zones import zone_named
from console.store import CampaignError, Store
from outreach_world import ANYTIME, SENDERS, address, campaign, customer, identity_id, outbox, wrote


@pytest.fixture
def store(backend):
    return backend.open("console.db", "DE", ANYTIME)


def send_all(store, accounts=("phone", "mail", "tg"), at=None, status="delivered", sent_at=None):
    """What the engine does with what it claims: the channel accepts each one."""
    sent = []
    for out in store.claim_due(list(accounts), 500, at=at):
        store.record_sent(out, SendResult(f"x-{out.idempotency_key}", status, sent_at=sent_at or at or time.time()))
        sent.append(out)
    return sent


# ---- segments ------------------------------------------------------------------------------------
def test_a_segment_selects_by_tag_channel_attribute_activity_words_and_not(store):
    a = customer(store, 1, channels=("sms",))
    b = customer(store, 2, channels=("email",), consent=("email",))
    c = customer(store, 3, channels=("sms", "email"))
    store.add_tag(a, "regular")
    store.add_tag(c, "regular")
    store.add_tag(c, "wholesale")
    store.set_attribute(a, "city", "Berlin")
    store.set_attribute(a, "orders", "5")
    store.set_attribute(c, "orders", "2")
    wrote(store, "email", 2, "do you have rye bread?", ago=86400)
    members = store.segment_members
    assert members("tag:regular") == sorted([a, c])
    assert members("tag:regular not:tag:wholesale") == [a]
    assert members("channel:email") == sorted([b, c])
    assert members("city:berlin") == [a] and members("orders>3") == [a] and members("orders<=2") == [c]
    assert members("last_inbound<3d") == [b] and members("last_inbound>5d") == sorted([a, c])
    assert members("rye") == [b] and members('not:"rye bread"') == sorted([a, c])
    assert members("tag:regular", exclude=[a]) == [c]


def test_the_segment_count_is_live(store):
    segment_id = store.save_segment("Regulars", "tag:regular")
    cid = customer(store, 4)
    assert store.count_segment(store.segment(segment_id).query) == 0
    store.add_tag(cid, "regular")
    assert store.count_segment(store.segment("regulars").query) == 1


# ---- the dry run ---------------------------------------------------------------------------------
def test_the_dry_run_names_everyone_left_out_and_why_and_writes_nothing(store):
    ok = customer(store, 1, channels=("sms",))
    customer(store, 2, channels=("sms",), consent=())  # never agreed
    customer(store, 3, channels=("sms",))
    wrote(store, "sms", 3, "STOP", ago=60)
    waiting = customer(store, 4, channels=("sms",), done=False)  # an open conversation
    excluded = customer(store, 5, channels=("sms",))
    campaign(store, query="channel:sms")
    store.set_excluded(store.segment("Spring menu people").id, excluded)
    plan = planner.preview(store, "Spring menu", SENDERS, "ana")
    assert plan.selected == 5 and [p.customer_id for p in plan.now] == [ok]
    by_reason = {r: [p.name for p in people] for r, people in plan.excluded.items()}
    assert by_reason == {Reason.NO_CONSENT: ["Person 2"], Reason.OPTED_OUT: ["Person 3"],
                         Reason.OPEN_CONVERSATION: ["Person 4"], Reason.EXCLUDED: ["Person 5"]}
    assert plan.now[0].rendered.body == "Hi Person, spring menu! Reply STOP to opt out."
    assert outbox(store) == [] and store.campaign("Spring menu").state == "draft"
    assert waiting


def test_launch_writes_one_outbox_row_per_recipient_with_a_key_made_at_launch(store):
    people = [customer(store, n, channels=("sms",)) for n in range(1, 6)]
    campaign(store, query="channel:sms")
    plan = planner.launch(store, "Spring menu", SENDERS, "ana")
    rows = outbox(store)
    assert len(plan.now) == 5 and sorted(r["customer_id"] for r in rows) == people
    assert len({r["idempotency_key"] for r in rows}) == 5
    with pytest.raises(CampaignError, match="launched already"):
        planner.launch(store, "Spring menu", SENDERS, "ana")
    # Planning the same step again (a crash between two duty turns) adds nothing.
    c = store.campaign("Spring menu")
    run_key = store.db.query_one("SELECT run_key FROM campaign WHERE id = ?", (c.id,))[0]
    with store.db.write() as conn:
        store.write_step(conn, c.id, run_key, plan, "ana")
    assert len(outbox(store)) == 5


def test_an_opted_out_identity_is_never_in_a_send_set(store):
    customer(store, 1, channels=("sms",))
    quitter = customer(store, 2, channels=("sms",))
    campaign(store, query="channel:sms")
    planner.launch(store, "Spring menu", SENDERS, "ana")
    wrote(store, "sms", 2, "STOP", ago=1)  # after the launch, before the send
    sent = send_all(store, ("phone",))
    assert [out.to.address for out in sent if out.purpose == "marketing"] == [address("sms", 1).address]
    row = next(r for r in outbox(store) if r["customer_id"] == quitter)
    assert row["state"] == "cancelled" and row["refusal"] == Reason.OPTED_OUT.value


def test_a_marketing_row_written_by_hand_is_refused_at_the_moment_of_sending(store):
    wrote(store, "sms", 1, "hi")
    ident = identity_id(store, "sms", 1)
    store.enqueue_reply(ident, "phone", "sms", "BIG SALE", purpose="marketing")
    assert store.claim_due(["phone"]) == []
    [row] = outbox(store)
    assert row["state"] == "cancelled" and row["refusal"] == "no_consent"
    assert "not sent" in store.timeline(store.db.query_one("SELECT customer_id FROM identity WHERE id = ?",
                                                           (ident,))[0])[-1].status_detail


def test_the_cap_is_never_exceeded_across_channels(store):
    both = customer(store, 1, channels=("email", "sms"), consent=("email", "sms"))
    email_only = [Step(1, 0, "order", ("email",), {"email": ChannelText("News", "Hello")})]
    sms_only = [Step(1, 0, "order", ("sms",), {"sms": ChannelText(body="Hello")})]
    campaign(store, "Email news", steps=email_only)
    campaign(store, "SMS news", steps=sms_only)
    # Both launched before either went: the plan counts the other's queued row...
    planner.launch(store, "Email news", SENDERS, "ana")
    plan = planner.preview(store, "SMS news", SENDERS, "ana")
    assert plan.excluded == {Reason.CAPPED: [plan.rows[0]]}
    # ...and a row that got past the plan anyway meets the cap at the moment of sending.
    store.outreach = OutreachSettings(quiet_start=0, quiet_end=0, cap_messages=5)
    planner.launch(store, "SMS news", SENDERS, "ana")
    store.outreach = ANYTIME
    sent = send_all(store)
    assert len([o for o in sent if o.purpose == "marketing"]) == 1
    assert store.db.query_one("SELECT COUNT(*) FROM marketing_send WHERE customer_id = ?", (both,))[0] == 1
    assert {r["refusal"] for r in outbox(store)} == {"", "capped"}


def test_quiet_hour_sends_are_held_and_released_on_a_fake_clock(backend):
    berlin = zone_named("Europe/Berlin")
    store = backend.open("q.db", "DE", OutreachSettings(quiet_start=20 * 60, quiet_end=9 * 60,
                                                             timezone="Europe/Berlin"))
    customer(store, 1, channels=("sms",))
    campaign(store, query="channel:sms")
    evening = dt.datetime.now(berlin).replace(hour=22, minute=30, second=0, microsecond=0).timestamp()
    plan = planner.launch(store, "Spring menu", SENDERS, "ana", at=evening)
    morning = (dt.datetime.fromtimestamp(evening, berlin) + dt.timedelta(days=1)).replace(hour=9, minute=0).timestamp()
    assert plan.now == [] and [p.at for p in plan.held] == [morning]
    assert store.claim_due(["phone"], at=evening + 3600) == []  # 23:30: still held
    assert store.campaign_progress("Spring menu", at=evening + 3600).held == 1
    [out] = store.claim_due(["phone"], at=morning)
    assert out.purpose == "marketing"
    store.close()


def test_a_row_held_at_launch_that_meets_quiet_hours_again_is_held_not_dropped(backend):
    berlin = zone_named("Europe/Berlin")
    store = backend.open("q2.db", "DE", ANYTIME)
    customer(store, 1, channels=("sms",))
    campaign(store, query="channel:sms")
    noon = dt.datetime.now(berlin).replace(hour=12, minute=0, second=0, microsecond=0).timestamp()
    planner.launch(store, "Spring menu", SENDERS, "ana", at=noon)
    store.outreach = OutreachSettings(quiet_start=20 * 60, quiet_end=9 * 60, timezone="Europe/Berlin")
    night = noon + 11 * 3600
    assert store.claim_due(["phone"], at=night) == []
    [row] = outbox(store)
    assert row["state"] == "pending" and row["next_try_at"] > night
    assert "held for quiet hours until" in store.timeline(row["customer_id"])[-1].status_detail
    store.close()


# ---- stop conditions and later steps -------------------------------------------------------------
TWO_STEPS = [Step(1, 0, "order", ("email",), {"email": ChannelText("Spring menu", "Hello")}),
             Step(2, 4 * 86400, "order", ("email",), {"email": ChannelText("Last days", "Only till Sunday")})]


def test_a_reply_on_sms_stops_the_email_step(store):
    quiet = customer(store, 1, channels=("email", "sms"), consent=("email",))
    talker = customer(store, 2, channels=("email", "sms"), consent=("email",))
    campaign(store, steps=TWO_STEPS)
    planner.launch(store, "Spring menu", SENDERS, "ana")
    send_all(store)
    wrote(store, "sms", 2, "Can I order the lemon tart?", ago=0)  # answers on another channel
    later = time.time() + 5 * 86400
    planner.advance(store, SENDERS, at=later)
    step2 = {r["customer_id"]: (r["state"], r["reason"]) for r in store.db.query(
        "SELECT customer_id, state, reason FROM campaign_recipient WHERE position = 2")}
    assert step2 == {quiet: ("queued", ""), talker: ("excluded", "replied")}


def test_a_later_step_waits_for_its_delay_after_the_recipients_own_previous_message(store):
    customer(store, 1, channels=("email",), consent=("email",))
    campaign(store, steps=TWO_STEPS)
    planner.launch(store, "Spring menu", SENDERS, "ana")
    sent_at = time.time()
    send_all(store, at=sent_at)
    planner.advance(store, SENDERS, at=sent_at + 3 * 86400)
    assert store.db.query_one("SELECT COUNT(*) FROM campaign_recipient WHERE position = 2")[0] == 0
    planner.advance(store, SENDERS, at=sent_at + 4 * 86400 + 1)
    assert store.db.query_one("SELECT COUNT(*) FROM campaign_recipient WHERE position = 2")[0] == 1


def test_a_customer_who_left_the_segment_gets_no_further_step(store):
    cid = customer(store, 1, channels=("email",), consent=("email",))
    store.add_tag(cid, "regular")
    campaign(store, query="tag:regular", steps=TWO_STEPS)
    planner.launch(store, "Spring menu", SENDERS, "ana")
    send_all(store)
    store.remove_tag(cid, "regular")
    planner.advance(store, SENDERS, at=time.time() + 5 * 86400)
    assert store.db.query_one("SELECT reason FROM campaign_recipient WHERE position = 2")[0] == "left_segment"


def test_pause_holds_the_rows_resume_sends_them_cancel_ends_them(store):
    for n in range(1, 4):
        customer(store, n, channels=("sms",))
    campaign(store, query="channel:sms")
    planner.launch(store, "Spring menu", SENDERS, "ana")
    store.set_campaign_state("Spring menu", "pause")
    assert store.claim_due(["phone"]) == [] and store.next_due_at(["phone"]) is None
    store.set_campaign_state("Spring menu", "resume")
    assert len(store.claim_due(["phone"], marketing=1)) == 1  # paced: one now
    store.set_campaign_state("Spring menu", "cancel")
    progress = store.campaign_progress("Spring menu")
    assert (progress.sending, progress.cancelled, progress.waiting) == (1, 2, 0)
    with pytest.raises(CampaignError, match="cannot be resumed"):
        store.set_campaign_state("Spring menu", "resume")


def test_a_reply_to_a_campaign_is_triage_and_the_timeline_says_what_it_answers(store):
    cid = customer(store, 1, channels=("sms",))
    campaign(store, query="channel:sms")
    planner.launch(store, "Spring menu", SENDERS, "ana")
    send_all(store)
    wrote(store, "sms", 1, "Yes please, two of the tarts", ago=-1)
    entries = store.timeline(cid)
    assert entries[-2].campaign == "Spring menu · step 1"
    assert entries[-1].answers == "Spring menu · step 1"
    assert store.db.query_one("SELECT status FROM conversation WHERE customer_id = ?", (cid,))[0] == "open"


def test_a_test_send_goes_only_to_the_configured_test_addresses(backend):
    settings = OutreachSettings(quiet_start=0, quiet_end=0, test_addresses=(("email", "ana@crumb.example"),))
    store = backend.open("t.db", "DE", settings)
    cid = customer(store, 1, channels=("email",), consent=("email",))
    campaign(store, steps=TWO_STEPS)
    assert planner.test_send(store, "Spring menu", 1, cid, SENDERS, "ana") == ["email to ana@crumb.example"]
    [row] = outbox(store, "test")
    assert row["address"] == "ana@crumb.example" and "Hello" in row["body"]
    assert [o.purpose for o in store.claim_due(["mail"])] == ["test"]
    store.close()


# ---- measurement ---------------------------------------------------------------------------------
def test_the_report_counts_the_funnel_per_step_and_channel_and_the_lift(store):
    people = [customer(store, n, channels=("sms",)) for n in range(1, 41)]
    campaign(store, query="channel:sms", convert_on="tag:ordered", holdout=0.25)
    plan = planner.launch(store, "Spring menu", SENDERS, "ana")
    holdout = [p.customer_id for p in plan.rows if p.reason is Reason.HOLDOUT]
    messaged = [p.customer_id for p in plan.now]
    assert holdout and len(holdout) + len(messaged) == 40
    send_all(store, ("phone",), sent_at=time.time() - 60)
    store.db.conn.execute("UPDATE message SET status = 'read' WHERE id = (SELECT message_id FROM campaign_recipient "
                          "WHERE customer_id = ?)", (messaged[0],))
    wrote(store, "sms", people.index(messaged[1]) + 1, "Lovely, see you Saturday", ago=0)
    wrote(store, "sms", people.index(messaged[2]) + 1, "stop", ago=0)
    store.add_tag(messaged[1], "ordered")
    report = store.campaign_report("Spring menu")
    sms = report.steps[1]["sms"]
    assert (sms.targeted, sms.sent, sms.delivered, sms.read) == (len(messaged), len(messaged), len(messaged), 1)
    assert (sms.replied, sms.opted_out, sms.converted) == (2, 1, 1)  # a STOP is a reply, and an opt-out
    assert report.holdout == len(holdout) and report.lift == pytest.approx(1 / len(messaged))
    assert store.segment_members("replied:spring-menu") == [] and \
        store.segment_members('replied:"Spring menu"') == sorted(messaged[1:3])


def test_a_campaign_finishes_when_nothing_is_left_to_send(store):
    customer(store, 1, channels=("sms",))
    campaign(store, query="channel:sms")
    planner.launch(store, "Spring menu", SENDERS, "ana")
    assert planner.advance(store, SENDERS) == []
    send_all(store)
    assert planner.advance(store, SENDERS) == ["Spring menu: finished"]
    assert store.campaign("Spring menu").state == "finished"
