"""Reading mail without ever raising: console.channels.email.mailparse, console.htmltext and console.attachments,
fed ordinary, odd and hostile messages (and CPython's own email test corpus)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import workspace_from
from console.attachments import safe_filename, save
from console.channels import open_channel
from console.htmltext import html_to_text
from console.channels.email.headers import decode_header, synthetic_message_id
from console.channels.email.mailparse import MAX_PARTS, parse, part_bytes
from console.model import PullResult

CPYTHON_CORPUS = sorted(Path("/usr/lib/python3.11/test/test_email/data").glob("msg_*.txt"))


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8", "surrogateescape")


# ---- headers -------------------------------------------------------------------------------------

def test_encoded_words_in_any_charset_are_decoded_and_adjacent_words_joined():
    assert decode_header("=?iso-8859-1?q?caf=E9?= =?utf-8?b?4oKs?= plain") == "café€ plain"
    assert decode_header("=?UTF-8?Q?Order_=2318?=") == "Order #18"
    assert decode_header("=?utf-8*en?q?hi?=") == "hi"


def test_an_unknown_charset_decodes_with_replacement_characters_instead_of_failing():
    mail = parse(b"From: a@example.com\r\nSubject: =?x-klingon?q?caf=E9?=\r\n"
                 b"Content-Type: text/plain; charset=x-klingon\r\n\r\ncaf\xe9\r\n")
    assert mail.subject == "caf\ufffd" and mail.body == "caf\ufffd" and mail.problems == []


def test_raw_8bit_headers_are_read_as_utf8():
    mail = parse("From: José <jose@example.com>\r\nSubject: Café ready?\r\n\r\nhi".encode())
    assert (mail.subject, mail.from_name, mail.from_addr) == ("Café ready?", "José", "jose@example.com")


def test_cr_lf_and_nul_never_survive_in_a_header():
    mail = parse(b"From: =?utf-8?q?Eve=0D=0ABcc=3A_x=40y?= <e@example.com>\r\n"
                 b"Subject: =?utf-8?b?SGkNCkJjYzogeEB5AA==?=\r\n\r\nhi\r\n")
    assert mail.subject == "Hi Bcc: x@y" and "\n" not in mail.from_name and "\r" not in mail.from_name


def test_escape_sequences_are_kept_as_data_for_the_ui_to_sanitise():
    mail = parse(b"Subject: =?utf-8?q?=1B]0;owned=07?=\r\nContent-Type: text/plain\r\n"
                 b"Content-Transfer-Encoding: quoted-printable\r\n\r\nred=1B[31m\r\n")
    assert mail.subject == "\x1b]0;owned\x07" and mail.body == "red\x1b[31m"
    assert parse(b"Content-Type: text/plain; charset=utf-7\r\n\r\n+ABs-[2J\r\n").body == "\x1b[2J"


def test_addresses_are_lowercased_and_display_names_decoded():
    mail = parse(crlf('From: "=?utf-8?q?Mar=C3=ADa?=" <Maria@Example.COM>\nTo: a@b.example, "Q, R" <q@r.example>\n'
                      "Cc: broken-no-at\nReply-To: orders@example.com\n\nx"))
    assert (mail.from_name, mail.from_addr) == ("María", "maria@example.com")
    assert mail.to == [("", "a@b.example"), ("Q, R", "q@r.example")] and mail.cc == []
    assert mail.reply_to == [("", "orders@example.com")]


def test_dates_are_utc_and_garbage_or_future_dates_are_none():
    def date(value: str):
        return parse(crlf(f"Date: {value}\n\nx")).date

    assert date("Mon, 02 Mar 2026 10:12:00 +0100") == 1772442720.0  # 09:12 UTC
    assert date("the day after tomorrow, 99:99") is None
    assert date(time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(time.time() + 30 * 86400))) is None
    assert parse(b"Subject: no date\r\n\r\nx").date is None


# ---- identity and threading ----------------------------------------------------------------------

def test_message_ids_are_normalised_and_missing_ones_are_stable_hashes():
    assert parse(b"Message-ID: <abc@x.example> (comment)\r\n\r\n").message_id == "<abc@x.example>"
    assert parse(b"Message-ID: bare@x.example\r\n\r\n").message_id == "<bare@x.example>"
    raw = b"Subject: no id\r\n\r\nbody"
    assert parse(raw).message_id == parse(raw).message_id == synthetic_message_id(raw)
    assert parse(raw + b"!").message_id != parse(raw).message_id


def test_the_thread_root_is_the_first_reference_else_in_reply_to_else_itself():
    reply = parse(crlf("Message-ID: <c@x>\nReferences: <a@x>\n  <b@x>\nIn-Reply-To: <b@x> (Maria)\n\nx"))
    assert (reply.thread_root, reply.related) == ("<a@x>", ("<a@x>", "<b@x>"))
    assert parse(crlf("Message-ID: <c@x>\nIn-Reply-To: <b@x>\n\nx")).thread_root == "<b@x>"
    assert parse(crlf("Message-ID: <c@x>\n\nx")).thread_root == "<c@x>"


# ---- bodies and attachments ----------------------------------------------------------------------

MIXED = crlf("""From: ann@example.org
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

Plain wins.
--alt
Content-Type: text/html; charset=utf-8

<p>HTML loses</p>
--alt--
--outer
Content-Type: application/pdf
Content-Disposition: attachment; filename*=utf-8''%E2%80%AEfdp.exe
Content-Transfer-Encoding: base64

TVogbm90IGEgcGRm
--outer
Content-Type: image/png; name="logo.png"
Content-Disposition: inline
Content-Transfer-Encoding: base64

iVBORw0K
--outer
Content-Type: message/rfc822

From: c@example.com
Subject: forwarded

inner body
--outer--
""")


def test_text_plain_is_preferred_and_every_attachment_is_listed_with_name_type_size():
    mail = parse(MIXED)
    assert mail.body == "Plain wins." and "HTML loses" in mail.html and mail.problems == []
    assert [(a.name, a.content_type, a.size) for a in mail.attachments] == [
        ("\u202efdp.exe", "application/pdf", 12),
        ("logo.png", "image/png", 6),
        ("forwarded message.eml", "message/rfc822", mail.attachments[2].size),
    ]
    assert part_bytes(MIXED, mail.attachments[0].ref) == b"MZ not a pdf"
    assert part_bytes(MIXED, mail.attachments[1].ref) == b"\x89PNG\r\n"
    assert b"inner body" in part_bytes(MIXED, mail.attachments[2].ref)
    assert part_bytes(MIXED, "9.9") is None


def test_the_sync_leaves_an_html_alternative_undecoded_but_still_reads_an_html_only_mail():
    mail = parse(MIXED, keep_html=False)  # what the sync's parse workers do: the raw mail keeps the HTML
    full = parse(MIXED)
    assert mail.html is None and (mail.body, mail.attachments) == (full.body, full.attachments)
    only = crlf("Content-Type: text/html; charset=utf-8\n\n<p>Hi &amp; welcome</p>")
    assert parse(only, keep_html=False).body == "Hi & welcome"


def test_an_html_only_mail_becomes_text_with_visible_link_targets_and_nothing_fetched():
    mail = parse(crlf("Content-Type: text/html; charset=utf-8\n\n<html><head><title>t</title><style>p{}</style>"
                      "</head><body><p>Hi &amp; welcome</p><script>alert(1)</script>"
                      "<p><a href='https://shop.example/a?b=1'>our list</a> <img src='https://t.example/p.gif'>"
                      "<a href='javascript:alert(1)'>click</a></p></body></html>"))
    assert mail.body == "Hi & welcome\n\nour list (https://shop.example/a?b=1) click"


def test_html_structure_turns_into_lines_lists_and_preformatted_text():
    text = html_to_text("<h1>Order</h1><ul><li>one</li><li>two</li></ul><pre>  a\n   b</pre>"
                        "<p><a href='https://x.example/'>https://x.example/</a><br>"
                        "<a href='mailto:a@b.example'>a@b.example</a></p><table><tr><td>A</td><td>B</td></tr></table>")
    assert text == "Order\n\n- one\n- two\n\n  a\n   b\n\nhttps://x.example/\na@b.example\n\n A B"
    assert html_to_text("") == "" and html_to_text("<p") == "<p" and html_to_text("<<>>&#xffffff;") == "<<>>\ufffd"


def test_line_endings_are_normalised_in_bodies():
    assert parse(b"Content-Type: text/plain\r\n\r\none\r\ntwo\rthree\r\n").body == "one\ntwo\nthree"


# ---- hostile structure ---------------------------------------------------------------------------

def test_2000_parts_are_cut_at_the_limit_quickly_and_say_so():
    parts = "".join(f"--b\nContent-Type: application/octet-stream\n\npart {n}\n" for n in range(2000))
    raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n" + parts + "--b--\n")
    started = time.monotonic()
    mail = parse(raw)
    assert time.monotonic() - started < 2
    assert len(mail.attachments) < MAX_PARTS + 1 and any("more than" in p for p in mail.problems)


def test_nesting_a_thousand_deep_does_not_overflow_the_stack():
    nested = "".join(f'Content-Type: multipart/mixed; boundary="n{n}"\n\n--n{n}\n' for n in range(1200))
    mail = parse(crlf("From: n@example.com\nSubject: deep\n" + nested + "deep\n"))
    assert mail.subject == "deep" and any("nested" in p for p in mail.problems)


@pytest.mark.parametrize("raw", [
    b"",
    b"\x00\xff\xfe garbage without headers \x1b[2J\r\n\r\n\x00\x00",
    b"Content-Type: multipart/mixed\r\n\r\n--x\r\nno boundary parameter\r\n--",
    b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64",
    b"Content-Type: text/plain; charset=\"\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"From: <>\r\nTo: ,,,@,\r\nMessage-ID: <<<>>>\r\nReferences: <" + b"a" * 5000 + b">\r\n\r\nx",
    b"Subject: " + b"=?utf-8?q?" + b"=E2" * 20000 + b"?=\r\n\r\n",
])
def test_malformed_mail_never_raises(raw):
    mail = parse(raw)
    assert mail.message_id.startswith("<")


# ---- CPython's email test corpus through parse and the store --------------------------------------

def test_cpython_email_test_messages_parse_and_ingest_without_an_exception(tmp_path, store):
    if not CPYTHON_CORPUS:
        from conftest import need_binary

        need_binary("CPython's email test data", "sudo apt-get install libpython3.11-testsuite",
                    search=("/usr/lib/python3.11/test/test_email/data/msg_01.txt",))
    ws = workspace_from('[[accounts]]\nkind = "email"\nname = "mail"\nemail = "shop@acme.test"\n'
                        'imap_host = "imap.invalid"\nsmtp_host = "smtp.invalid"\nimap_user = "shop@acme.test"\n'
                        'password_env = "UNUSED"\n', tmp_path)
    channel = open_channel(ws.accounts[0], ws)
    inbound = []
    for path in CPYTHON_CORPUS:
        raw = path.read_bytes()
        mail = parse(raw)
        inbound.append(channel.to_inbound(mail, raw, False, 1_700_000_000.0))
    store.apply_pull("mail", PullResult(messages=inbound))
    assert store.count_messages() == len({m.external_id for m in inbound})
    raws = {m.raw for m in inbound}
    assert all(store.message_raw(r["id"]) in raws for r in store.db.query("SELECT id FROM message")), \
        "every stored mail keeps its raw bytes"


# ---- saving attachments --------------------------------------------------------------------------

@pytest.mark.parametrize("name, safe", [
    ("../../etc/passwd", "passwd"),
    ("/abs/path/file.txt", "file.txt"),
    ("C:\\Users\\x\\evil.bat", "evil.bat"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"),
    ("\x1b]0;title\x07report.pdf", "]0;titlereport.pdf"),
    ("...", "attachment"),
    ("", "attachment"),
    ("CON.txt", "_CON.txt"),
    ("a" * 300 + ".pdf", "a" * 116 + ".pdf"),
])
def test_attachment_names_cannot_escape_or_disguise_themselves(name, safe):
    assert safe_filename(name) == safe


def test_saving_never_overwrites_an_existing_file(tmp_path):
    first = save(b"one", "../order.pdf", tmp_path)
    second = save(b"two", "order.pdf", tmp_path)
    assert (first.name, second.name) == ("order.pdf", "order (2).pdf")
    assert first.read_bytes() == b"one" and second.read_bytes() == b"two"
    assert first.parent == tmp_path


# ---- the fast path reads every message exactly as the stdlib parser does ---------------------------

MAIL_PARSER_CORPUS = Path(__file__).resolve().parent.parent / ".venv" / "corpora" / "mail-parser"


def _sample_mails() -> list[bytes]:
    """Well-formed mail of the shapes a mailbox is made of, in LF and CRLF."""
    from email.message import EmailMessage

    shapes = []
    plain = EmailMessage()
    plain["From"], plain["To"], plain["Subject"] = "Maria Lopez <maria@example.com>", "shop@acme.test", "Cake"
    plain["Message-ID"] = "<p1@example.com>"
    plain.set_content("Is the cake ready?\n\n> quoted\n-- \nMaria\n")
    shapes.append(plain)
    alternative = EmailMessage()
    alternative["From"], alternative["Subject"] = "=?utf-8?q?Ren=C3=A9?= <rene@example.org>", "=?utf-8?b?Q2Fmw6k=?="
    alternative["To"] = '"Acme, Bakery" <shop@acme.test>, other@example.net'
    alternative.set_content("café crème ½ " * 40)
    alternative.add_alternative("<p>café <a href='https://x.example'>link</a></p>", subtype="html")
    shapes.append(alternative)
    mixed = EmailMessage()
    mixed["From"], mixed["Subject"] = "J. Demir <jonas@mail.example>", "Invoice"
    mixed.set_content("See attached.\n")
    mixed.add_alternative("<b>See attached.</b>", subtype="html")
    mixed.add_attachment(bytes(range(256)) * 300, maintype="application", subtype="pdf", filename="invoice #1.pdf")
    mixed.add_attachment("naïve text attachment\n", filename="notes.txt")
    mixed.add_attachment(b"\x89PNG" + b"\x00" * 5000, maintype="image", subtype="png", filename="Straße café.png")
    shapes.append(mixed)
    related = EmailMessage()
    related["From"] = "news@example.com"
    related.set_content("text\n")
    related.add_related(b"GIF89a" + b"\x01" * 100, maintype="image", subtype="gif", cid="<logo@x>")
    shapes.append(related)
    raws = []
    for msg in shapes:
        data = msg.as_bytes()
        raws += [data, data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), data.replace(b"\r\n", b"\n")]
    # By hand: a preamble and epilogue, a quoted boundary with spaces after a delimiter, a part
    # without headers, quoted-printable, an RFC 2231 file name and an attachment-looking inline part.
    raws.append(crlf(
        'From: shop@acme.test\nTo: Kofi <kofi@example.net>\nMessage-ID: <h1@acme.test>\n'
        'Content-Type: multipart/mixed; boundary="b 1"\n\nThis is a preamble.\n--b 1  \n\nno headers here\n'
        '--b 1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n'
        'caf=C3=A9 =\nsoft break\n--b 1\nContent-Type: application/octet-stream\n'
        "Content-Disposition: attachment; filename*=utf-8''na%C3%AFve.bin\nContent-Transfer-Encoding: base64\n\n"
        'AAECAwQ=\n--b 1\nContent-Type: image/jpeg; name="inline.jpg"\nContent-Disposition: inline\n\n'
        'jpegdata\n--b 1--\nepilogue\n'))
    return raws


def _mutations(raw: bytes, rnd) -> list[bytes]:
    """Damage of the kinds real mail has: lines lost or doubled, bare CRs, cuts, stray delimiters."""
    lines = raw.split(b"\n")
    out = []
    for _ in range(12):
        changed = list(lines)
        at = rnd.randrange(len(changed))
        kind = rnd.randrange(8)
        if kind == 0:
            del changed[at]
        elif kind == 1:
            changed.insert(at, changed[at])
        elif kind == 2:
            changed[at] = changed[at] + b"\r"
        elif kind == 3:
            changed.insert(at, b"--" + (changed[at][2:] if changed[at].startswith(b"--") else b"b 1"))
        elif kind == 4:
            changed.insert(at, b"not a header line")
        elif kind == 5:
            changed.insert(at, b" continued")
        elif kind == 6:
            changed[at] = changed[at].replace(b"boundary", b"boundery")
        else:
            changed = changed[:at]
        out.append(b"\n".join(changed))
    return out


def _corpus() -> list[bytes]:
    files = [*CPYTHON_CORPUS, *sorted(MAIL_PARSER_CORPUS.glob("*"))]
    return [path.read_bytes() for path in files if path.is_file()]


def test_the_fast_path_reads_every_mail_it_accepts_exactly_as_the_stdlib_parser():
    import random

    from console.channels.email import mailparse

    rnd = random.Random(20261123)
    samples = _sample_mails()
    messages = samples + _corpus() + [m for raw in samples for m in _mutations(raw, rnd)]
    accepted = 0
    for raw in messages:
        if not mailparse._within_limits(raw):
            continue  # the stdlib path cuts such mail first; the fast path reads all of it
        fast, slow = parse(raw), parse(raw, fast_path=False)
        assert fast == slow, raw[:300]
        for attachment in fast.attachments:
            assert part_bytes(raw, attachment.ref) == part_bytes(raw, attachment.ref, fast_path=False)
        accepted += mailparse._fast_tree(raw) is not None
    assert all(mailparse._fast_tree(raw) is not None for raw in samples), "ordinary mail must take the fast path"
    assert accepted > len(samples) + 50, accepted  # and so must much of the corpus and the damaged mail


@pytest.mark.parametrize("value", [
    "Maria Lopez <maria@example.com>", "maria@example.com", "  J. Demir\t<j.demir@mail.example>  ",
    "Jonas.Demir <j@x.example>", "=?utf-8?q?Ren=C3=A9?= <rene@example.org>", "Müller  Weber <mw@example.de>",
    '"Lopez, Maria" <maria@example.com>', "maria@example.com (Maria)", "a@b.example, c@d.example",
    "<maria@example.com>", "Name<a@b.example>", "a..b@x.example", "a@b..example", "Group: a@b.example;",
    "<@route:a@b.example>", "a@[192.0.2.1]", "x\x01y <a@b.example>", "@b.example", "a@", "",
    "Maria <maria@example.com> trailing", "Maria <<maria@example.com>>", "O'Neil Ann <ann@example.ie>",
])
def test_plain_addresses_are_read_as_getaddresses_reads_them(value):
    from email.utils import getaddresses

    from console.channels.email.headers import simple_address

    simple = simple_address(value)
    if simple is not None:
        assert [simple] == getaddresses([value])


def test_every_address_header_of_the_corpora_reads_as_getaddresses_reads_it():
    from email import message_from_bytes
    from email.utils import getaddresses

    from console.channels.email.headers import simple_address

    checked = 0
    for raw in _corpus() + _sample_mails():
        msg = message_from_bytes(raw)
        for name in ("From", "To", "Cc", "Reply-To", "Sender"):
            for value in msg.get_all(name) or []:
                value = str(value)
                simple = simple_address(value)
                if simple is not None:
                    assert [simple] == getaddresses([value]), value
                    checked += 1
    assert checked > 50


@pytest.mark.parametrize("subject, key", [
    ("Re: Order #118", "order #118"), ("RE: AW: Fwd:  Order   #118 ", "order #118"), ("Re[2]: Cake", "cake"),
    ("Re^3: Cake", "cake"), ("[Acme] Re: Cake", "cake"), ("SV: Tårta", "tårta"), ("Order #118", ""),
    ("Re:", ""), ("Reply needed", ""), ("Fw: invoice", "invoice"), ("Re: Re: ", ""),
])
def test_a_reply_subject_is_the_subject_it_answers_and_empty_for_anything_else(subject, key):
    from console.channels.email.subjects import reply_subject, subject_key

    assert reply_subject(subject) == key
    if key:
        assert subject_key(subject) == subject_key(key.title()) == key


@pytest.mark.parametrize("subject, reply", [
    ("Order #118", "Re: Order #118"), ("  Order #118 ", "Re: Order #118"), ("Re: Order #118", "Re: Order #118"),
    ("RE: cake", "RE: cake"), ("AW: Torte", "AW: Torte"), ("Re[2]: cake", "Re[2]: cake"),
    ("[shop] Re: cake", "[shop] Re: cake"), ("Fwd: invoice", "Re: Fwd: invoice"), ("", "Re:"),
    ("Reply needed", "Re: Reply needed"),
])
def test_a_reply_keeps_a_subject_that_is_already_a_reply_and_puts_re_in_front_of_any_other(subject, reply):
    from console.channels.email import reply_subject_for

    assert reply_subject_for(subject) == reply


def test_an_attachment_is_read_from_the_kept_bytes_without_the_network(tmp_path):
    import asyncio
    from email.message import EmailMessage

    from console.model import PermanentError

    ws = workspace_from('[[accounts]]\nkind = "email"\nname = "mail"\nemail = "shop@acme.test"\n'
                        'imap_host = "imap.invalid"\nsmtp_host = "smtp.invalid"\nimap_user = "shop@acme.test"\n'
                        'password_env = "UNUSED"\ntimeout = 1\n', tmp_path)
    mail = EmailMessage()
    mail["From"], mail["Subject"], mail["Message-ID"] = "ann@example.org", "invoice", "<inv@example.org>"
    mail.set_content("See attached.")
    mail.add_attachment(b"%PDF-1.7 the invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    raw = mail.as_bytes()
    [pdf] = parse(raw).attachments
    channel = open_channel(ws.accounts[0], ws)

    async def fetch(ref):
        return await channel.fetch_attachment("<inv@example.org>", ref, raw=raw)

    assert asyncio.run(fetch(pdf.ref)) == b"%PDF-1.7 the invoice"  # imap.invalid was never asked
    with pytest.raises(PermanentError, match="that attachment is not in the message"):
        asyncio.run(fetch("9.9"))
