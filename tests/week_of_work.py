"""A fixed week of a shop's work, for the metrics' hand-computed answers.

Calendar: Europe/London (UTC in December), Monday to Friday 09:00-17:00, Christmas Day (Friday
25 December 2026) a holiday, weekends closed. The store is written through the production paths
(pulls, replies through the outbox, statuses) at the moments given, with a fake clock.

    A  sms    Mon 21 10:00 in; ana replies 10:30; done 11:00 (resolved at the reply);
              asked for a rating, answers "5" at 12:00 (recorded, stays done)
    B  email  Thu 24 16:00 in (customer tagged wholesale); ben replies Mon 28 10:00
    C  sms    Sat 26 12:00 in; ana replies 13:00; the customer writes again Sun 27 14:00 (a new
              need after a quiet day: the first episode is resolved at 13:00); ana Mon 28 09:30
    D  email  Tue 22 09:00 in; never answered
    E  sms    Mon 21 16:30 in; ana replies Tue 22 09:15; done Tue 22 10:00

The report runs at Mon 28 12:00.
"""

from __future__ import annotations

from console.config import parse
from console.model import Address, InboundMessage, PullResult
from console.store import ListFilter, Store
from clock import at, install

# A London shop open on weekdays, 09:00-17:00 (also the rules tests' shop).
BUSINESS_HOURS = """
[business_hours]
timezone = "Europe/London"
monday = "09:00-17:00"
tuesday = "09:00-17:00"
wednesday = "09:00-17:00"
thursday = "09:00-17:00"
friday = "09:00-17:00"
"""
CONFIG = f"""
[workspace]
name = "Week"
response_target_minutes = 60
{BUSINESS_HOURS}
holidays = ["2026-12-25"]

[[sla]]
name = "wholesale"
first_response_minutes = 120
tags = ["wholesale"]
"""

NOW = at("2026-12-28 12:00")
PEOPLE = {"A": ("sms", "phone", "+15550000001"), "B": ("email", "email", "b@example.com"),
          "C": ("sms", "phone", "+15550000003"), "D": ("email", "email", "d@example.com"),
          "E": ("sms", "phone", "+15550000005")}


def workspace():
    return parse(CONFIG)


class Week:
    def __init__(self, store: Store, monkeypatch):
        self.store = store
        self.clock = install(monkeypatch, at("2026-12-21 09:00"))
        self.serial = 0

    def customer(self, who: str) -> int:
        channel, kind, address = PEOPLE[who]
        return self.store.db.query_one("SELECT customer_id FROM identity WHERE address = ?", (address,))[0]

    def conversation(self, who: str) -> int:
        return self.store.db.query_one("SELECT id FROM conversation WHERE customer_id = ?", (self.customer(who),))[0]

    def writes(self, who: str, when: str, body: str = "Hello, a question") -> None:
        moment = at(when)
        self.clock.set(moment)
        channel, kind, address = PEOPLE[who]
        self.serial += 1
        self.store.apply_pull("shop", PullResult(messages=[InboundMessage(
            f"m{self.serial}", f"thread-{who}", channel, "in", Address(kind, address, f"Customer {who}"), moment,
            body, subject="Question" if channel == "email" else "")]))

    def replies(self, who: str, agent: str, when: str, body: str = "Here is the answer") -> None:
        self.clock.set(at(when))
        conv = self.store.conversation(self.conversation(who))
        self.store.enqueue_reply(conv["identity_id"], "shop", conv["channel"], body, author=agent,
                                 conversation_id=conv["id"])

    def done(self, who: str, when: str) -> None:
        self.clock.set(at(when))
        self.store.set_status("done", conversation_id=self.conversation(who))


def build(store: Store, monkeypatch) -> Week:
    week = Week(store, monkeypatch)
    week.writes("A", "2026-12-21 10:00")
    week.replies("A", "ana", "2026-12-21 10:30")
    week.done("A", "2026-12-21 11:00")
    week.clock.set(at("2026-12-21 11:30"))
    store.ask_csat(week.conversation("A"), _latest_episode(store, week.conversation("A")), "How did we do? Reply 1-5")
    week.writes("A", "2026-12-21 12:00", "5")
    week.writes("E", "2026-12-21 16:30")
    week.writes("D", "2026-12-22 09:00")
    week.replies("E", "ana", "2026-12-22 09:15")
    week.done("E", "2026-12-22 10:00")
    week.writes("B", "2026-12-24 16:00")
    store.add_tag(week.customer("B"), "wholesale")
    week.writes("C", "2026-12-26 12:00")
    week.replies("C", "ana", "2026-12-26 13:00")
    week.writes("C", "2026-12-27 14:00", "And one more thing")
    week.replies("C", "ana", "2026-12-28 09:30")
    week.replies("B", "ben", "2026-12-28 10:00")
    week.clock.set(NOW)
    return week


def _latest_episode(store: Store, conversation_id: int) -> int:
    return store.db.query_one("SELECT MAX(id) FROM episode WHERE conversation_id = ?", (conversation_id,))[0]


def open_customers(store: Store) -> int:
    return store.count_rows(ListFilter("open"))
