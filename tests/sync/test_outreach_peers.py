"""Campaigns through the real engine and adapters against real peers: Dovecot + aiosmtpd for
email (tests/servers/dovecot.py), the Twilio fake for SMS and WhatsApp. What a customer gets is
read at the peer: the SMTP server's received mail, the Twilio fake's sent messages."""

from __future__ import annotations

from console.outreach import planner

import asyncio
import datetime as dt
import email
import time
from pathlib import Path

import pytest

from console.outreach.campaign import Campaign, ChannelText, Step
from console.outreach import csvimport
from console.outreach.settings import senders_for
from console.outreach.zones import zone_named
from console.store import Store
from console.sync import Engine
from fakes.twilio import FakeTwilio, load_spec
from servers.dovecot import Dovecot, SmtpServer, dovecot_binary
from workspace import workspace_from

OURS = "+15550001111"
NEW_YORK = zone_named("America/New_York")
MARIA_PHONE, MARIA_MAIL = "+12125550142", "maria@example.com"
KOFI_PHONE, KOFI_MAIL = "+12125550143", "kofi@example.com"
LONDON_PHONE = "+447700900142"
UNSUBSCRIBE = "unsubscribe@acme.test"


@pytest.fixture
def twilio():
    fake = FakeTwilio(numbers=(OURS,), spec=load_spec()).start()
    yield fake
    fake.stop()
    assert fake.violations == []


@pytest.fixture
def mailhost(tmp_path, monkeypatch):
    server = Dovecot(tmp_path / "dovecot", binary=dovecot_binary())
    server.start()
    smtp = SmtpServer(tmp_path / "smtp").start()
    trust = tmp_path / "ca.pem"
    trust.write_text(Path(server.cert).read_text() + Path(smtp.cert).read_text())
    monkeypatch.setenv("OUTREACH_TEST_MAIL_PASSWORD", server.password)
    yield server, smtp, trust
    smtp.stop()
    proc = server.terminate()
    if proc is not None:
        proc.wait(timeout=10)


def config(tmp_path, twilio=None, mailhost=None, outreach: str = ""):
    text = '[workspace]\nname = "Acme Bakery"\ndefault_region = "US"\n'
    text += f'[outreach]\nquiet_hours = "off"\nunsubscribe_address = "{UNSUBSCRIBE}"\ntimezone = "America/New_York"\n'
    text += outreach
    if twilio is not None:
        text += (f'[[accounts]]\nkind = "twilio"\nname = "phone"\naccount_sid = "{twilio.account_sid}"\n'
                 f'auth_token = "{twilio.auth_token}"\nnumbers = ["{OURS}", "whatsapp:{OURS}"]\n'
                 f'api_base_url = "{twilio.url}"\npoll_interval = 0.01\ntimeout = 5\n'
                 '[accounts.templates]\nfollow_up = "HX00000000000000000000000000000001"\n')
    if mailhost is not None:
        dovecot, smtp, trust = mailhost
        text += (f'[[accounts]]\nkind = "email"\nname = "mail"\nemail = "{dovecot.user}"\n'
                 f'display_name = "Acme Bakery"\nimap_host = "127.0.0.1"\nimap_port = {dovecot.port}\n'
                 f'imap_user = "{dovecot.user}"\npassword_env = "OUTREACH_TEST_MAIL_PASSWORD"\n'
                 f'sent_folder = "Sent"\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp.port}\ntimeout = 5\n'
                 f'poll_interval = 1\nca_file = "{trust}"\n')
    return workspace_from(text, tmp_path)


def run_once(ws, store, clock=time.time):
    return asyncio.run(Engine(ws, store, clock=clock).run(once=True))


def deliver_mail(dovecot, sender: str, subject: str, body: str, to: str = "shop@acme.test") -> None:
    stamp = email.utils.formatdate(time.time())
    msgid = email.utils.make_msgid(domain="example.com")
    dovecot.deliver((f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {stamp}\r\nMessage-ID: {msgid}\r\n"
                     f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode())


def people(store, ws, rows: str) -> None:
    """Customers with their consent, as a shop imports them."""
    parsed, refused = csvimport.parse("name,email,phone,consent_email,consent_sms,consent_whatsapp,consent_date\n"
                                      + rows, "people.csv", "US", time.time())
    assert not refused
    store.import_contacts(parsed, refused)


def launch(store, ws, name: str, steps, query: str = "not:tag:nobody") -> None:
    segment = store.save_segment(f"{name} people", query)
    store.save_campaign(Campaign(None, name, segment, steps=steps))
    planner.launch(store, name, senders_for(ws), "ana")


def received_mail(smtp, to: str) -> list[email.message.Message]:
    return [email.message_from_bytes(m["data"]) for m in smtp.messages if to in m["to"]]


def test_a_campaign_email_carries_list_unsubscribe_and_a_mail_to_the_address_unsubscribes(tmp_path, mailhost):
    dovecot, smtp, _ = mailhost
    ws = config(tmp_path, mailhost=mailhost, outreach='unsubscribe_url = "https://acme.test/u"\n')
    store = Store(ws.store_location, "US", ws.outreach)
    people(store, ws, f"Maria Lopez,{MARIA_MAIL},,yes,,,2026-01-05\n")
    launch(store, ws, "Spring menu", [Step(1, 0, "order", ("email",),
                                           {"email": ChannelText("Spring menu, {first_name}", "New tarts.")})])
    assert run_once(ws, store) == {}
    [mail] = received_mail(smtp, MARIA_MAIL)
    assert mail["Subject"] == "Spring menu, Maria"
    links = mail["List-Unsubscribe"]
    assert links.startswith("<https://acme.test/u/") and f"<mailto:{UNSUBSCRIBE}?subject=unsubscribe%20" in links
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "To stop:" in mail.get_payload(decode=True).decode()
    # The customer's mail client uses the mailto: it lands in the shop's mailbox, the engine reads it.
    token = links.split("subject=unsubscribe%20", 1)[1].split(">", 1)[0]
    deliver_mail(dovecot, MARIA_MAIL, f"unsubscribe {token}", "", to=UNSUBSCRIBE)
    assert run_once(ws, store) == {}
    identity = store.db.query_one("SELECT id FROM identity WHERE address = ?", (MARIA_MAIL,))[0]
    assert store.consent_state(identity, "email", "marketing") == "withdrawn"
    launch(store, ws, "Summer menu", [Step(1, 0, "order", ("email",), {"email": ChannelText("Summer", "Ices.")})])
    assert run_once(ws, store) == {}
    assert len(received_mail(smtp, MARIA_MAIL)) == 1
    store.close()


def test_a_reply_on_sms_stops_the_email_step(tmp_path, twilio, mailhost):
    _, smtp, _ = mailhost
    ws = config(tmp_path, twilio=twilio, mailhost=mailhost)
    store = Store(ws.store_location, "US", ws.outreach)
    people(store, ws, f"Maria Lopez,{MARIA_MAIL},{MARIA_PHONE},yes,,,2026-01-05\n"
                      f"Kofi Mensah,{KOFI_MAIL},{KOFI_PHONE},yes,,,2026-01-05\n")
    steps = [Step(1, 0, "order", ("email",), {"email": ChannelText("Spring menu", "New tarts.")}),
             Step(2, 4 * 86400, "order", ("email",), {"email": ChannelText("Last days", "Till Sunday.")})]
    launch(store, ws, "Spring menu", steps)
    assert run_once(ws, store) == {}
    assert len(received_mail(smtp, MARIA_MAIL)) == len(received_mail(smtp, KOFI_MAIL)) == 1
    twilio.inbound(MARIA_PHONE, "Two lemon tarts for Saturday please")  # she answers by text
    assert run_once(ws, store) == {}
    later = time.time() + 5 * 86400
    for _ in range(2):  # the duty plans step 2, then the outbox sends it
        assert run_once(ws, store, clock=lambda: later) == {}
    assert [m["Subject"] for m in received_mail(smtp, KOFI_MAIL)] == ["Spring menu", "Last days"]
    assert [m["Subject"] for m in received_mail(smtp, MARIA_MAIL)] == ["Spring menu"]
    reason = store.db.query_one("""SELECT cr.reason FROM campaign_recipient cr JOIN identity i
                                   ON i.customer_id = cr.customer_id WHERE i.address = ? AND cr.position = 2""",
                                (MARIA_MAIL,))[0]
    assert reason == "replied"
    store.close()


def test_the_cap_is_never_exceeded_across_email_and_sms(tmp_path, twilio, mailhost):
    _, smtp, _ = mailhost
    ws = config(tmp_path, twilio=twilio, mailhost=mailhost)
    store = Store(ws.store_location, "US", ws.outreach)
    people(store, ws, f"Maria Lopez,{MARIA_MAIL},{MARIA_PHONE},yes,yes,,2026-01-05\n")
    launch(store, ws, "Email news", [Step(1, 0, "order", ("email",), {"email": ChannelText("News", "Hello.")})])
    launch(store, ws, "SMS news", [Step(1, 0, "order", ("sms",), {"sms": ChannelText(body="Hello")})])
    identity = store.db.query_one("SELECT id FROM identity WHERE address = ?", (MARIA_PHONE,))[0]
    store.enqueue_reply(identity, "phone", "sms", "A hand-made promotion", purpose="marketing")
    for _ in range(2):
        assert run_once(ws, store) == {}
    got = len(received_mail(smtp, MARIA_MAIL)) + len([m for m in twilio.outbound() if m.to == MARIA_PHONE])
    assert got == 1
    store.close()


def test_quiet_hour_sends_are_held_and_released_on_the_engines_clock(tmp_path, twilio):
    ws = config(tmp_path, twilio=twilio, outreach="")
    ws.outreach = type(ws.outreach)(**{**ws.outreach.__dict__, "quiet_start": 20 * 60, "quiet_end": 9 * 60})
    store = Store(ws.store_location, "US", ws.outreach)
    people(store, ws, f"Maria Lopez,,{MARIA_PHONE},,yes,,2026-01-05\n")
    evening = dt.datetime.now(NEW_YORK).replace(hour=22, minute=0, second=0, microsecond=0).timestamp()
    segment = store.save_segment("all", "channel:sms")
    store.save_campaign(Campaign(None, "Night owls", segment,
                                 steps=[Step(1, 0, "order", ("sms",), {"sms": ChannelText(body="Fresh at 7!")})]))
    plan = planner.launch(store, "Night owls", senders_for(ws), "ana", at=evening)
    assert plan.now == [] and len(plan.held) == 1
    now = [evening + 3600]
    assert run_once(ws, store, clock=lambda: now[0]) == {}
    assert twilio.outbound() == []  # 23:00 in New York: held, not skipped
    now[0] = plan.held[0].at  # 09:00 the next morning
    assert dt.datetime.fromtimestamp(now[0], NEW_YORK).hour == 9
    assert run_once(ws, store, clock=lambda: now[0]) == {}
    assert [m.body for m in twilio.outbound()] == ["Fresh at 7! Reply STOP to opt out."]
    store.close()


def test_an_sms_stop_does_not_block_whatsapp(tmp_path, twilio):
    # A UK number: quiet hours are off in this workspace, and no US calling hours apply.
    ws = config(tmp_path, twilio=twilio)
    store = Store(ws.store_location, "US", ws.outreach)
    twilio.contents["HX00000000000000000000000000000001"] = "Hi {{1}}, our {{2}} is back."
    twilio.inbound(f"whatsapp:{LONDON_PHONE}", "Is the rye bread back?", at=time.time() - 3 * 86400)
    people(store, ws, f"Maria Lopez,,{LONDON_PHONE},,yes,yes,2026-01-05\n")
    twilio.inbound(LONDON_PHONE, "STOP")
    assert run_once(ws, store) == {}
    maria = store.db.query_one("SELECT customer_id FROM identity WHERE address = ?", (LONDON_PHONE,))[0]
    store.set_status("done", customer_id=maria)  # the question was answered meanwhile
    step = Step(1, 0, "order", ("sms", "whatsapp"),
                {"sms": ChannelText(body="Rye is back!"),
                 "whatsapp": ChannelText(template="follow_up", variables=("{first_name}", "rye bread"))})
    launch(store, ws, "Rye", [step])
    for _ in range(2):
        assert run_once(ws, store) == {}
    sent = [(m.to, m.body) for m in twilio.outbound() if LONDON_PHONE in m.to]
    assert sent == [(f"whatsapp:{LONDON_PHONE}", "Hi Maria, our rye bread is back.")]
    store.close()
