"""The satisfaction question: reading ratings, asking once after done, never in the customer's
night, never to an opted-out identity; a bare rating keeps the conversation closed."""

from __future__ import annotations

import pytest

from console.config import parse
from console.csat import parse_reply
from console.csat_duty import CsatDuty
from console.model import Address, InboundMessage, OptOutChange, PullResult
from console.recipient_time import quiet_until, recipient_zones
from console.store import ListFilter, Store
from clock import at, install


@pytest.mark.parametrize("text, rating, bare", [
    ("5", 5, True), (" 4 ", 4, True), ("4/5", 4, True), ("3 out of 5", 3, True), ("5 stars!", 5, True),
    ("５", 5, True), ("⭐⭐⭐⭐", 4, True), ("★★★★★", 5, True), ("five", 5, True), ("2.", 2, True),
    ("2, the cake was burnt", 2, False), ("5 - lovely, thank you", 5, False),
    ("6", None, False), ("0", None, False), ("When do you open?", None, False), ("", None, False),
    ("10/10", None, False), ("I'd give it a 4", None, False),
])
def test_reading_a_reply_as_a_rating(text, rating, bare):
    answer = parse_reply(text)
    assert (answer.rating, answer.bare) == (rating, bare)


def test_a_comment_after_the_rating_is_kept():
    assert parse_reply("2, the cake was burnt").comment == "the cake was burnt"


CONFIG = """
[workspace]
name = "Crumb"
[business_hours]
timezone = "Europe/London"
monday = "09:00-17:00"
[csat]
question = "How did we do? Reply 1-5"
after_minutes = 10
quiet_hours = "21:00-08:00"
"""


class Desk:
    def __init__(self, tmp_path, monkeypatch):
        self.clock = install(monkeypatch, at("2026-12-21 10:00"))
        self.ws = parse(CONFIG)
        self.store = Store(tmp_path / "console.db")
        self.duty = CsatDuty(self.ws, self.store, now=self.clock)
        self.serial = 0

    def conversation(self, phone: str = "+447700900123", channel: str = "sms", **attributes) -> int:
        """A customer wrote, we answered, we closed it."""
        self.writes("Hello, is my order ready?", phone, channel)
        cid = self.store.db.query_one("SELECT id FROM conversation ORDER BY id DESC LIMIT 1")[0]
        conv = self.store.conversation(cid)
        for key, value in attributes.items():
            self.store.set_attribute(conv["customer_id"], key, value)
        self.clock.advance(300)
        self.store.enqueue_reply(conv["identity_id"], "shop", channel, "Yes, come by!", author="ana", conversation_id=cid)
        self.clock.advance(60)
        self.store.set_status("done", conversation_id=cid)
        return cid

    def writes(self, text: str, phone: str = "+447700900123", channel: str = "sms") -> None:
        self.serial += 1
        self.store.apply_pull("shop", PullResult(messages=[InboundMessage(
            f"m{self.serial}", f"{channel}:{phone}", channel, "in", Address("phone", phone, "Maria"), self.clock.now,
            text)]))

    def questions(self) -> list[str]:
        return [r[0] for r in self.store.db.query(
            "SELECT m.body FROM outbox o JOIN message m ON m.id = o.message_id WHERE m.author = 'auto:csat'")]


@pytest.fixture
def desk(tmp_path, monkeypatch):
    desk = Desk(tmp_path, monkeypatch)
    yield desk
    desk.store.close()


def test_asked_once_after_the_conversation_is_done(desk):
    cid = desk.conversation()
    assert desk.duty.step() == []  # not within the first ten minutes
    desk.clock.advance(11 * 60)
    assert desk.duty.step() == [(cid, "asked")]
    assert desk.questions() == ["How did we do? Reply 1-5"]
    assert desk.store.conversation(cid)["status"] == "done"  # asking does not reopen it
    desk.clock.advance(3600)
    assert desk.duty.step() == []
    assert len(desk.questions()) == 1


def test_a_conversation_reopened_before_the_question_is_not_asked(desk):
    cid = desk.conversation()
    desk.clock.advance(5 * 60)
    desk.writes("Oh, and one more thing")
    desk.clock.advance(20 * 60)
    assert desk.duty.step() == []
    assert desk.store.conversation(cid)["status"] == "open"


def test_a_bare_rating_is_recorded_and_keeps_it_closed(desk):
    cid = desk.conversation()
    desk.clock.advance(11 * 60)
    desk.duty.step()
    desk.clock.advance(600)
    desk.writes("5")
    assert desk.store.conversation(cid)["status"] == "done"
    assert desk.store.csat_of(cid)["rating"] == 5
    assert desk.store.count_rows(ListFilter("open")) == 0  # the list agrees


def test_anything_more_than_a_rating_reopens_it(desk):
    cid = desk.conversation()
    desk.clock.advance(11 * 60)
    desk.duty.step()
    desk.writes("2, the bread was stale")
    assert desk.store.conversation(cid)["status"] == "open"
    assert (desk.store.csat_of(cid)["rating"], desk.store.csat_of(cid)["comment"]) == (2, "the bread was stale")


def test_a_question_is_held_in_the_customers_night(desk):
    desk.clock.set(at("2026-12-21 20:45"))
    cid = desk.conversation()  # a UK number: done at 20:51 London
    desk.clock.set(at("2026-12-21 21:30"))
    assert desk.duty.step() == [(cid, "held")]
    desk.clock.set(at("2026-12-22 08:05"))
    assert desk.duty.step() == [(cid, "asked")]


def test_the_timezone_attribute_comes_before_the_phone_number(desk):
    desk.clock.set(at("2026-12-21 12:00"))  # noon in London, 07:00 in New York
    cid = desk.conversation(timezone="America/New_York")
    desk.clock.advance(11 * 60)
    assert desk.duty.step() == [(cid, "held")]


def test_never_to_an_opted_out_identity_nor_outside_the_window(desk):
    cid = desk.conversation()
    desk.store.apply_pull("shop", PullResult(opt_outs=[OptOutChange(Address("phone", "+447700900123"), True)]))
    whatsapp = desk.conversation("+447700900999", "whatsapp")
    desk.clock.advance(11 * 60)
    assert sorted(desk.duty.step()) == [(cid, "the customer opted out"), (whatsapp, "asked")]
    assert len(desk.questions()) == 1
    # WhatsApp: the customer's last message was 6 minutes before; a day later the window is closed.
    other = desk.conversation("+447700900777", "whatsapp")
    desk.clock.advance(25 * 3600)
    assert (other, "the WhatsApp reply window is closed") in desk.duty.step()


def test_recipient_zones_from_attribute_phone_or_workspace():
    assert [z.key for z in recipient_zones({"timezone": "Asia/Tokyo"}, "+447700900123", "UTC")] == ["Asia/Tokyo"]
    assert [z.key for z in recipient_zones({}, "+447700900123", "UTC")] == ["Europe/London"]
    assert [z.key for z in recipient_zones({}, None, "Europe/Berlin")] == ["Europe/Berlin"]
    quiet = (21 * 60, 8 * 60)
    zones = recipient_zones({}, "+12125550123", "UTC")  # New York
    assert quiet_until(at("2026-12-21 12:00", "America/New_York"), zones, quiet) is None
    assert quiet_until(at("2026-12-21 22:00", "America/New_York"), zones, quiet) == at("2026-12-22 08:00", "America/New_York")
