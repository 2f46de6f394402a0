"""The search query corpus: one fixed dataset and what each query must find, for every backend.

`load(store)` writes the dataset through the store's public interface only (`apply_pull`,
`add_tag`, `set_status`), so a store on another database (PostgreSQL) loads it the same way;
then every query of QUERIES must give exactly its hits, in order, and every query of ERRORS
must raise SearchSyntaxError. Hits are named by the messages' external ids.

The rules the corpus pins down (console/store/search.py has the grammar):
- words match whole words, case- and accent-insensitively; the last word is a prefix;
  `"two words"` is a phrase; every word must be in the subject or the body;
- only the first 8,000 characters of a body are searched;
- hits are newest first, one per conversation (its newest matching message), at most `limit`;
- `from:` is a substring of the customer's name, one of their addresses or display names;
  `channel:`, `tag:`, `status:` are exact (case-insensitive); `before:`/`after:` take a day in
  local time (the dataset keeps every message at noon UTC, days apart, so the time zone never
  matters);
- FTS syntax in user text (OR, NEAR, *, quotes, parentheses) is only text.
"""

from __future__ import annotations

from datetime import datetime, timezone

from console.model import Address, InboundMessage, PullResult


def day(month: int, dom: int) -> float:
    """Noon UTC of a day in 2026."""
    return datetime(2026, month, dom, 12, tzinfo=timezone.utc).timestamp()


MARIA_SMS = Address("phone", "+15550100001", "Maria Lopez")
MARIA_MAIL = Address("email", "maria.lopez@example.com", "Maria Lopez")
TOM = Address("email", "tom@bakers.example", "Tom Baker")
ANA = Address("telegram", "ana_k", "Ana Kowalska")
KOFI = Address("phone", "whatsapp:+233201234567", "Kofi Mensah")
LONG_TAIL = "filler " * 1200  # 8,400 characters: what follows is not searched

# (external id, thread, peer, channel, direction, when, subject, body)
MESSAGES = [
    ("m1", "sms-maria", MARIA_SMS, "sms", "in", day(3, 1), "", "Is the sourdough ready for pickup?"),
    ("m2", "sms-maria", MARIA_SMS, "sms", "out", day(3, 3), "", "Yes, the sourdough is ready"),
    ("m3", "sms-maria", MARIA_SMS, "sms", "in", day(3, 5), "", "Great, also a birthday cake please"),
    ("m4", "<order-1@example.com>", MARIA_MAIL, "email", "in", day(3, 8), "Order for Saturday",
     "Hello,\nI would like to order a Crème brûlée tart.\n--\nMaria Lopez"),
    ("m5", "<order-1@example.com>", MARIA_MAIL, "email", "out", day(3, 10), "Re: Order for Saturday",
     "Of course, the creme brulee tart is on its way."),
    ("m6", "<gf@bakers.example>", TOM, "email", "in", day(3, 12), "Gluten free bread?",
     "Do you bake gluten free bread? My daughter has an allergy."),
    ("m7", "<gf@bakers.example>", TOM, "email", "out", day(3, 14), "Re: Gluten free bread?",
     "We bake gluten-free loaves on Fridays."),
    ("m8", "<cake@bakers.example>", TOM, "email", "in", day(3, 18), "Wedding cake",
     "A three layer wedding cake for 80 guests, OR two smaller cakes? (NEAR the church) *urgent*"),
    ("m9", "tg-ana", ANA, "telegram", "in", day(3, 20), "", "Do you deliver croissants on Sunday?"),
    ("m10", "tg-ana", ANA, "telegram", "in", day(3, 22), "", "croissant order: 12 please"),
    ("m11", "wa-kofi", KOFI, "whatsapp", "in", day(3, 24), "", "Price for 20 boxes of croissants?"),
    ("m12", "wa-kofi", KOFI, "whatsapp", "out", day(3, 26), "", "20 boxes: 60 EUR, delivery included"),
    ("m13", "<long@bakers.example>", TOM, "email", "in", day(3, 28), "Catering menu",
     "Our office catering menu:\n" + LONG_TAIL + "zanzibar"),
]
TAGS = [("tom@bakers.example", "wholesale"), ("ana_k", "vip"), ("maria.lopez@example.com", "vip")]
DONE = ["ana_k"]  # customers marked done after loading (the others keep the status their messages gave)

# (query, external ids of the hits in order, limit)
QUERIES: list[tuple[str, list[str], int]] = [
    ("sourdough", ["m2"], 50),  # one hit per conversation: its newest matching message
    ("SOURDOUGH", ["m2"], 50),
    ("sourd", ["m2"], 50),  # the last word is a prefix
    ("sourd ready", [], 50),  # ...but not the others: "sourd" is not a word of m2
    ("sourdough ready", ["m2"], 50),
    ("croissant", ["m11", "m10"], 50),  # prefix: croissants too; newest first across conversations
    ("croissants", ["m11", "m9"], 50),
    ("croissant", ["m11"], 1),
    ("creme brulee", ["m5"], 50),  # accents do not matter, either way
    ("crème", ["m5"], 50),
    ("gluten free", ["m7"], 50),  # gluten-free is two words
    ('"sourdough ready"', ["m1"], 50),  # a phrase: m2 has both words, not side by side
    ("saturday", ["m5"], 50),  # the subject counts
    ("zanzibar", [], 50),  # past the first 8,000 characters of its body
    ("catering", ["m13"], 50),
    ("OR two", ["m8"], 50),  # FTS syntax is text
    ("NEAR church", ["m8"], 50),
    ("*urgent*", ["m8"], 50),
    ('cake"', ["m8", "m3"], 50),
    ("(NEAR", ["m8"], 50),
    ("from:maria", ["m5", "m3"], 50),  # her name, on both of her identities
    ("from:@lopez", [], 50),
    ("from:maria.lopez@", ["m5"], 50),  # an address
    ("from:KOWAL", ["m10"], 50),  # a display name, any case
    ("from:ko", ["m12", "m10"], 50),  # two characters: Kofi Mensah, Ana Kowalska
    ("from:nobody", [], 50),
    ("cake from:tom", ["m8"], 50),
    ("channel:email", ["m13", "m8", "m7", "m5"], 50),
    ("channel:EMAIL", ["m13", "m8", "m7", "m5"], 50),
    ("cake channel:sms", ["m3"], 50),
    ("channel:fax", [], 50),
    ("tag:vip", ["m10", "m5"], 50),  # Maria's email customer only: her SMS is another customer
    ("tag:#vip croissant", ["m10"], 50),
    ("tag:wholesale", ["m13", "m8", "m7"], 50),
    ("status:done", ["m10"], 50),
    ("status:open cake", ["m8", "m3"], 50),
    ("status:waiting", ["m12", "m7", "m5"], 50),
    ("after:2026-03-23", ["m13", "m12"], 50),  # sent after that day ended
    ("before:2026-03-07", ["m3"], 50),  # sent before that day began
    ("after:2026-03-09 before:2026-03-16", ["m7", "m5"], 50),
    ("croissant after:2026-03-21", ["m11", "m10"], 50),
    ("croissant before:2026-03-21", ["m9"], 50),
    ("delivery from:kofi channel:whatsapp status:waiting before:2026-03-30", ["m12"], 50),
    ("please tag:vip status:done", ["m10"], 50),
    ("", [], 50),
    ("   ", [], 50),
]
ERRORS = ["status:urgent", "before:yesterday", "after:2026-13-01", "cake status:later"]


# (query, the line each hit shows): the first line holding a word, else the first line
LINES = [("sourdough", ["Yes, the sourdough is ready"]), ("creme", ["Of course, the creme brulee tart is on its way."]),
         ("maria", ["Maria Lopez"]), ("channel:sms", ["Great, also a birthday cake please"])]


def load(store) -> None:
    """Write the dataset into an empty store, through the store's public interface."""
    messages = [InboundMessage(external_id=ext, thread_key=thread, channel=channel, direction=direction, peer=peer,
                               sent_at=when, subject=subject, body=body,
                               status="sent" if direction == "out" else None)
                for ext, thread, peer, channel, direction, when, subject, body in MESSAGES]
    store.apply_pull("shop", PullResult(messages=messages))
    for address, tag in TAGS:
        store.add_tag(customer(store, address), tag)
    for address in DONE:
        store.set_status("done", customer_id=customer(store, address))


def customer(store, address: str) -> int:
    [(customer_id, _, _)] = store.find_customers(address)
    return customer_id


def external_ids(store, hits) -> list[str]:
    """The external ids of search hits, in order (found through the hits' customers' timelines)."""
    by_body = {body: ext for ext, *_, body in MESSAGES}
    found = []
    for hit in hits:
        [entry] = [e for e in store.timeline(hit.customer_id) if e.id == hit.message_id]
        found.append(by_body[entry.body])
    return found
