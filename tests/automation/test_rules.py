"""Automation rules in the engine with a fake clock: each event, the conditions, the actions,
the loop guard and the once-per-24-hours reply."""

from __future__ import annotations

import pytest

from console.config import parse
from console.model import Address, InboundMessage, OptOutChange, PullResult
from console.rules.duty import RulesDuty
from console.sla_duty import SlaDuty
from console.store import Store
from clock import at, install
from week_of_work import BUSINESS_HOURS

HOURS = BUSINESS_HOURS + """
[templates]
closed = "Thanks {first_name}! We are closed now and answer from 9 tomorrow. {business}"
"""
MONDAY = at("2026-12-21 10:00")


class Shop:
    """A store, a clock and a rules duty; customers write with `writes`."""

    def __init__(self, tmp_path, monkeypatch, rules: str, workspace: str = ""):
        self.clock = install(monkeypatch, MONDAY)
        self.ws = parse(f'[workspace]\nname = "Crumb"\n{workspace}\n{HOURS}\n{rules}')
        self.store = Store(tmp_path / "console.db")
        self.duty = RulesDuty(self.ws, self.store, now=self.clock)
        self.serial = 0

    def writes(self, who: str = "maria", text: str = "Hello", channel: str = "sms", store: Store | None = None,
               sent_at: float | None = None) -> int:
        self.serial += 1
        kind, address = ("email", f"{who}@example.com") if channel == "email" else ("phone", f"+1555{sum(map(ord, who)) * 7 % 10000:04d}{len(who):03d}")
        (store or self.store).apply_pull("shop", PullResult(messages=[InboundMessage(
            f"m{self.serial}", f"{channel}:{who}", channel, "in", Address(kind, address, who.title() + " Lopez"),
            self.clock.now if sent_at is None else sent_at, text)]))
        return self.conversation(who)

    def conversation(self, who: str) -> int:
        return self.store.db.query_one(
            "SELECT c.id FROM conversation c JOIN customer cu ON cu.id = c.customer_id WHERE cu.name = ?",
            (who.title() + " Lopez",))[0]

    def step(self) -> list:
        return self.duty.step()

    def activity(self, conversation_id: int) -> list[str]:
        conv = self.store.conversation(conversation_id)
        return [f"{a.actor} {a.text}" for a in self.store.activities(conv["customer_id"])]

    def refused(self, conversation_id: int, why: str) -> None:
        """Nothing was sent, and the timeline says why."""
        assert self.outbox() == []
        assert self.activity(conversation_id) == [why]

    def outbox(self) -> list:
        return self.store.db.query("SELECT m.body, m.author, m.conversation_id FROM outbox o "
                                   "JOIN message m ON m.id = o.message_id ORDER BY o.id")

    def close(self):
        self.store.close()


@pytest.fixture
def shop_for(tmp_path, monkeypatch):
    shops = []

    def make(rules: str, workspace: str = "") -> Shop:
        shop = Shop(tmp_path, monkeypatch, rules, workspace)
        shops.append(shop)
        return shop

    yield make
    for shop in shops:
        shop.close()


WHOLESALE = """
[[rules]]
name = "wholesale"
on = "message_received"
text_contains = ["wholesale", "invoice"]
add_tag = ["wholesale"]
assign = "ana"
"""


def test_a_message_event_tags_and_assigns_and_says_so_in_the_timeline(shop_for):
    shop = shop_for(WHOLESALE)
    other = shop.writes("ben", "Is the sourdough ready?")
    conv = shop.writes("maria", "Could you send the wholesale price list?")
    fired = shop.step()
    assert [(rule, cid) for rule, cid, _ in fired] == [("wholesale", conv)]
    card = shop.store.card(shop.store.conversation(conv)["customer_id"])
    assert card.tags == ["wholesale"]
    assert shop.store.conversation(conv)["assignee"] == "ana"
    assert shop.activity(conv) == ["rule 'wholesale' tagged #wholesale", "rule 'wholesale' assigned ana"]
    assert shop.activity(other) == []
    assert shop.step() == []  # at most once per event


def test_conversation_opened_and_reopened(shop_for):
    shop = shop_for("""
[[rules]]
name = "welcome"
on = "conversation_opened"
add_tag = ["new"]
[[rules]]
name = "again"
on = "conversation_reopened"
add_note = "Came back after we closed it."
""")
    conv = shop.writes("maria", "Hi")
    shop.writes("maria", "Still there?")
    assert [rule for rule, *_ in shop.step()] == ["welcome"]  # once for the conversation, not per message
    shop.store.set_status("done", conversation_id=conv)
    shop.clock.advance(3600)
    shop.writes("maria", "One more question")
    assert [rule for rule, *_ in shop.step()] == ["again"]
    assert shop.store.notes(shop.store.conversation(conv)["customer_id"])[0].author == "rule 'again'"


def test_no_reply_after_fires_once_when_the_wait_is_long_enough(shop_for):
    shop = shop_for("""
[[rules]]
name = "nudge"
on = "no_reply"
after_minutes = 30
notify = "{name} has waited 30 minutes on {channel}"
""")
    conv = shop.writes("maria")
    shop.clock.advance(29 * 60)
    assert shop.step() == []
    shop.clock.advance(2 * 60)
    assert [rule for rule, *_ in shop.step()] == ["nudge"]
    assert shop.store.notices_after(0, "ana")[0]["text"] == "Maria Lopez has waited 30 minutes on SMS"
    shop.clock.advance(3600)
    assert shop.step() == []  # the same wait never fires twice
    # A person answers; the customer writes again: a new wait, a new event.
    conv_row = shop.store.conversation(conv)
    shop.store.enqueue_reply(conv_row["identity_id"], "shop", "sms", "On it!", author="ana", conversation_id=conv)
    shop.clock.advance(60)
    shop.writes("maria", "Thanks, and another thing")
    shop.clock.advance(31 * 60)
    assert [rule for rule, *_ in shop.step()] == ["nudge"]


def test_unassigned_after_assigns_in_turn(shop_for):
    shop = shop_for("""
[[rules]]
name = "share"
on = "unassigned"
after_minutes = 10
assign = ["ana", "ben"]
""")
    first = shop.writes("maria")
    second = shop.writes("kofi")
    taken = shop.writes("olga")
    shop.store.assign(shop.store.conversation(taken)["customer_id"], "zoe")
    shop.clock.advance(11 * 60)
    fired = shop.step()
    assert sorted(cid for _, cid, _ in fired) == sorted([first, second])
    assert {shop.store.conversation(c)["assignee"] for c in (first, second)} == {"ana", "ben"}
    assert shop.store.conversation(taken)["assignee"] == "zoe"


def test_sla_about_to_breach(shop_for):
    shop = shop_for("""
[[rules]]
name = "hurry"
on = "sla_breaching"
after_minutes = 15
add_tag = ["late"]
""", workspace="response_target_minutes = 60")
    conv = shop.writes("maria")  # Monday 10:00: the first response is due at 11:00
    sla = SlaDuty(shop.ws, shop.store, now=shop.clock)
    sla.step()
    shop.clock.set(at("2026-12-21 10:40"))
    assert shop.step() == []
    shop.clock.set(at("2026-12-21 10:46"))
    assert [(rule, cid) for rule, cid, _ in shop.step()] == [("hurry", conv)]
    sla.step()
    assert shop.step() == []


OUT_OF_HOURS = """
[[rules]]
name = "after-hours"
on = "message_received"
hours = "outside"
reply_template = { sms = "closed", email = "closed" }
"""


def test_out_of_hours_reply_once_per_customer_per_day_through_the_outbox(shop_for):
    shop = shop_for(OUT_OF_HOURS)
    shop.clock.set(at("2026-12-21 14:00"))
    shop.writes("maria", "Open now?")
    assert shop.step() == []  # inside business hours
    shop.clock.set(at("2026-12-21 20:00"))
    conv = shop.writes("maria", "Are you open tomorrow?")
    waiting_since = shop.store.conversation(conv)["waiting_since"]
    shop.step()
    [reply] = shop.outbox()
    assert reply["body"] == "Thanks Maria! We are closed now and answer from 9 tomorrow. Crumb"
    assert reply["author"] == "auto:rule after-hours"
    # The automatic answer is not an agent's: the customer still waits, from the same moment.
    conv_row = shop.store.conversation(conv)
    assert (conv_row["status"], conv_row["waiting_since"]) == ("open", waiting_since)
    shop.clock.set(at("2026-12-21 20:30"))
    shop.writes("maria", "Hello?")
    shop.step()
    assert len(shop.outbox()) == 1
    assert "rule 'after-hours' did not reply with 'closed': it answered this customer less than 24 h ago" \
        in shop.activity(conv)
    shop.clock.set(at("2026-12-22 21:00"))
    shop.writes("maria", "Tomorrow then?")
    shop.step()
    assert len(shop.outbox()) == 2


def test_out_of_hours_reply_never_goes_to_an_opted_out_identity(shop_for):
    shop = shop_for(OUT_OF_HOURS)
    shop.clock.set(at("2026-12-21 20:00"))
    conv = shop.writes("maria", "STOP")
    [identity] = shop.store.identities(shop.store.conversation(conv)["customer_id"])
    shop.store.apply_pull("shop", PullResult(opt_outs=[OptOutChange(Address("phone", identity.address), True)]))
    shop.step()
    shop.refused(conv, "rule 'after-hours' did not reply with 'closed': the customer opted out")


def test_a_reply_outside_the_channels_window_is_not_sent(shop_for):
    shop = shop_for("""
[[rules]]
name = "chase"
on = "no_reply"
after_minutes = 1500
reply_template = "closed"
""")
    conv = shop.writes("maria", "Hello on WhatsApp", channel="whatsapp")
    shop.clock.advance(1501 * 60)  # more than 24 hours: WhatsApp takes no free text now
    shop.step()
    shop.refused(conv, "rule 'chase' did not reply with 'closed': the WhatsApp reply window is closed")


def test_the_loop_guard_actions_never_trigger_time_rules_and_each_event_fires_once(shop_for):
    shop = shop_for("""
[[rules]]
name = "auto"
on = "message_received"
reply_template = "closed"
[[rules]]
name = "park"
on = "no_reply"
after_minutes = 10
snooze_minutes = 5
""")
    conv = shop.writes("maria")
    events = shop.store.last_event_seq()
    assert [rule for rule, *_ in shop.step()] == ["auto"]
    assert shop.store.last_event_seq() == events  # the rule's reply is no event
    shop.clock.advance(11 * 60)
    assert [rule for rule, *_ in shop.step()] == ["park"]  # the automatic reply did not end the wait
    assert shop.store.conversation(conv)["status"] == "snoozed"
    shop.clock.advance(6 * 60)
    assert shop.store.wake_snoozed() == 1
    for _ in range(3):
        shop.clock.advance(11 * 60)
        assert shop.step() == []  # woken, still the same wait: never again


def test_a_rule_cannot_reopen():
    with pytest.raises(Exception, match="never reopens"):
        parse('[[rules]]\nname = "x"\non = "message_received"\nset_status = "open"\n')


def test_history_and_stale_events_fire_nothing(shop_for):
    shop = shop_for(WHOLESALE)
    shop.writes("maria", "wholesale order from last month", sent_at=MONDAY - 30 * 86400)
    assert shop.step() == []
    shop.writes("kofi", "wholesale please")
    shop.clock.advance(7 * 3600)  # the engine was down all afternoon
    assert shop.step() == []


def test_rules_fire_for_messages_another_process_stored(shop_for, tmp_path):
    shop = shop_for(WHOLESALE)
    other = Store(tmp_path / "console.db")  # another engine, another connection
    conv = shop.writes("maria", "Invoice for the café please", store=other)
    other.close()
    assert [(rule, cid) for rule, cid, _ in shop.step()] == [("wholesale", conv)]


def test_conditions_channel_attribute_regex_and_tags(shop_for):
    shop = shop_for("""
[[rules]]
name = "berlin-orders"
on = "message_received"
channel = ["email"]
text_matches = "order\\\\s*#?\\\\d+"
attribute = { city = "Berlin" }
not_tag = ["blocked"]
add_tag = ["order"]
""")
    shop.writes("kofi", "order #12", channel="email")  # not from Berlin
    berlin = shop.writes("maria", "Hello", channel="email")
    texter = shop.writes("olga", "Hello")
    for conv in (berlin, texter):
        shop.store.set_attribute(shop.store.conversation(conv)["customer_id"], "city", "berlin")
    assert shop.step() == []  # no order in the text
    shop.writes("olga", "order 17")  # SMS
    shop.writes("maria", "About order 18", channel="email")
    assert [cid for _, cid, _ in shop.step()] == [berlin]
    shop.store.add_tag(shop.store.conversation(berlin)["customer_id"], "blocked")
    shop.writes("maria", "And order 19", channel="email")
    assert shop.step() == []
