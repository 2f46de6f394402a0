"""Consent in the store: opt-out keywords on every channel, per channel; START; the one
confirmation; agents' changes with a reason; the history; unsubscribe mail; importing a CSV;
a workspace from before consent per channel."""

from __future__ import annotations

from console.outreach.consent import consent_rows

import time

import pytest

from console.model import Address, InboundMessage, OptOutChange, PullResult
from console.outreach import csvimport
from console.outreach.settings import OutreachSettings
from console.store import OptedOut, Store
from console.store.schema import MIGRATIONS
from outreach_world import ANYTIME, address, customer, identity_id, outbox, pull, wrote


@pytest.fixture
def store(backend):
    s = backend.open("console.db", "DE", ANYTIME)
    s.set_account_state("phone", "demo", "ok")
    return s


def state(store, channel, n, purpose="marketing"):
    return store.consent_state(identity_id(store, channel, n), channel, purpose)


def test_stop_on_sms_ends_sms_altogether_and_whatsapp_stays_open(store):
    customer(store, 1, channels=("sms", "whatsapp"), consent=("sms", "whatsapp"))
    wrote(store, "sms", 1, "STOP", ago=60)
    assert state(store, "sms", 1) == "withdrawn" and state(store, "sms", 1, "service") == "withdrawn"
    assert state(store, "whatsapp", 1) == "granted"
    ident = identity_id(store, "sms", 1)
    with pytest.raises(OptedOut):
        store.enqueue_reply(ident, "phone", "sms", "are you sure?")
    store.enqueue_reply(ident, "phone", "whatsapp", "Noted, no more texts.")  # another channel: fine


@pytest.mark.parametrize("channel", ["email", "sms", "whatsapp", "telegram"])
@pytest.mark.parametrize("word", ["STOP", "unsubscribe", "Cancel.", "END", "quit!", "STOPALL"])
def test_every_stop_word_as_a_whole_message_ends_marketing_on_that_channel(store, channel, word):
    customer(store, 2, channels=(channel,), consent=(channel,))
    wrote(store, channel, 2, word, ago=60)
    assert state(store, channel, 2) == "withdrawn"


def test_a_sentence_with_stop_in_it_is_not_an_opt_out(store):
    customer(store, 3, channels=("telegram",), consent=("telegram",))
    wrote(store, "telegram", 3, "Please don't stop making those rolls", ago=60)
    assert state(store, "telegram", 3) == "granted"


def test_a_chat_stop_ends_marketing_but_the_customer_can_still_be_answered(store):
    customer(store, 4, channels=("telegram",), consent=("telegram",))
    wrote(store, "telegram", 4, "stop", ago=60)
    assert state(store, "telegram", 4) == "withdrawn" and state(store, "telegram", 4, "service") == ""
    store.enqueue_reply(identity_id(store, "telegram", 4), "tg", "telegram", "Sorry, you will get no more news.")


def test_start_or_unstop_resubscribes_what_a_keyword_ended(store):
    customer(store, 5, channels=("sms",), consent=("sms",))
    wrote(store, "sms", 5, "STOP", ago=120)
    wrote(store, "sms", 5, "UNSTOP", ago=60)
    assert state(store, "sms", 5) == "granted" and state(store, "sms", 5, "service") == "granted"
    row = store.db.query_one("SELECT source, agreed_text FROM consent WHERE identity_id = ? AND purpose = 'marketing'",
                             (identity_id(store, "sms", 5),))
    assert row["source"] == "wrote UNSTOP on SMS" and row["agreed_text"] == "news from Crumb & Co."
    # START never grants marketing nobody agreed to.
    customer(store, 6, channels=("sms",), consent=())
    wrote(store, "sms", 6, "START", ago=60)
    assert state(store, "sms", 6) == ""


def test_an_older_stop_read_after_a_newer_start_does_not_win(store):
    customer(store, 7, channels=("sms",), consent=("sms",))
    wrote(store, "sms", 7, "START", ago=60)
    wrote(store, "sms", 7, "STOP", ago=3600)  # older, arriving later (a history read newest first)
    assert state(store, "sms", 7, "service") == "granted"
    assert len(store.consent_history(store.db.query_one("SELECT customer_id FROM identity WHERE id = ?",
                                                        (identity_id(store, "sms", 7),))[0])) >= 3


def test_the_sms_opt_out_is_confirmed_once_when_the_service_does_not_confirm_it(store):
    customer(store, 8, channels=("sms",), consent=("sms",))
    wrote(store, "sms", 8, "STOP", ago=30)
    wrote(store, "sms", 8, "stop", ago=20)  # again: already out, nothing to confirm
    acks = outbox(store, "ack")
    assert len(acks) == 1 and "Reply START" in acks[0]["body"] and "Crumb & Co." in acks[0]["body"]
    # Claimed although SMS is withdrawn: it is the confirmation, the one message allowed.
    claimed = store.claim_due(["phone"])
    assert [o.purpose for o in claimed] == ["ack"]


def test_twilio_confirms_its_own_words_itself_and_an_old_stop_is_not_confirmed(store):
    store.set_account_state("twilio-phone", "twilio", "ok")
    customer(store, 9, channels=("sms",), consent=("sms",))
    wrote(store, "sms", 9, "STOP", ago=30, account="twilio-phone", kind="twilio")
    customer(store, 10, channels=("sms",), consent=("sms",))
    wrote(store, "sms", 10, "STOP", ago=10 * 86400)  # a first sync of old history
    assert outbox(store, "ack") == []
    assert state(store, "sms", 9) == state(store, "sms", 10) == "withdrawn"


def test_words_of_other_languages_from_the_config_count(backend):
    settings = OutreachSettings(opt_out_words=frozenset({"STOPP", "BAJA"}), opt_in_words=frozenset({"ALTA"}))
    store = backend.open("w.db", "DE", settings)
    customer(store, 11, channels=("whatsapp",), consent=("whatsapp",))
    wrote(store, "whatsapp", 11, "Baja", ago=60)
    assert state(store, "whatsapp", 11) == "withdrawn"
    store.close()


def test_an_agents_change_needs_a_reason_and_the_export_shows_who_when_and_why(store):
    cid = customer(store, 12, channels=("email",), consent=())
    ident = identity_id(store, "email", 12)
    with pytest.raises(ValueError, match="say why"):
        store.set_consent(ident, "email", "marketing", "granted", "asked in shop", agent="ana")
    store.set_consent(ident, "email", "marketing", "granted", "asked in shop", "weekly news by email",
                      reason="she signed the sheet at the counter", agent="ana")
    store.set_consent(ident, "email", "marketing", "withdrawn", "phone call", reason="said no more mail", agent="ben")
    history = store.consent_history(cid)
    assert [(h["state"], h["agent"], h["reason"]) for h in history] == [
        ("granted", "ana", "she signed the sheet at the counter"), ("withdrawn", "ben", "said no more mail")]
    assert history[0]["agreed_text"] == "weekly news by email"
    rows = {(r.channel, r.purpose): r for r in consent_rows(store, cid)}
    assert rows[("email", "marketing")].state == "withdrawn" and rows[("email", "service")].state == ""


def test_mail_to_the_unsubscribe_address_or_with_the_token_ends_email_marketing(backend):
    store = backend.open("u.db", "DE", OutreachSettings(unsubscribe_address="unsubscribe@crumb.example"))
    customer(store, 13, channels=("email",), consent=("email",))
    customer(store, 14, channels=("email",), consent=("email",))
    raw = (b"From: person13@example.com\r\nTo: Unsubscribe <UNSUBSCRIBE@crumb.example>\r\nSubject: hi\r\n\r\n"
           b"please take me off\r\n")
    pull(store, "mail", PullResult([InboundMessage("<u13@example.com>", "<u13@example.com>", "email", "in",
                                                        address("email", 13), time.time(), "please take me off",
                                                        subject="hi", raw=raw)]))
    assert state(store, "email", 13) == "withdrawn"
    token = store.unsubscribe_tokens([identity_id(store, "email", 14)])[identity_id(store, "email", 14)]
    # Sent from another address of theirs: the token says whom it is about.
    pull(store, "mail", PullResult([InboundMessage("<u14@example.com>", "<u14@example.com>", "email", "in",
                                                        Address("email", "work14@example.org"), time.time(), "",
                                                        subject=f"unsubscribe {token}")]))
    assert state(store, "email", 14) == "withdrawn"
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert store.unsubscribe(forged) is None
    store.close()


def test_an_https_one_click_unsubscribe_is_honoured_by_its_token(store):
    customer(store, 15, channels=("email",), consent=("email",))
    ident = identity_id(store, "email", 15)
    assert store.unsubscribe(store.unsubscribe_tokens([ident])[ident]) == "person15@example.com"
    assert state(store, "email", 15) == "withdrawn"


def test_a_service_reported_opt_out_applies_to_its_channel(store):
    customer(store, 16, channels=("sms", "whatsapp"), consent=("sms", "whatsapp"))
    store.apply_pull("phone", PullResult(opt_outs=[OptOutChange(address("whatsapp", 16), True, "whatsapp")]))
    assert state(store, "whatsapp", 16) == "withdrawn" and state(store, "sms", 16) == "granted"


def test_a_workspace_from_before_consent_per_channel_keeps_its_opt_outs_on_sms(backend):
    before = next(n for n, migration in enumerate(MIGRATIONS) if any("CREATE TABLE consent " in s for s in migration))
    old = backend.old_workspace(before)  # the workspace as the version before wrote it
    old.execute("INSERT INTO customer (id, name, created_at, updated_at) VALUES (1, 'Ann', 0, 0)")
    old.execute("""INSERT INTO identity (id, customer_id, kind, address, opted_out, opted_out_at, created_at)
                   VALUES (1, 1, 'phone', '+4930555001', 1, 100, 0), (2, 1, 'email', 'ann@example.com', 0, NULL, 0)""")
    old.close()
    store = backend.open("old.db")
    assert store.db.schema_version() == len(MIGRATIONS)
    assert store.consent_state(1, "sms", "service") == "withdrawn"
    assert store.consent_state(1, "whatsapp", "service") == ""
    assert store.consent_state(2, "email", "marketing") == ""
    assert store.identities(1)[0].opted_out_of == ("sms",)


# ---- importing customers with consent from CSV -----------------------------------------------------
CSV = """name,email,phone,consent_email,consent_sms,consent_source,consent_date,city,orders,tags
Maria Lopez,maria@example.com,+49 30 5550100,yes,yes,signed up in shop,2026-11-02,Berlin,4,regular
Kofi Mensah,,+4930555 0101,,no,,,Hamburg,1,
No Address,,,yes,,,,,,
Bad Mail,not-an-email,,yes,,,,,,
Twice,maria@example.com,,yes,,,,,,
Maybe,maybe@example.com,,perhaps,,,,,,
Phoneless,p@example.com,,,yes,,,,,
Future,f@example.com,,yes,,,2099-01-01,,,
"""


def test_a_csv_import_dry_run_reports_every_refused_row_and_writes_nothing(store):
    rows, refused = csvimport.parse(CSV, "customers.csv", "DE", time.time())
    report = store.import_contacts(rows, refused, dry_run=True)
    lines = report.lines()
    assert report.created == 2 and report.consents == 3 and "dry run" in lines[0]
    reasons = {r.number: r.reason for r in report.refused}
    assert set(reasons) == {4, 5, 6, 7, 8, 9}
    assert "no email and no phone" in reasons[4] and "not an email address" in reasons[5]
    assert "same email as line 2" in reasons[6] and "write yes or no" in reasons[7]
    assert "needs the customer's phone" in reasons[8] and "in the future" in reasons[9]
    assert store.db.query_one("SELECT COUNT(*) FROM customer")[0] == 0


def test_a_csv_import_makes_customers_with_attributes_tags_and_consent(store):
    rows, refused = csvimport.parse(CSV, "customers.csv", "DE", time.time())
    store.import_contacts(rows, refused, agent="ana")
    maria = store.db.query_one("SELECT * FROM customer WHERE name = 'Maria Lopez'")
    assert '"city": "Berlin"' in maria["attributes"] and store.tags(maria["id"]) == ["regular"]
    assert len(store.identities(maria["id"])) == 2  # email and phone: one customer
    rows_ = {(r.channel, r.purpose): r for r in consent_rows(store, maria["id"])}
    assert rows_[("email", "marketing")].state == "granted" and rows_[("email", "marketing")].source == "signed up in shop"
    kofi = store.db.query_one("SELECT id FROM customer WHERE name = 'Kofi Mensah'")[0]
    assert {(r.channel, r.state) for r in consent_rows(store, kofi) if r.purpose == "marketing"} >= {("sms", "withdrawn")}


def test_an_imported_consent_never_overrides_a_later_stop(store):
    wrote(store, "sms", 17, "hi", ago=86400)
    wrote(store, "sms", 17, "STOP", ago=3600)
    text = f"name,phone,consent_sms,consent_date\nPerson 17,{address('sms', 17).address},yes,2026-01-01\n"
    rows, refused = csvimport.parse(text, "old.csv", "DE", time.time())
    report = store.import_contacts(rows, refused)
    assert report.refused and "decided otherwise later" in report.refused[0].reason
    assert state(store, "sms", 17) == "withdrawn"
