"""The email account, end to end: a real Dovecot (IMAP, TLS, IDLE) and a real SMTP server
(aiosmtpd) from tests/servers/dovecot.py <-> the adapter <-> the sync engine <-> a real store."""

from __future__ import annotations

import asyncio
import email
import logging
import re
import ssl
import time
from email.policy import default as default_policy
from pathlib import Path

import pytest

from conftest import workspace_from
from console.channels import open_channel
from console.model import Address, InboundMessage, PullResult
from console.sync import Engine
from servers.dovecot import Dovecot, SmtpServer, dovecot_binary

pytestmark = pytest.mark.services

CUSTOMERS = ("maria@example.com", "kofi@example.net", "ann@example.org")


# ---- servers and workspace -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stopping():
    """Dovecot takes a second to stop: let each one stop in the background, wait once at the end."""
    servers: list[tuple[Dovecot, object]] = []
    yield servers
    for server, proc in servers:
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except Exception:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
        server.remove()


@pytest.fixture
def dovecot(tmp_path, stopping):
    server = Dovecot(tmp_path / "dovecot", binary=dovecot_binary())
    stopping.append((server, None))
    server.start()
    yield server
    stopping.append((server, server.terminate()))


@pytest.fixture
def smtp(tmp_path):
    server = SmtpServer(tmp_path / "smtp").start()
    yield server
    server.stop()


@pytest.fixture
def trust(tmp_path, dovecot, smtp) -> Path:
    """One CA file trusting both test servers' self-signed certificates."""
    bundle = tmp_path / "test-ca.pem"
    bundle.write_text(Path(dovecot.cert).read_text() + Path(smtp.cert).read_text())
    return bundle


@pytest.fixture(autouse=True)
def password(monkeypatch, dovecot):
    monkeypatch.setenv("CONSOLE_TEST_MAIL_PASSWORD", dovecot.password)
    return dovecot.password


def config(tmp_path, dovecot, smtp, trust=None, extra: str = "", **keys):
    lines = {
        "kind": "email", "name": "mail", "email": dovecot.user, "display_name": "Acme Bakery",
        "imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_user": dovecot.user,
        "password_env": "CONSOLE_TEST_MAIL_PASSWORD", "sent_folder": "Sent",
        "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "timeout": 5, "poll_interval": 1,
    }
    if trust is not None:
        lines["ca_file"] = str(trust)
    lines.update(keys)
    body = "".join(f"{k} = {v}\n" if isinstance(v, (int, float)) and not isinstance(v, bool)
                   else f"{k} = {str(v).lower()}\n" if isinstance(v, bool) else f'{k} = "{v}"\n'
                   for k, v in lines.items())
    return workspace_from('[workspace]\nname = "Acme"\n[[accounts]]\n' + body + extra, tmp_path)


def channel_for(ws):
    return open_channel(ws.accounts[0], ws)


def sync(ws, store, channel=None) -> dict[str, str]:
    """One engine pass (pull until drained, then the outbox), as `console sync --once` does."""
    channels = {"mail": channel} if channel is not None else None
    return asyncio.run(Engine(ws, store, channels).run(once=True))


def mail(sender: str, subject: str, body: str = "hello", *, to: str = "shop@acme.test", msgid: str | None = None,
         reply_to: str | None = None, refs: str | None = None, date: str = "Mon, 02 Mar 2026 09:12:00 +0000",
         extra: str = "", content_type: str = "text/plain; charset=utf-8") -> bytes:
    headers = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Date: {date}"]
    if msgid:
        headers.append(f"Message-ID: {msgid}")
    if reply_to:
        headers.append(f"In-Reply-To: {reply_to}")
    if refs:
        headers.append(f"References: {refs}")
    headers += ["MIME-Version: 1.0", f"Content-Type: {content_type}"]
    return ("\r\n".join(headers) + "\r\n" + extra + "\r\n" + body).encode()


def identity(store, address: str):
    return store.db.query_one("SELECT * FROM identity WHERE kind = 'email' AND address = ?", (address,))


def messages(store) -> list:
    return store.db.query("SELECT * FROM message ORDER BY id")


def snapshot(store) -> list[tuple]:
    """What a user could see: every message with its customer and thread, in a stable order."""
    return [tuple(r) for r in store.db.query(
        """SELECT m.external_id, m.direction, i.address, c.thread_key, m.subject, m.body, m.status
           FROM message m JOIN identity i ON i.id = m.identity_id JOIN conversation c ON c.id = m.conversation_id
           ORDER BY m.external_id""")]


def state(store):
    return {s.name: s for s in store.account_states()}["mail"]


def second_client(dovecot):
    from imapclient import IMAPClient

    client = IMAPClient("127.0.0.1", dovecot.port, ssl=True,
                        ssl_context=ssl.create_default_context(cafile=str(dovecot.cert)), timeout=5)
    client.login(dovecot.user, dovecot.password)
    return client


HTML_ONLY = (
    "From: Kofi Mensah <kofi@example.net>\r\nTo: shop@acme.test\r\nSubject: Price for 20 boxes?\r\n"
    "Message-ID: <k1@example.net>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/html; charset=utf-8\r\n\r\n"
    "<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
    "<p>Hello,</p><p>see <a href=\"https://shop.example/catalogue?x=1\">our list</a> "
    "<img src=\"https://tracker.example/p.gif\" alt=\"logo\"></p></body></html>\r\n"
).encode()

ALTERNATIVE_WITH_PDF = (
    "From: \"Ann O'Neil\" <ann@example.org>\r\nTo: shop@acme.test\r\nSubject: =?utf-8?q?Invoice_=E2=82=AC40?=\r\n"
    "Message-ID: <a1@example.org>\r\nDate: Mon, 02 Mar 2026 11:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
    "--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
    "--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    "The plain text =E2=82=AC40\r\n"
    "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The <b>HTML</b> version</p>\r\n"
    "--alt--\r\n"
    "--outer\r\nContent-Type: application/pdf; name=\"invoice 2231.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"invoice 2231.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "JVBERi0xLjcgdGhlIGludm9pY2U=\r\n"
    "--outer--\r\n"
).encode()


# ---- inbound ---------------------------------------------------------------------------------------

def test_first_sync_files_each_mail_under_its_customer_and_threads_replies(tmp_path, dovecot, smtp, trust, store):
    dovecot.deliver(mail("Maria Lopez <Maria@Example.com>", "Order #118", "Could you add candles?",
                         msgid="<m1@example.com>"))
    # A reply whose client kept only In-Reply-To, and one whose References are complete.
    dovecot.deliver(mail("maria@example.com", "Re: Order #118", "And a card.", msgid="<m2@example.com>",
                         reply_to="<m1@example.com>", date="Mon, 02 Mar 2026 09:20:00 +0000"))
    dovecot.deliver(mail("maria@example.com", "Re: Order #118", "Thanks!", msgid="<m3@example.com>",
                         reply_to="<m2@example.com>", refs="<m1@example.com> <m2@example.com>",
                         date="Mon, 02 Mar 2026 09:30:00 +0000"))
    dovecot.deliver(mail("maria@example.com", "Another thing", "Separate question", msgid="<m4@example.com>",
                         date="Mon, 02 Mar 2026 12:00:00 +0000"))
    dovecot.deliver(HTML_ONLY)
    dovecot.deliver(ALTERNATIVE_WITH_PDF)
    ws = config(tmp_path, dovecot, smtp, trust)
    assert sync(ws, store) == {}
    assert state(store).state == "ok"

    maria = identity(store, "maria@example.com")
    assert maria["display_name"] == "Maria Lopez" and store.customer_name(maria["customer_id"]) == "Maria Lopez"
    timeline = store.timeline(maria["customer_id"])
    assert [e.body for e in timeline] == ["Could you add candles?", "And a card.", "Thanks!", "Separate question"]
    assert all(e.direction == "in" and e.channel == "email" for e in timeline)
    threads = store.db.query("SELECT thread_key, message_count, subject FROM conversation WHERE customer_id = ? "
                             "ORDER BY id", (maria["customer_id"],))
    assert [tuple(t) for t in threads] == [("<m1@example.com>", 3, "Order #118"), ("<m4@example.com>", 1, "Another thing")]

    [kofi] = store.timeline(identity(store, "kofi@example.net")["customer_id"])
    assert "see our list (https://shop.example/catalogue?x=1)" in kofi.body
    assert "Hello," in kofi.body and "alert" not in kofi.body and "color" not in kofi.body
    assert "tracker.example" not in kofi.body and "[image: logo]" in kofi.body

    [ann] = store.timeline(identity(store, "ann@example.org")["customer_id"])
    assert ann.subject == "Invoice €40" and ann.body == "The plain text €40"
    [pdf] = ann.attachments
    assert (pdf["name"], pdf["content_type"], pdf["size"]) == ("invoice 2231.pdf", "application/pdf", 20)
    row = store.db.query_one("SELECT id, raw, html FROM message WHERE external_id = '<a1@example.org>'")
    raw = store.message_raw(row["id"])
    assert raw.replace(b"\r\n", b"\n") == ALTERNATIVE_WITH_PDF.replace(b"\r\n", b"\n")
    assert row["html"] is None and b"<b>HTML</b>" in raw, "the HTML is kept once, in the raw mail"
    assert row["raw"] is None, "raw bytes live in the raw file, not in the workspace"

    async def fetch():
        channel = channel_for(ws)
        try:
            return await channel.fetch_attachment("<a1@example.org>", pdf["ref"])
        finally:
            await channel.close()

    assert asyncio.run(fetch()) == b"%PDF-1.7 the invoice"
    before = snapshot(store)
    assert sync(ws, store) == {} and snapshot(store) == before, "a second run changes nothing"


def test_a_reply_without_thread_headers_joins_by_subject_only_for_the_same_customer(tmp_path, dovecot, smtp, trust,
                                                                                     store):
    dovecot.deliver(mail("maria@example.com", "Order #118", "Candles?", msgid="<s1@example.com>",
                         date="Mon, 02 Mar 2026 09:00:00 +0000"))
    dovecot.deliver(mail("kofi@example.net", "Order #118", "Mine too", msgid="<s2@example.net>",
                         date="Mon, 02 Mar 2026 09:05:00 +0000"))
    # Her phone dropped In-Reply-To and References; a German client wrote "AW:".
    dovecot.deliver(mail("maria@example.com", "RE: AW:  order #118", "And a card.", msgid="<s3@example.com>",
                         date="Mon, 02 Mar 2026 10:00:00 +0000"))
    # Not a reply: a new question that happens to reuse the subject stays its own conversation.
    dovecot.deliver(mail("maria@example.com", "Order #118", "Another order", msgid="<s4@example.com>",
                         date="Tue, 03 Mar 2026 10:00:00 +0000"))
    # A reply months later starts over rather than reopening an old thread.
    dovecot.deliver(mail("kofi@example.net", "Re: Order #118", "Back again", msgid="<s5@example.net>",
                         date="Mon, 01 Jun 2026 10:00:00 +0000"))
    ws = config(tmp_path, dovecot, smtp, trust)
    assert sync(ws, store) == {}

    def threads(address):
        return [(t["thread_key"], t["message_count"]) for t in store.db.query(
            "SELECT thread_key, message_count FROM conversation WHERE customer_id = ? ORDER BY id",
            (identity(store, address)["customer_id"],))]

    assert threads("maria@example.com") == [("<s1@example.com>", 2), ("<s4@example.com>", 1)]
    assert threads("kofi@example.net") == [("<s2@example.net>", 1), ("<s5@example.net>", 1)]


def test_a_different_mail_reusing_a_message_id_is_kept_and_copies_of_one_mail_are_not(tmp_path, dovecot, smtp,
                                                                                       trust, store):
    original = mail("maria@example.com", "Order #118", "Candles?", msgid="<same@example.com>")
    dovecot.deliver(original)
    dovecot.deliver(original, folder="Sent", seen=True)  # the same mail twice: stored once
    dovecot.deliver(mail("eve@example.org", "Prize!", "You won", msgid="<same@example.com>",
                         date="Tue, 03 Mar 2026 10:00:00 +0000"))
    ws = config(tmp_path, dovecot, smtp, trust)
    assert sync(ws, store) == {}
    [maria] = store.timeline(identity(store, "maria@example.com")["customer_id"])
    [eve] = store.timeline(identity(store, "eve@example.org")["customer_id"])
    assert (maria.body, eve.body) == ("Candles?", "You won"), "nothing lost, nothing mixed up"
    ids = [r["external_id"] for r in store.db.query("SELECT external_id FROM message ORDER BY id")]
    assert ids[0] == "<same@example.com>" and ids[1].startswith("<same@example.com>#") and len(ids) == 2
    # Read again from scratch (as after a UIDVALIDITY change): still two messages.
    store.db.conn.execute("DELETE FROM cursor")
    assert sync(ws, store) == {} and store.count_messages() == 2


def test_the_lean_fetch_reads_what_imapclient_reads_from_dovecot(dovecot):
    from console.channels.email.imapfetch import fetch_bodies

    dovecot.deliver(HTML_ONLY)
    dovecot.deliver(ALTERNATIVE_WITH_PDF, seen=True)
    dovecot.deliver(mail("maria@example.com", "Bytes", "caf\xe9 \x1b[2J ) {5}\r\n* 1 FETCH (", msgid="<b1@example.com>"))
    client = second_client(dovecot)
    try:
        client.select_folder("INBOX")
        client.add_flags([2], ["$Label"])
        uids = client.search(["ALL"])
        client.normalise_times = False
        expected = client.fetch(uids + [999], ["BODY.PEEK[]", "INTERNALDATE", "FLAGS"])
        found = fetch_bodies(client, uids + [999])
        assert sorted(found) == sorted(expected) == uids
        for uid in uids:
            assert found[uid].body == expected[uid][b"BODY[]"]
            assert set(found[uid].flags) == set(expected[uid][b"FLAGS"])
            assert found[uid].internal == expected[uid][b"INTERNALDATE"].timestamp()
        assert b"$Label" in found[2].flags
        assert client.noop()[0].startswith(b"NOOP"), "the connection is still in step for imapclient"
    finally:
        client.logout()


def test_a_first_sync_goes_in_batches_with_progress(tmp_path, dovecot, smtp, trust, store):
    for n in range(7):
        dovecot.deliver(mail(f"c{n}@example.com", f"question {n}", msgid=f"<q{n}@example.com>"))
    ws = config(tmp_path, dovecot, smtp, trust, batch_size=3)
    channel = channel_for(ws)
    seen = []
    store_apply = store.apply_pull

    def spy(account, result):
        seen.append((len(result.messages), result.more, result.progress))
        return store_apply(account, result)

    store.apply_pull = spy
    assert sync(ws, store, channel) == {}
    assert seen == [(3, True, (3, 7)), (3, True, (6, 7)), (1, False, (7, 7))]
    assert store.count_messages() == 7


async def test_new_mail_while_running_arrives_at_once_through_idle(tmp_path, dovecot, smtp, trust, store):
    dovecot.deliver(mail("maria@example.com", "first", msgid="<i1@example.com>"))
    ws = config(tmp_path, dovecot, smtp, trust, poll_interval=300)
    engine = Engine(ws, store)
    task = asyncio.create_task(engine.run())
    try:
        await _until(lambda: store.count_messages() == 1)
        await asyncio.sleep(0.5)  # the engine is now waiting in IDLE, with a 300 s poll as the fallback
        started = time.monotonic()
        dovecot.deliver(mail("kofi@example.net", "while you wait", msgid="<i2@example.net>"))
        await _until(lambda: store.count_messages() == 2)
        assert time.monotonic() - started < 5
    finally:
        engine.stop()  # ends the IDLE wait, or keeps the next pull from starting one
        await asyncio.wait_for(task, 10)
    assert identity(store, "kofi@example.net") is not None


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


def test_replies_sent_from_another_mail_client_are_outbound_for_the_customer(tmp_path, dovecot, smtp, trust, store):
    dovecot.deliver(mail("Maria Lopez <maria@example.com>", "Order #118", "Cake ready?", msgid="<m1@example.com>"))
    dovecot.deliver(mail("Acme Bakery <shop@acme.test>", "Re: Order #118", "Yes, after 4.",
                         to="Maria Lopez <maria@example.com>", msgid="<r1@acme.test>", reply_to="<m1@example.com>",
                         refs="<m1@example.com>", date="Mon, 02 Mar 2026 09:40:00 +0000"), folder="Sent", seen=True)
    # Mail to a new person, sent from the phone: a new customer, waiting on them.
    dovecot.deliver(mail("shop@acme.test", "Your quote", "Here it is", to="new@example.com", msgid="<r2@acme.test>"),
                    folder="Sent", seen=True)
    ws = config(tmp_path, dovecot, smtp, trust)
    assert sync(ws, store) == {}
    assert identity(store, "shop@acme.test") is None, "the business itself is not a customer"
    maria = identity(store, "maria@example.com")
    inbound, reply = store.timeline(maria["customer_id"])
    assert (inbound.direction, reply.direction, reply.body, reply.status) == ("in", "out", "Yes, after 4.", "sent")
    conv = store.db.query_one("SELECT * FROM conversation WHERE customer_id = ?", (maria["customer_id"],))
    assert conv["status"] == "waiting" and conv["message_count"] == 2
    new = store.db.query_one("SELECT * FROM conversation WHERE customer_id = ?",
                             (identity(store, "new@example.com")["customer_id"],))
    assert new["status"] == "waiting"
    assert store.db.query_one("SELECT COUNT(*) AS n FROM customer")["n"] == 2


# ---- replies ---------------------------------------------------------------------------------------

def test_a_reply_is_threaded_filed_in_sent_and_sent_once(tmp_path, dovecot, smtp, trust, store):
    dovecot.deliver(mail("Maria Lopez <maria@example.com>", "Order #118", "Cake ready?", msgid="<m1@example.com>"))
    dovecot.deliver(mail("maria@example.com", "Re: Order #118", "Hello?", msgid="<m2@example.com>",
                         reply_to="<m1@example.com>", refs="<m1@example.com>", date="Mon, 02 Mar 2026 10:00:00 +0000"))
    ws = config(tmp_path, dovecot, smtp, trust)
    sync(ws, store)
    maria = identity(store, "maria@example.com")
    message_id = store.enqueue_reply(maria["id"], "mail", "email", "Yes — pick up after 4.", author="ana")
    assert sync(ws, store) == {}

    [sent] = smtp.messages
    assert sent["to"] == ["maria@example.com"] and sent["from"] == "shop@acme.test"
    out = email.message_from_bytes(sent["data"], policy=default_policy)
    row = store.db.query_one("SELECT * FROM message WHERE id = ?", (message_id,))
    assert row["status"] == "sent" and row["external_id"] == out["Message-ID"]
    key = store.db.query_one("SELECT idempotency_key FROM outbox WHERE message_id = ?", (message_id,))[0]
    assert out["Message-ID"] == f"<console-{key}@acme.test>", "fixed before the first attempt, the same on every retry"
    assert str(out["To"]) == "Maria Lopez <maria@example.com>"
    assert str(out["From"]) == "Acme Bakery <shop@acme.test>"
    assert out["Subject"] == "Re: Order #118"
    assert out["In-Reply-To"] == "<m2@example.com>"
    assert out["References"].split() == ["<m1@example.com>", "<m2@example.com>"]
    assert out.get_content().strip() == "Yes — pick up after 4."

    # Another mail client sees the reply in Sent, settled, and threaded under the customer's mail.
    client = second_client(dovecot)
    try:
        client.select_folder("Sent")
        [uid] = client.search(["HEADER", "Message-ID", out["Message-ID"]])
        fetched = client.fetch([uid], ["FLAGS", "BODY.PEEK[]"])[uid]
        assert b"\\Seen" in fetched[b"FLAGS"] and b"$ConsoleSending" not in fetched[b"FLAGS"]
        assert fetched[b"BODY[]"].replace(b"\r\n", b"\n") == sent["data"].replace(b"\r\n", b"\n")
        client.select_folder("INBOX")
        client.copy(client.search(["ALL"]), "Sent")
        client.select_folder("Sent")
        originals = client.search(["HEADER", "Message-ID", "<m1@example.com>"])
        [thread] = client.thread(algorithm="REFERENCES")
        assert _flatten(thread)[0] == originals[0] and uid in _flatten(thread)
    finally:
        client.logout()

    conv = store.db.query_one("SELECT * FROM conversation WHERE customer_id = ?", (maria["customer_id"],))
    assert conv["status"] == "waiting" and conv["message_count"] == 3


def _flatten(thread) -> list[int]:
    return [n for item in thread for n in (_flatten(item) if isinstance(item, tuple) else [item])]


def test_a_new_message_starts_a_thread_that_the_customers_answer_joins(tmp_path, dovecot, smtp, trust, store):
    # Maria is known from another mailbox only: this account has no thread with her yet.
    store.apply_pull("other", PullResult([InboundMessage("<o1@example.com>", "<o1@example.com>", "email", "in",
                                                         Address("email", "maria@example.com", "Maria"),
                                                         time.time() - 60, "hi")]))
    ws = config(tmp_path, dovecot, smtp, trust)
    maria = identity(store, "maria@example.com")
    store.enqueue_reply(maria["id"], "mail", "email", "Your order is ready", subject="Order #200")
    sync(ws, store)
    [sent] = smtp.messages
    ours = email.message_from_bytes(sent["data"], policy=default_policy)
    dovecot.deliver(mail("maria@example.com", "Re: Order #200", "Great, thanks", msgid="<m9@example.com>",
                         reply_to=ours["Message-ID"], refs=ours["Message-ID"]))
    sync(ws, store)
    answer = store.db.query_one("SELECT conversation_id FROM message WHERE external_id = '<m9@example.com>'")
    mine = store.db.query_one("SELECT conversation_id FROM message WHERE external_id = ?", (ours["Message-ID"],))
    assert answer["conversation_id"] == mine["conversation_id"]


def test_header_injection_in_a_subject_or_name_never_reaches_the_mail(tmp_path, dovecot, smtp, trust, store):
    dovecot.deliver(mail("=?utf-8?q?Eve=0D=0ABcc=3A_victim=40evil=2Eexample?= <eve@example.com>",
                         "=?utf-8?q?Hi=0D=0ABcc=3A_victim=40evil=2Eexample?=", msgid="<e1@example.com>"))
    ws = config(tmp_path, dovecot, smtp, trust)
    sync(ws, store)
    eve = identity(store, "eve@example.com")
    store.enqueue_reply(eve["id"], "mail", "email", "Hello", subject="Hi\r\nBcc: victim@evil.example")
    assert sync(ws, store) == {}
    [sent] = smtp.messages
    assert sent["to"] == ["eve@example.com"]
    out = email.message_from_bytes(sent["data"], policy=default_policy)
    headers = sent["data"].split(b"\r\n\r\n")[0]
    assert out["Bcc"] is None and not re.search(rb"^bcc:", headers, re.IGNORECASE | re.MULTILINE)
    assert "\n" not in out["Subject"] and "\n" not in str(out["To"])


# ---- never twice, never lost -----------------------------------------------------------------------

class Killed(BaseException):
    """The process died here (a BaseException, so nothing in the adapter or engine handles it)."""


def killer(at: str, occurrence: int = 1):
    seen = {"n": 0}

    def checkpoint(step: str) -> None:
        if step == at:
            seen["n"] += 1
            if seen["n"] == occurrence:
                raise Killed(step)

    return checkpoint


PULL_STEPS = ["connected", "selected", "searched", "fetched", "parsed"]


def test_killing_the_pull_at_any_step_loses_and_duplicates_nothing(tmp_path, dovecot, smtp, trust, store):
    for n in range(5):
        dovecot.deliver(mail(f"c{n % 2}@example.com", f"q{n}", msgid=f"<k{n}@example.com>",
                             reply_to="<k0@example.com>" if n else None))
    dovecot.deliver(mail("shop@acme.test", "Re: q0", to="c0@example.com", msgid="<s1@acme.test>",
                         reply_to="<k0@example.com>"), folder="Sent", seen=True)
    ws = config(tmp_path, dovecot, smtp, trust, batch_size=2)
    assert sync(ws, store) == {}
    expected, cursor = snapshot(store), store.cursor("mail")

    for step in PULL_STEPS:
        for occurrence in (1, 2, 3):
            fresh = type(store)(tmp_path / f"kill-{step}-{occurrence}.db")
            try:
                channel = channel_for(ws)
                channel.checkpoint = killer(step, occurrence)
                try:
                    sync(ws, fresh, channel)
                except Killed:
                    pass
                assert sync(ws, fresh) == {}
                assert snapshot(fresh) == expected, (step, occurrence)
                assert fresh.cursor("mail") == cursor
                assert sync(ws, fresh) == {} and snapshot(fresh) == expected
            finally:
                fresh.close()


def test_a_pull_that_is_never_stored_is_repeated_and_a_late_apply_adds_nothing(tmp_path, dovecot, smtp, trust, store):
    dovecot.deliver(mail("maria@example.com", "one", msgid="<p1@example.com>"))
    ws = config(tmp_path, dovecot, smtp, trust)
    sync(ws, store)
    dovecot.deliver(mail("maria@example.com", "two", msgid="<p2@example.com>"))

    async def pull_then_die():
        channel = channel_for(ws)
        try:
            return await channel.pull(store.cursor("mail"))
        finally:
            await channel.close()

    lost = asyncio.run(pull_then_die())
    assert [m.subject for m in lost.messages] == ["two"]
    sync(ws, store)
    store.apply_pull("mail", lost)
    assert [m["subject"] for m in messages(store)] == ["one", "two"]


# (step where the process dies, mails the SMTP server got in the end, final status). Until SMTP
# DATA starts the send is repeated safely; from then on nobody can know, so it is never repeated.
SEND_STEPS = [("before_append", 1, "sent"), ("appended", 1, "sent"), ("rcpt_accepted", 1, "sent"),
              ("before_data", 0, "unknown"), ("smtp_accepted", 1, "unknown")]


@pytest.mark.parametrize("step, delivered, status", SEND_STEPS)
def test_killing_a_send_at_any_step_never_sends_twice(tmp_path, dovecot, smtp, trust, store, step, delivered, status):
    dovecot.deliver(mail("maria@example.com", "Order", msgid="<m1@example.com>"))
    ws = config(tmp_path, dovecot, smtp, trust)
    sync(ws, store)
    message_id = store.enqueue_reply(identity(store, "maria@example.com")["id"], "mail", "email", "Ready!")
    channel = channel_for(ws)
    channel.checkpoint = killer(step)
    with pytest.raises(Killed):
        sync(ws, store, channel)
    assert len(smtp.messages) == (1 if step == "smtp_accepted" else 0)

    assert sync(ws, store) == {}
    row = store.db.query_one("SELECT * FROM message WHERE id = ?", (message_id,))
    assert len(smtp.messages) == delivered
    assert row["status"] == status
    if status == "unknown":
        assert "check whether it arrived" in row["status_detail"]
    client = second_client(dovecot)
    try:
        client.select_folder("Sent")
        assert len(client.search(["ALL"])) == 1, "exactly one copy in Sent"
    finally:
        client.logout()
    before = (len(smtp.messages), snapshot(store))
    assert sync(ws, store) == {}
    assert (len(smtp.messages), snapshot(store)) == before, "a following run is a no-op"
    assert store.db.query_one("SELECT COUNT(*) AS n FROM message")["n"] == 2


def test_an_smtp_crash_after_accepting_is_not_retried_into_a_second_copy(tmp_path, dovecot, smtp, trust, store, caplog):
    dovecot.deliver(mail("maria@example.com", "Order", msgid="<m1@example.com>"))
    ws = config(tmp_path, dovecot, smtp, trust)
    sync(ws, store)
    message_id = store.enqueue_reply(identity(store, "maria@example.com")["id"], "mail", "email", "Ready!")
    smtp.crash_after_accept = True
    sync(ws, store)
    smtp.crash_after_accept = False
    assert len(smtp.messages) == 1
    row = store.db.query_one("SELECT * FROM message WHERE id = ?", (message_id,))
    assert row["status"] == "unknown" and "may have been sent" in row["status_detail"]
    for _ in range(2):
        sync(ws, store)
        store.retry_failed(message_id)  # even a user's retry of a failed send finds nothing to resend
    assert len(smtp.messages) == 1
    assert "Traceback" not in caplog.text


# ---- servers that change under us ------------------------------------------------------------------

def test_a_changed_uidvalidity_loses_nothing_and_duplicates_nothing(tmp_path, dovecot, smtp, trust, store):
    for n in range(3):
        dovecot.deliver(mail("maria@example.com", f"before {n}", msgid=f"<u{n}@example.com>"))
    ws = config(tmp_path, dovecot, smtp, trust)
    sync(ws, store)
    before = snapshot(store)
    dovecot.stop()
    dovecot.set_uidvalidity("INBOX", 77)
    dovecot.start()
    dovecot.deliver(mail("maria@example.com", "after", msgid="<u9@example.com>"))
    assert sync(ws, store) == {}
    assert "UIDVALIDITY changed" in state(store).detail
    assert sorted(snapshot(store)) == sorted(before + [r for r in snapshot(store) if r[0] == "<u9@example.com>"])
    assert store.count_messages() == 4
    assert '"uidvalidity": 77' in store.cursor("mail")
    assert sync(ws, store) == {} and store.count_messages() == 4


def test_a_server_restart_mid_sync_recovers_and_finishes(tmp_path, dovecot, smtp, trust, store):
    for n in range(6):
        dovecot.deliver(mail(f"c{n}@example.com", f"q{n}", msgid=f"<r{n}@example.com>"))
    ws = config(tmp_path, dovecot, smtp, trust, batch_size=2)
    channel = channel_for(ws)
    restarted = []

    def restart_once(step: str) -> None:
        if step == "fetched" and not restarted:
            restarted.append(step)
            dovecot.restart()

    channel.checkpoint = restart_once

    async def run():
        engine = Engine(ws, store, {"mail": channel})
        task = asyncio.create_task(engine.run())
        try:
            await _until(lambda: store.count_messages() == 6, timeout=15)
            await _until(lambda: state(store).state == "ok")
        finally:
            engine.stop()
            await asyncio.wait_for(task, 10)

    asyncio.run(run())
    assert restarted and store.count_messages() == 6


# ---- errors ----------------------------------------------------------------------------------------

def test_a_wrong_password_is_an_auth_error_that_never_shows_the_password(tmp_path, dovecot, smtp, trust, store,
                                                                          monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-Pa55-7391"
    monkeypatch.setenv("CONSOLE_TEST_MAIL_PASSWORD", wrong)
    ws = config(tmp_path, dovecot, smtp, trust)
    # One failed login only: Dovecot slows down repeated failures from one address by seconds.
    failed = sync(ws, store)
    message = failed["mail"]
    assert state(store).state == "auth", "an AuthError stops the account"
    assert "refused the username or password" in message and "password_env" in message
    for text in (message, failed["mail"], state(store).detail, caplog.text):
        assert wrong not in text and dovecot.password not in text


def test_a_self_signed_certificate_is_refused_unless_ca_file_trusts_it(tmp_path, dovecot, smtp, trust, store):
    dovecot.deliver(mail("maria@example.com", "hi", msgid="<t1@example.com>"))
    untrusted = config(tmp_path, dovecot, smtp)
    failed = sync(untrusted, store)
    assert "not trusted" in failed["mail"] and "ca_file" in failed["mail"]
    assert state(store).state == "auth" and store.count_messages() == 0
    assert sync(config(tmp_path, dovecot, smtp, trust), store) == {}
    assert store.count_messages() == 1


def reply_that_smtp_refuses(ws, dovecot, store):
    """Maria writes, we reply, the engine tries to send; returns the reply's outbox row."""
    dovecot.deliver(mail("maria@example.com", "hi", msgid="<refused@example.com>"))
    sync(ws, store)
    message_id = store.enqueue_reply(identity(store, "maria@example.com")["id"], "mail", "email", "hello")
    sync(ws, store)
    return store.db.query_one("SELECT * FROM outbox WHERE message_id = ?", (message_id,))


def sent_folder_uids(dovecot) -> list[int]:
    client = second_client(dovecot)
    try:
        client.select_folder("Sent")
        return client.search(["ALL"])
    finally:
        client.logout()


def test_a_refused_smtp_certificate_leaves_no_copy_in_sent_and_is_retried(tmp_path, dovecot, smtp, store):
    only_imap = tmp_path / "imap-only.pem"
    only_imap.write_text(Path(dovecot.cert).read_text())
    outbox = reply_that_smtp_refuses(config(tmp_path, dovecot, smtp, only_imap), dovecot, store)
    assert smtp.messages == []
    assert outbox["state"] == "pending" and "not trusted" in outbox["last_error"]
    assert sent_folder_uids(dovecot) == []


def test_a_refused_smtp_login_stops_sending_and_leaves_no_copy_in_sent(tmp_path, dovecot, trust, store, caplog):
    strict = SmtpServer(tmp_path / "smtp-strict", password="another-Pa55").start()
    try:
        bundle = tmp_path / "bundle.pem"
        bundle.write_text(Path(dovecot.cert).read_text() + Path(strict.cert).read_text())
        outbox = reply_that_smtp_refuses(config(tmp_path, dovecot, strict, bundle), dovecot, store)
        assert strict.messages == []
        assert outbox["state"] == "pending" and "refused the username or password" in outbox["last_error"]
        assert state(store).state == "auth" and dovecot.password not in caplog.text
        assert sent_folder_uids(dovecot) == []
    finally:
        strict.stop()


def test_starttls_on_both_servers_works(tmp_path, dovecot, store):
    starttls_smtp = SmtpServer(tmp_path / "smtp-starttls", mode="starttls").start()
    try:
        bundle = tmp_path / "bundle.pem"
        bundle.write_text(Path(dovecot.cert).read_text() + Path(starttls_smtp.cert).read_text())
        dovecot.deliver(mail("maria@example.com", "hi", msgid="<s1@example.com>"))
        ws = config(tmp_path, dovecot, starttls_smtp, bundle, imap_security="starttls",
                    imap_port=dovecot.starttls_port, smtp_security="starttls")
        assert sync(ws, store) == {}
        store.enqueue_reply(identity(store, "maria@example.com")["id"], "mail", "email", "hello")
        assert sync(ws, store) == {}
        assert [m["to"] for m in starttls_smtp.messages] == [["maria@example.com"]]

        async def check():
            channel = channel_for(ws)
            try:
                return await channel.check()
            finally:
                await channel.close()

        assert "IMAP ok" in asyncio.run(check())
    finally:
        starttls_smtp.stop()


# ---- hostile mail ----------------------------------------------------------------------------------

def hostile_messages() -> dict[str, bytes]:
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(2000))
    nested = "".join(f"Content-Type: multipart/mixed; boundary=\"n{n}\"\r\n\r\n--n{n}\r\n" for n in range(1200))
    return {
        "malformed": b"From: broken@example.com\r\nContent-Type: multipart/mixed\r\nSubject: no boundary\r\n\r\n"
                     b"--x\r\nContent-Type: text/plain\r\n\r\nbody\r\n--",
        "charset": b"From: c@example.com\r\nSubject: =?x-no-such-charset?q?caf=E9?=\r\nMessage-ID: <cs@x>\r\n"
                   b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\ncaf\xe9 \xff\xfe\r\n",
        "date": b"From: d@example.com\r\nDate: the day after tomorrow, 99:99\r\nMessage-ID: <dt@x>\r\n\r\nwhen?\r\n",
        "crlf": b"From: =?utf-8?q?Eve=0D=0ABcc=3A_x=40y?= <e@example.com>\r\nMessage-ID: <crlf@x>\r\n"
                b"Subject: =?utf-8?b?SGkNCkJjYzogeEB5?=\r\n\r\nhi\r\n",
        "escapes": b"From: =?utf-8?q?=1B]0;owned=07Eve?= <esc@example.com>\r\nMessage-ID: <esc@x>\r\n"
                   b"Subject: =?utf-8?q?=1B[2J=1Bc_clear?=\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   b"Content-Transfer-Encoding: quoted-printable\r\n\r\nbefore=1B[31mred=1B]52;c;ZXZpbA=3D=3D=07after\r\n",
        "utf7": b"From: u7@example.com\r\nMessage-ID: <u7@x>\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n+ABs-[2J\r\n",
        "parts": ("From: p@example.com\r\nMessage-ID: <parts@x>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                  + parts + "--b--\r\n").encode(),
        "nested": ("From: n@example.com\r\nMessage-ID: <nested@x>\r\n" + nested + "deep\r\n").encode(),
        "binary": b"\x00\xff\xfe garbage without headers \x1b[2J\r\n\r\n\x00\x00",
        "no-sender": b"Subject: who?\r\nMessage-ID: <nosender@x>\r\n\r\nanonymous\r\n",
    }


def test_hostile_mail_never_crashes_the_sync_and_keeps_the_raw_bytes(tmp_path, dovecot, smtp, trust, store):
    hostile = hostile_messages()
    for raw in hostile.values():
        dovecot.deliver(raw)
    dovecot.deliver(mail("maria@example.com", "after the storm", msgid="<ok@example.com>"))
    ws = config(tmp_path, dovecot, smtp, trust)
    started = time.monotonic()
    assert sync(ws, store) == {}
    assert time.monotonic() - started < 20
    rows = messages(store)
    assert len(rows) == len(hostile) + 1
    stored = {store.message_raw(r["id"]).replace(b"\r\n", b"\n") for r in rows}
    for name, raw in hostile.items():
        # Dovecot hands out a NUL byte as 0x80 (IMAP forbids NUL outside BINARY): that is the raw mail we get.
        assert raw.replace(b"\r\n", b"\n").replace(b"\x00", b"\x80") in stored, name
    by_id = {r["external_id"]: r for r in rows}
    assert "\n" not in by_id["<crlf@x>"]["subject"] and "\r" not in by_id["<crlf@x>"]["subject"]
    assert identity(store, "e@example.com")["display_name"].count("\n") == 0
    assert "\x1b[31m" in by_id["<esc@x>"]["body"], "escapes are data here; the UI sanitises them on display"
    assert "caf" in by_id["<cs@x>"]["body"] and "\ufffd" in by_id["<cs@x>"]["body"]
    assert abs(by_id["<dt@x>"]["sent_at"] - time.time()) < 600, "a garbage date falls back to the arrival time"
    assert "more than" in by_id["<parts@x>"]["body"]
    assert identity(store, "maria@example.com") is not None


MAIL_PARSER_CORPUS = Path(__file__).resolve().parent.parent / ".venv" / "corpora" / "mail-parser"


def mail_parser_corpus() -> list[Path]:
    """The mail-parser sdist's malformed and real-world mails, fetched by scripts/setup-env --test."""
    found = sorted(MAIL_PARSER_CORPUS.glob("mail_*")) if MAIL_PARSER_CORPUS.is_dir() else []
    if not found:
        import os

        message = f"the mail-parser corpus is missing from {MAIL_PARSER_CORPUS}; run scripts/setup-env --test"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_the_mail_parser_corpus_goes_through_the_sync_intact(tmp_path, dovecot, smtp, trust, store):
    corpus = mail_parser_corpus()
    assert any("malformed" in p.name for p in corpus)
    for path in corpus:
        dovecot.deliver(path.read_bytes())
    ws = config(tmp_path, dovecot, smtp, trust)
    assert sync(ws, store) == {}
    from console.channels.email.mailparse import parse

    ids = {parse(p.read_bytes()).message_id for p in corpus}
    assert store.count_messages() == len(ids)  # one per distinct Message-ID, nothing lost
    assert all(store.message_raw(r["id"]) for r in messages(store))
    assert sync(ws, store) == {} and store.count_messages() == len(ids)  # and a second run adds nothing


def test_cpython_email_test_messages_go_through_the_sync(tmp_path, dovecot, smtp, trust, store):
    corpus = sorted(Path("/usr/lib/python3.11/test/test_email/data").glob("msg_*.txt"))
    if not corpus:
        from conftest import need_binary

        need_binary("python3.11 email test data", "sudo apt-get install libpython3.11-testsuite",
                    search=("/usr/lib/python3.11/test/test_email/data/msg_01.txt",))
    for path in corpus:
        dovecot.deliver(path.read_bytes())
    ws = config(tmp_path, dovecot, smtp, trust)
    assert sync(ws, store) == {}
    from console.channels.email.mailparse import parse

    stored = {store.message_raw(r["id"]).replace(b"\r\n", b"\n") for r in messages(store)}
    first_of_id = {}
    for path in corpus:
        first_of_id.setdefault(parse(path.read_bytes()).message_id, path)
    # Messages sharing a Message-ID are one message: the first one delivered is kept.
    assert store.count_messages() == len(first_of_id)
    for path in first_of_id.values():
        assert path.read_bytes().replace(b"\r\n", b"\n") in stored, path.name
