"""Triage data in the store: tags, notes, drafts, templates, assignment, presence, search, merge/split."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from console.model import Address, InboundMessage, PullResult
from console.store import ListFilter, SearchSyntaxError, Store
from console.templates import fill, unfilled, values_for


def msg(n: int, peer: Address, body: str, channel: str = "sms", direction: str = "in", at: float | None = None,
        thread: str | None = None) -> InboundMessage:
    return InboundMessage(external_id=f"m{n}", thread_key=thread or f"{channel}:{peer.address}", channel=channel,
                          direction=direction, peer=peer, sent_at=at or time.time() - 3600 + n, body=body)


MARIA_SMS = Address("phone", "+15550100001", "Maria Lopez")
MARIA_MAIL = Address("email", "maria@example.com", "Maria Lopez")
TOM = Address("email", "tom@example.com", "Tom Baker")


@pytest.fixture
def shop(store: Store) -> Store:
    store.apply_pull("acct", PullResult(messages=[
        msg(1, MARIA_SMS, "Is the sourdough ready?"),
        msg(2, MARIA_MAIL, "Order for Saturday\n--\nMaria Lopez\n+1 555 010 0001", channel="email"),
        msg(3, TOM, "Do you have gluten free bread?", channel="email"),
        msg(4, TOM, "Also a birthday cake please", channel="email", at=time.time() - 60),
    ]))
    return store


def customer_of(store: Store, address: str) -> int:
    return store.db.query_one("SELECT customer_id FROM identity WHERE address = ?", (address,))[0]


def test_tags_are_normalised_listed_and_removed(shop):
    tom = customer_of(shop, "tom@example.com")
    assert shop.add_tag(tom, " #Wholesale ") == "wholesale"
    shop.add_tag(tom, "wholesale")  # twice is once
    shop.add_tag(tom, "vip")
    assert shop.tags(tom) == ["vip", "wholesale"]
    with pytest.raises(ValueError, match="is not a tag"):
        shop.add_tag(tom, "two words")
    assert shop.remove_tag(tom, "VIP") and not shop.remove_tag(tom, "vip")
    assert shop.all_tags() == ["wholesale"]


def test_the_list_filters_by_tag_and_by_assignee(shop):
    tom = customer_of(shop, "tom@example.com")
    maria = customer_of(shop, "maria@example.com")
    shop.add_tag(tom, "wholesale")
    assert [r.customer_id for r in shop.list_rows(ListFilter("open", tag="wholesale"), 0, 10)] == [tom]
    assert shop.count_rows(ListFilter("open", tag="wholesale")) == 1
    shop.assign(maria, "ana")
    assert [r.customer_id for r in shop.list_rows(ListFilter("open", assignee="ana"), 0, 10)] == [maria]
    assert shop.list_rows(ListFilter("open", assignee="ana"), 0, 10)[0].assignee == "ana"
    assert "ana" in shop.agents()
    shop.assign(maria, None)
    assert shop.count_rows(ListFilter("open", assignee="ana")) == 0


def test_notes_and_the_card(shop):
    maria = customer_of(shop, "maria@example.com")
    shop.add_note(maria, "ana", "Prefers pickup after 5pm")
    with pytest.raises(ValueError):
        shop.add_note(maria, "ana", "   ")
    shop.add_tag(maria, "regular")
    card = shop.card(maria)
    assert [(n.author, n.body) for n in card.notes] == [("ana", "Prefers pickup after 5pm")]
    assert card.tags == ["regular"]
    assert card.per_channel == {"email": 1}
    assert card.last_reply_at is None and card.last_inbound_at is not None


def test_drafts_are_kept_per_customer_and_agent_and_cleared_when_empty(shop):
    tom = customer_of(shop, "tom@example.com")
    shop.save_draft(tom, "ana", "Yes, we have a gluten free loaf")
    shop.save_draft(tom, "ben", "Hi Tom")
    assert shop.draft(tom, "ana") == "Yes, we have a gluten free loaf"
    assert shop.draft(tom, "ben") == "Hi Tom"
    shop.save_draft(tom, "ana", "  ")
    assert shop.draft(tom, "ana") == ""


def test_templates_fill_known_placeholders_and_leave_the_others_visible():
    values = values_for("Maria Lopez", "ana", "Crumb & Co.", {"order_number": "A-17"})
    text = fill("Hi {first_name}, order {order_number} is ready ({pickup_day}). {agent}, {business}", values)
    assert text == "Hi Maria, order A-17 is ready ({pickup_day}). ana, Crumb & Co."
    assert unfilled(text) == ["pickup_day"]
    # A handle or a number is not a first name: the placeholder stays for the agent to fill.
    assert unfilled(fill("Hi {first_name}", values_for("@ben75", "ana", "x", {}))) == ["first_name"]
    assert unfilled("JSON like {\"a\": 1} or {Braces} is not a placeholder") == []


def test_templates_are_stored_in_the_workspace(shop):
    shop.save_template("ready", "Hi {first_name}, it is ready")
    shop.save_template("ready", "Hi {first_name}, your order is ready")
    assert shop.templates() == {"ready": "Hi {first_name}, your order is ready"}


def test_presence_is_a_heartbeat_that_expires(shop):
    """Another console shows while its heartbeat is fresh; one that stopped beating is forgotten
    after PRESENCE_EXPIRY, and this console never sees itself."""
    from console.store import presence

    tom = customer_of(shop, "tom@example.com")
    shop.set_presence("ben", 4242, tom, "replying", host="ben-laptop")
    shop.set_presence("me", 777, None, host="my-box")
    seen = shop.presence(exclude_pid=777, agent="me")
    assert [(p.agent, p.customer_id, p.activity) for p in seen] == [("ben", tom, "replying")]
    with shop.db.write() as conn:  # ben's console went quiet a while ago
        conn.execute("UPDATE presence SET updated_at = updated_at - ? WHERE agent = 'ben'", (presence.PRESENCE_EXPIRY + 1,))
    assert shop.presence(exclude_pid=777, agent="me") == []


def test_a_dead_console_of_this_host_is_forgotten_at_the_next_heartbeat(shop):
    tom = customer_of(shop, "tom@example.com")
    other = subprocess.Popen([sys.executable, "-c", "pass"])
    other.wait()  # a console that was killed: its process is gone, its row is still fresh
    shop.set_presence("me", other.pid, tom, "replying", host="this-box")
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        shop.set_presence("ana", alive.pid, tom, "viewing", host="this-box")
        shop.set_presence("me", 999_999_999 % 4_000_000 + 1, None, host="this-box")  # the new console's beat
        seen = shop.presence(exclude_pid=999_999_999 % 4_000_000 + 1, agent="me")
        assert [(p.agent, p.activity) for p in seen] == [("ana", "viewing")]
    finally:
        alive.kill()
        alive.wait()


def test_search_words_and_filters(shop):
    tom = customer_of(shop, "tom@example.com")
    hits = shop.search("gluten")
    assert [(h.customer_id, h.line) for h in hits] == [(tom, "Do you have gluten free bread?")]
    assert shop.search("glut")[0].customer_id == tom  # the last word is a prefix
    maria = {customer_of(shop, "maria@example.com"), customer_of(shop, "+15550100001")}
    assert {h.customer_id for h in shop.search("from:maria")} == maria  # by name, on both her identities
    assert {h.customer_id for h in shop.search("from:maria@")} == {customer_of(shop, "maria@example.com")}
    assert shop.search("sourdough channel:email") == []
    assert len(shop.search("sourdough channel:sms")) == 1
    shop.add_tag(tom, "wholesale")
    assert [h.customer_id for h in shop.search("tag:wholesale")] == [tom]
    assert shop.search("cake status:done") == []
    assert shop.search("cake after:2000-01-01") and not shop.search("cake before:2000-01-01")
    with pytest.raises(SearchSyntaxError, match="before: expects a date"):
        shop.search("cake before:yesterday")
    with pytest.raises(SearchSyntaxError, match="status:"):
        shop.search("status:urgent")


def test_search_text_is_never_fts_syntax(shop):
    for query in ('"', 'gluten OR', 'NEAR(a b)', '*', 'bread"; DROP TABLE message; --', "col:value", "(((", "-x"):
        shop.search(query)  # no exception: every word is a quoted string
    assert shop.count_messages() == 4


def test_one_hit_per_conversation_newest_first(shop):
    hits = shop.search("please OR")
    assert len({h.conversation_id for h in hits}) == len(hits)


def test_merge_moves_everything_and_undo_restores_it(shop):
    sms = customer_of(shop, "+15550100001")
    mail = customer_of(shop, "maria@example.com")
    assert sms != mail
    shop.add_tag(mail, "regular")
    shop.add_tag(sms, "sms-only")
    shop.add_note(mail, "ana", "email note")
    log = shop.merge_customers(sms, mail)
    assert customer_of(shop, "maria@example.com") == sms
    assert shop.tags(sms) == ["regular", "sms-only"] and [n.body for n in shop.notes(sms)] == ["email note"]
    assert shop.count_rows(ListFilter("open")) == 2  # Maria is one row now, with Tom
    row = next(r for r in shop.list_rows(ListFilter("open"), 0, 10) if r.customer_id == sms)
    assert sorted(row.channels) == ["email", "sms"] and row.threads == 2
    assert shop.undo_merge(log) == "merge undone"
    assert customer_of(shop, "maria@example.com") == mail
    assert shop.tags(sms) == ["sms-only"] and shop.tags(mail) == ["regular"]
    assert [n.body for n in shop.notes(mail)] == ["email note"]
    assert shop.count_rows(ListFilter("open")) == 3
    with pytest.raises(ValueError, match="nothing to undo"):
        shop.undo_merge(log)


def test_split_and_undo(shop):
    sms = customer_of(shop, "+15550100001")
    mail = customer_of(shop, "maria@example.com")
    shop.merge_customers(sms, mail)
    identity = shop.db.query_one("SELECT id FROM identity WHERE address = 'maria@example.com'")[0]
    log = shop.split_identity(identity)
    alone = customer_of(shop, "maria@example.com")
    assert alone not in (sms,)
    assert shop.customer_name(alone) == "Maria Lopez"
    with pytest.raises(ValueError, match="only identity"):
        shop.split_identity(identity)
    shop.undo_merge(log)
    assert customer_of(shop, "maria@example.com") == sms
    assert shop.last_merge() is not None


def test_suggestions_from_a_shared_name_and_a_phone_number_in_a_signature(shop):
    sms = customer_of(shop, "+15550100001")
    mail = customer_of(shop, "maria@example.com")
    reasons = {s.customer_id: s.reason for s in shop.merge_suggestions(mail)}
    assert sms in reasons
    assert reasons[sms] == "same name"
    # Without the shared name, the signature's phone number is enough.
    shop.db.conn.execute("UPDATE customer SET name = 'M. Lopez' WHERE id = ?", (sms,))
    reasons = {s.customer_id: s.reason for s in shop.merge_suggestions(mail)}
    assert reasons == {sms: "their messages quote +15550100001"}
    assert shop.merge_suggestions(customer_of(shop, "tom@example.com")) == []


def test_find_customers_by_any_word_of_name_or_address(shop):
    found = shop.find_customers("maria 0001")
    assert [name for _, name, _ in found] == ["Maria Lopez"]
    assert shop.find_customers("tom@", exclude=customer_of(shop, "tom@example.com")) == []


def test_the_search_index_covers_each_body_up_to_8000_characters_and_stays_consistent(store):
    long_body = "croissant " + "filler " * 1200 + "zanzibar"  # the last word is past 8,000 characters
    store.apply_pull("acct", PullResult(messages=[msg(1, TOM, long_body, channel="email")]))
    assert [h.line for h in store.search("croissant")] and store.search("zanzibar") == []
    # An edit replaces the indexed text; the index stays consistent.
    store.db.conn.execute("UPDATE message SET body = 'pretzel ' || body WHERE external_id = 'm1'")
    assert store.search("pretzel") and store.search("croissant")
    index_is_consistent(store)
    store.db.conn.execute("DELETE FROM message")
    assert store.search("croissant") == []
    index_is_consistent(store)


def index_is_consistent(store) -> None:
    if store.backend == "sqlite":
        store.index.conn.execute("INSERT INTO search.message_fts(message_fts) VALUES ('integrity-check')")
    else:  # one document per message, no more
        assert store.db.query_one("SELECT (SELECT count(*) FROM search_doc) = (SELECT count(*) FROM message)")[0]
