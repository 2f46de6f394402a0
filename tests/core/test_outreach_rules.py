"""The outreach decisions as plain functions: quiet hours in the recipient's time, the restraint
verdict, the segment grammar, the exact text a recipient gets, the [outreach] settings."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from console.config import ConfigError, parse
from console.outreach import zones
from console.outreach.campaign import ChannelText, Step, parse_delay
from console.outreach.messages import render
from console.outreach.reasons import Reason
from console.outreach.restraint import Identity, Recipient, Route, Send, choose, judge
from console.outreach.segments import SegmentSyntaxError, attribute_holds, parse_segment
from console.outreach.settings import OutreachSettings

NEW_YORK = zones.zone_named("America/New_York")
BERLIN = zones.zone_named("Europe/Berlin")
NY_NUMBER = "+12125550100"


def at(zone, *parts) -> float:
    return dt.datetime(*parts, tzinfo=zone).timestamp()


def person(**kw) -> Recipient:
    base = dict(customer_id=1, name="Maria Lopez", identities=[Identity(10, "phone", NY_NUMBER),
                                                               Identity(11, "email", "maria@example.com")],
                routes=[Route("sms", "phone", 10, 5, 0.0), Route("whatsapp", "phone", 10, 6, 0.0),
                        Route("email", "mail", 11, 7, 0.0)])
    base.update(kw)
    return Recipient(**base)


def consenting(**kw) -> Recipient:
    return person(consent={(10, "sms", "marketing"): "granted", (10, "whatsapp", "marketing"): "granted",
                           (11, "email", "marketing"): "granted"}, **kw)


QUIET = OutreachSettings(quiet_start=20 * 60, quiet_end=9 * 60, timezone="Europe/Berlin")
NOON_NY = at(NEW_YORK, 2026, 12, 2, 12, 0)


# ---- quiet hours in the recipient's time ---------------------------------------------------------
def test_a_message_in_quiet_hours_is_held_until_the_window_opens_in_the_recipients_zone():
    night = at(NEW_YORK, 2026, 12, 2, 23, 30)
    assert zones.next_open(night, [NEW_YORK], 20 * 60, 9 * 60) == at(NEW_YORK, 2026, 12, 3, 9, 0)
    assert zones.next_open(NOON_NY, [NEW_YORK], 20 * 60, 9 * 60) == NOON_NY


def test_us_numbers_never_get_marketing_outside_8_to_21_whatever_is_configured():
    late = at(NEW_YORK, 2026, 12, 2, 21, 30)
    assert zones.next_open(late, [NEW_YORK], 0, 0, us=True) == at(NEW_YORK, 2026, 12, 3, 8, 0)
    early = at(NEW_YORK, 2026, 12, 2, 7, 0)
    assert zones.next_open(early, [NEW_YORK], 23 * 60, 6 * 60, us=True) == at(NEW_YORK, 2026, 12, 2, 8, 0)
    assert zones.is_us(NY_NUMBER) and not zones.is_us("+4930123456")


def test_the_zone_is_the_timezone_attribute_else_the_phone_region_else_the_workspace():
    assert zones.recipient_zones({"timezone": "Europe/Berlin"}, [NY_NUMBER], NEW_YORK) == [BERLIN]
    assert zones.recipient_zones({"timezone": "Mars/Olympus"}, [NY_NUMBER], BERLIN) == [NEW_YORK]
    assert zones.recipient_zones({}, ["+4930123456"], NEW_YORK) == [BERLIN]
    # A number whose prefix names no zone (the +1 555 numbers of fiction): the workspace's zone.
    assert zones.recipient_zones({}, ["+15550100123"], BERLIN) == [BERLIN]


def test_a_number_spanning_zones_waits_until_every_zone_allows_it():
    tokyo, honolulu = zones.zone_named("Asia/Tokyo"), zones.zone_named("Pacific/Honolulu")
    start = at(tokyo, 2026, 12, 2, 21, 0)
    found = zones.next_open(start, [tokyo, honolulu], 20 * 60, 9 * 60)
    for zone in (tokyo, honolulu):
        assert zones.allowed_at(found, zone, 20 * 60, 9 * 60)


def test_quiet_hours_follow_daylight_saving_time():
    # The night the clocks go back in Berlin: 09:00 local is still 09:00 local.
    night = at(BERLIN, 2026, 10, 24, 23, 0)
    opened = zones.next_open(night, [BERLIN], 20 * 60, 9 * 60)
    assert dt.datetime.fromtimestamp(opened, BERLIN).strftime("%d %H:%M") == "25 09:00"


# ---- the restraint verdict ---------------------------------------------------------------------
def test_marketing_needs_marketing_consent_on_that_very_channel():
    no = judge(person(), Send("marketing", "sms", 10), NOON_NY, QUIET)
    assert no.reason is Reason.NO_CONSENT
    yes = judge(consenting(), Send("marketing", "sms", 10), NOON_NY, QUIET)
    assert yes.ok


def test_an_sms_stop_ends_sms_only_whatsapp_stays_open():
    stopped = consenting()
    stopped.consent[(10, "sms", "service")] = "withdrawn"
    stopped.consent[(10, "sms", "marketing")] = "withdrawn"
    stopped.last_inbound["whatsapp"] = NOON_NY - 3600
    assert judge(stopped, Send("marketing", "sms", 10), NOON_NY, QUIET).reason is Reason.OPTED_OUT
    assert judge(stopped, Send("service", "sms", 10), NOON_NY, QUIET).reason is Reason.OPTED_OUT
    assert judge(stopped, Send("marketing", "whatsapp", 10), NOON_NY, QUIET).ok


def test_whatsapp_after_24_hours_only_with_an_approved_template():
    p = consenting(last_inbound={"whatsapp": NOON_NY - 30 * 3600})
    assert judge(p, Send("marketing", "whatsapp", 10), NOON_NY, QUIET).reason is Reason.WINDOW_CLOSED
    assert judge(p, Send("marketing", "whatsapp", 10, template=True), NOON_NY, QUIET).ok


def test_messenger_never_outside_the_window_and_never_with_human_agent():
    p = person(identities=[Identity(12, "messenger", "2400")], routes=[Route("messenger", "fb", 12, 1, 0.0)],
               consent={(12, "messenger", "marketing"): "granted"}, last_inbound={"messenger": NOON_NY - 30 * 3600})
    assert judge(p, Send("marketing", "messenger", 12), NOON_NY, QUIET).reason is Reason.WINDOW_CLOSED
    p.last_inbound["messenger"] = NOON_NY - 3600
    assert judge(p, Send("marketing", "messenger", 12), NOON_NY, QUIET).ok
    assert judge(p, Send("marketing", "messenger", 12, tag="HUMAN_AGENT"), NOON_NY, QUIET).reason \
        is Reason.WINDOW_CLOSED


def test_the_frequency_cap_counts_every_channel():
    p = consenting(marketing_times=[NOON_NY - 2 * 86400])  # an email two days ago
    assert judge(p, Send("marketing", "sms", 10), NOON_NY, QUIET).reason is Reason.CAPPED
    p.marketing_times = [NOON_NY - 3 * 86400 - 60]
    assert judge(p, Send("marketing", "sms", 10), NOON_NY, QUIET).ok
    loose = OutreachSettings(quiet_start=0, quiet_end=0, cap_messages=2, cap_days=3)
    p.marketing_times = [NOON_NY - 86400]
    assert judge(p, Send("marketing", "sms", 10), NOON_NY, loose).ok


def test_held_not_skipped_and_the_release_is_in_the_recipients_time():
    night = at(NEW_YORK, 2026, 12, 2, 22, 0)
    verdict = judge(consenting(), Send("marketing", "sms", 10), night, QUIET)
    assert verdict.held and verdict.at == at(NEW_YORK, 2026, 12, 3, 9, 0)


def test_the_campaigns_stop_conditions():
    started = NOON_NY - 86400
    wrote = consenting(last_inbound={"email": started + 60})
    assert judge(wrote, Send("marketing", "sms", 10, campaign_started=started), NOON_NY, QUIET).reason \
        is Reason.REPLIED
    answered = consenting(last_service_reply_at=started + 60)
    assert judge(answered, Send("marketing", "sms", 10, campaign_started=started), NOON_NY, QUIET).reason \
        is Reason.AGENT_REPLIED
    waiting = consenting(open_conversation=True)
    assert judge(waiting, Send("marketing", "sms", 10, campaign_started=started), NOON_NY, QUIET).reason \
        is Reason.OPEN_CONVERSATION


def test_a_test_send_goes_to_a_configured_test_address_only():
    settings = OutreachSettings(test_addresses=(("email", "ana@crumb.example"),))
    ours = person(identities=[Identity(20, "email", "ana@crumb.example")])
    assert judge(ours, Send("test", "email", 20), NOON_NY, settings).ok
    assert judge(person(), Send("test", "email", 11), NOON_NY, settings).reason is Reason.NOT_A_TEST_ADDRESS


def test_the_channel_rule_falls_back_to_the_next_channel_with_consent():
    p = person(consent={(11, "email", "marketing"): "granted"})
    route, verdict = choose(p, ["sms", "email"], NOON_NY, QUIET)
    assert route.channel == "email" and verdict.ok
    route, verdict = choose(person(), ["sms", "email"], NOON_NY, QUIET)
    assert route is None and verdict.reason is Reason.NO_CONSENT


def test_last_used_puts_the_customers_own_channel_first():
    step = Step(texts={"email": ChannelText("Hi", "Body"), "sms": ChannelText(body="Hi")}, order=("email", "sms"))
    assert step.candidates("sms") == ["sms", "email"]
    assert Step(rule="order", texts=step.texts, order=("email", "sms")).candidates("sms") == ["email", "sms"]
    assert parse_delay("3d") == 3 * 86400 and parse_delay("12h") == 43200 and parse_delay("soon") is None


# ---- the segment grammar -----------------------------------------------------------------------
def test_the_segment_grammar_reads_customer_filters_and_message_search():
    now = 1_800_000_000.0
    q = parse_segment('cake tag:wedding,regular channel:sms city:"New York" orders>3 last_inbound<30d '
                      'replied:spring not:tag:wholesale from:maria', now)
    kinds = [(t.kind, t.negate) for t in q.terms]
    assert kinds[0] == ("search", False) and q.terms[0].key == 'cake from:"maria"'
    assert ("tag", True) in kinds and ("replied", False) in kinds and ("last_inbound", False) in kinds
    city = next(t for t in q.terms if t.key == "city")
    assert attribute_holds(city, {"City": "new york"}) and not attribute_holds(city, {"city": "Berlin"})
    orders = next(t for t in q.terms if t.key == "orders")
    assert attribute_holds(orders, {"orders": "4"}) and not attribute_holds(orders, {"orders": "3"})
    assert not attribute_holds(orders, {"orders": "many"})
    recent = next(t for t in q.terms if t.kind == "last_inbound")
    assert recent.number == now - 30 * 86400


@pytest.mark.parametrize("text, says", [
    ("channel:fax", "channel: expects one of"),
    ("last_inbound:30d", "last_inbound is compared"),
    ("last_inbound<soon", "expects a time like 30d"),
    ("orders>many", "compares numbers"),
    ("tag>3", "tag: is written tag:value"),
    ("city:", "needs a value"),
])
def test_a_segment_filter_that_cannot_be_read_says_why(text, says):
    with pytest.raises(SegmentSyntaxError, match=says):
        parse_segment(text, 0.0)


# ---- the exact text ------------------------------------------------------------------------------
def test_placeholders_fall_back_for_customers_without_a_name():
    text = ChannelText(body="Hi {first_name|there}, the new menu is out!")
    assert render(text, "telegram", "Maria Lopez", {}, "ana", QUIET).body == "Hi Maria, the new menu is out!"
    assert render(text, "telegram", "+15550100", {}, "ana", QUIET).body == "Hi there, the new menu is out!"
    missing = render(ChannelText(body="Your order {order_number}"), "telegram", "Maria", {}, "ana", QUIET)
    assert "{order_number}" in missing.problem


def test_an_email_carries_list_unsubscribe_and_a_plain_line():
    settings = OutreachSettings(business="Crumb & Co.", unsubscribe_url="https://crumb.example/u")
    mail = render(ChannelText("News for {first_name}", "Fresh bread."), "email", "Maria Lopez", {}, "ana", settings,
                  token="11-abc", mailto="unsubscribe@crumb.example")
    assert mail.subject == "News for Maria"
    assert mail.options["list_unsubscribe"] == ("<https://crumb.example/u/11-abc>, "
                                                "<mailto:unsubscribe@crumb.example?subject=unsubscribe%2011-abc>")
    assert mail.options["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    assert "To stop:" in mail.body and "unsubscribe@crumb.example" in mail.body
    plain = render(ChannelText("News", "Bread."), "email", "Maria", {}, "ana", OutreachSettings(), token="1-x",
                   mailto="shop@crumb.example")
    assert "list_unsubscribe_post" not in plain.options and plain.options["list_unsubscribe"].startswith("<mailto:")


def test_an_sms_says_how_to_stop_and_counts_segments_and_cost():
    sms = render(ChannelText(body="Hi {first_name}, 20% off croissants today"), "sms", "Maria", {}, "ana", QUIET)
    assert sms.body.endswith("Reply STOP to opt out.") and sms.segments == 1 and sms.cost == QUIET.sms_segment_price
    # The line counts: 300 characters fit two segments (306), with the line they need three.
    assert render(ChannelText(body="x" * 280), "sms", "Maria", {}, "ana", QUIET).segments == 2
    assert render(ChannelText(body="x" * 300), "sms", "Maria", {}, "ana", QUIET).segments == 3


def test_a_whatsapp_template_is_sent_with_its_variables():
    wa = render(ChannelText(template="follow_up", variables=("{first_name}", "Saturday")), "whatsapp", "Maria",
                {}, "ana", QUIET)
    assert wa.options["template"] == "follow_up"
    assert json.loads(wa.options["variables"]) == {"1": "Maria", "2": "Saturday"}


# ---- the [outreach] settings -------------------------------------------------------------------
def test_outreach_settings_are_read_with_errors_naming_file_line_and_key(tmp_path):
    ws = parse('[workspace]\nname = "Crumb"\n[outreach]\nquiet_hours = "21:00-08:00"\ncap_days = 5\n'
               'opt_out_words = { de = ["Stopp", "Abmelden"], es = ["baja"] }\n'
               'test_addresses = ["email:Ana@Crumb.example"]\n[outreach.pacing]\nphone = "10/s"\n')
    o = ws.outreach
    assert (o.quiet_start, o.quiet_end, o.cap_days, o.business) == (21 * 60, 8 * 60, 5.0, "Crumb")
    assert o.opt_out_words == {"STOPP", "ABMELDEN", "BAJA"} and o.test_addresses == (("email", "ana@crumb.example"),)
    assert o.pace("phone", "twilio").per_second == 10 and o.pace("other", "email").per_second == 0.5
    path = tmp_path / "c.toml"
    for text, where in (('[outreach]\nquiet_hours = "evening"\n', "line 2, key 'outreach.quiet_hours'"),
                        ('[outreach]\ntimezone = "Mars/Base"\n', "line 2, key 'outreach.timezone'"),
                        ('[outreach]\nunsubscribe_url = "http://x"\n', "key 'outreach.unsubscribe_url'"),
                        ('[outreach]\n\n[outreach.pacing]\nphone = "fast"\n', "line 4, key 'outreach.pacing.phone'"),
                        ('[outreach]\nbogus = 1\n', "key 'outreach.bogus'")):
        with pytest.raises(ConfigError) as caught:
            parse(text, path)
        assert where in str(caught.value) and str(path) in str(caught.value)
