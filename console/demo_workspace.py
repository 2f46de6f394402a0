"""What the demo workspace holds besides its messages: the triage a shop would have done.

The demo accounts bring the customers and six weeks of messages through the sync engine like any
account. A shop's workspace also holds what its people added: tags, notes, customer attributes,
snoozed and assigned conversations, a draft, and outreach (console/demo_outreach.py: consent,
segments, campaigns). `furnish()` adds them once, after the first sync, so every feature has
something to show on first start. No UI here: the CLI and the tests call it.
"""

from __future__ import annotations

import datetime as dt
import random
import time

# (phrase a customer wrote, tag): the tags follow what the conversations were about.
TAGS = (
    ("café on Station Street", "wholesale"),
    ("getting married", "wedding"),
    ("allergy", "allergy"),
    ("Coeliac", "allergy"),
    ("Same as last week", "regular"),
    ("weekend staff", "job"),
)
NOTES = {
    "wholesale": "Café on Station Street: invoices monthly, delivery before 7.",
    "allergy": "Nut allergy in the family: always say where it was baked.",
    "regular": "Picks up on Saturdays; likes the end of the loaf.",
}
OTHER_AGENT = "ben"


def furnish(store, agent: str) -> dict[str, int]:
    """Add the demo's triage data; returns how much of each was added."""
    added = {"tags": 0, "notes": 0, "snoozed": 0, "assigned": 0, "attributes": 0, "drafts": 0, "replies credited": 0,
             "ratings": 0, "rule firings": 0}
    _history(store, agent, added)
    tagged: dict[str, list[int]] = {}
    for phrase, tag in TAGS:
        for hit in store.search(f'"{phrase}"', limit=8):
            if hit.customer_id not in tagged.setdefault(tag, []):
                if tag == "wholesale":
                    _wholesale_rule_fired(store, hit)
                    added["rule firings"] += 1
                store.add_tag(hit.customer_id, tag)
                tagged[tag].append(hit.customer_id)
                added["tags"] += 1
    for tag, note in NOTES.items():
        for customer_id in tagged.get(tag, [])[:2]:
            store.add_note(customer_id, OTHER_AGENT, note)
            added["notes"] += 1
    for number, customer_id in enumerate(tagged.get("regular", [])[:3]):
        store.set_attribute(customer_id, "order_number", f"#{1180 + number}")
        store.set_attribute(customer_id, "pickup_day", ["Saturday", "Friday", "Sunday"][number])
        added["attributes"] += 2
    waiting = store.list_rows(_filter("waiting"), 0, 6)
    tomorrow = (dt.datetime.fromtimestamp(time.time()) + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    for row in waiting[:2]:
        added["snoozed"] += store.set_status("snoozed", customer_id=row.customer_id, from_statuses=("waiting",),
                                             snooze_until=tomorrow.timestamp())
    open_rows = store.list_rows(_filter("open"), 0, 12)
    for row in open_rows[3:5]:
        added["assigned"] += store.assign(row.customer_id, OTHER_AGENT)
    if len(open_rows) > 6:
        store.save_draft(open_rows[6].customer_id, agent, "Hi! Yes, we still have some — shall I put one aside")
        added["drafts"] += 1
    from console.config import demo_config
    from console.demo_outreach import furnish as furnish_outreach
    from console.outreach.settings import senders_for

    added.update(furnish_outreach(store, agent, senders_for(demo_config()), time.time()))
    return added


def _history(store, agent: str, added: dict[str, int]) -> None:
    """What six weeks of a shop's work leave for the reports: who wrote the replies (the demo
    service delivers them without an author), and the customers' ratings."""
    rng = random.Random(7)
    answered = store.answered_episodes()
    conversations = sorted({e["conversation_id"] for e in answered})
    added["replies credited"] += store.credit_replies([c for c in conversations if c % 3], agent)
    added["replies credited"] += store.credit_replies([c for c in conversations if c % 3 == 0], OTHER_AGENT)
    rated: set[int] = set()
    for episode in reversed(answered):  # each conversation's latest episode
        if episode["conversation_id"] in rated or episode["resolution"] != "done" or rng.random() > 0.6:
            continue
        rated.add(episode["conversation_id"])
        rating = rng.choices((5, 4, 3, 2, 1), weights=(55, 25, 10, 6, 4))[0]
        store.record_rating(episode["conversation_id"], rating, episode["resolved_at"] + rng.uniform(600, 7200))
        added["ratings"] += 1


def _wholesale_rule_fired(store, hit) -> None:
    """The demo's `wholesale` rule, as if it had run when the café first wrote."""
    from console.store import Plan

    store.apply_firing(Plan("wholesale", f"demo:{hit.message_id}", hit.conversation_id, hit.sent_at,
                            add_tags=("wholesale",), assign=OTHER_AGENT))


def _filter(status: str):
    from console.store import ListFilter

    return ListFilter(status)

