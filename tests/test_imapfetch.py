"""The lean UID FETCH reader (console.channels.email.imapfetch), fed answers byte by byte as a server
would send them. It is exercised against a real Dovecot in tests/test_email.py; here are the
answers Dovecot does not give on demand: odd item orders, unsolicited responses, NO, BYE, a
connection lost inside a literal, a form the reader leaves to imapclient."""

from __future__ import annotations

import imaplib
import io
from datetime import datetime

import pytest

from console.channels.email.imapfetch import UnexpectedResponse, fetch_bodies, internaldate, uid_set


class Wire:
    """The part of imapclient's connection the reader uses: imaplib's tag counter, send and file."""

    abort, error = imaplib.IMAP4.abort, imaplib.IMAP4.error

    def __init__(self, answer: bytes):
        self.file = io.BufferedReader(io.BytesIO(answer.replace(b"TAG", b"A7")))
        self.sent = b""
        self.tagged_commands = {}
        self._imap = self

    def _new_tag(self) -> bytes:
        self.tagged_commands[b"A7"] = None
        return b"A7"

    def send(self, data: bytes) -> None:
        self.sent += data


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def test_bodies_flags_and_dates_come_back_by_uid_whatever_the_item_order():
    one = b"Subject: a\r\n\r\nbody with ) and\r\n* 9 FETCH (UID 99 BODY[] {3}\r\nnot a response\r\n"
    two = b"Subject: b\r\n\r\n\xff\x00binary-ish"
    wire = Wire(b"* 1 FETCH (UID 4 FLAGS (\\Seen $Label) INTERNALDATE \" 2-Mar-2026 09:59:51 +0100\" BODY[] "
                + literal(one) + b")\r\n* 3 EXISTS\r\n"
                + b"* 2 FETCH (BODY[] " + literal(two) + b" UID 7 INTERNALDATE \"17-Nov-2026 23:00:00 -0530\" FLAGS ())\r\n"
                + b"TAG OK Fetch completed.\r\n")
    found = fetch_bodies(wire, [4, 5, 6, 7])
    assert wire.sent == b"A7 UID FETCH 4:7 (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n"
    assert set(found) == {4, 7}  # 5 and 6 were expunged meanwhile
    assert found[4].body == one and found[4].flags == (b"\\Seen", b"$Label")
    assert found[4].internal == datetime.fromisoformat("2026-03-02T09:59:51+01:00").timestamp()
    assert found[7].body == two and found[7].flags == ()
    assert found[7].internal == datetime.fromisoformat("2026-11-17T23:00:00-05:30").timestamp()
    assert wire.tagged_commands == {}, "the tag is not left registered with imaplib"


def test_an_unsolicited_flags_update_never_hides_the_body():
    wire = Wire(b"* 1 FETCH (UID 4 FLAGS () BODY[] " + literal(b"x\r\n") + b")\r\n"
                b"* 1 FETCH (FLAGS (\\Seen) UID 4)\r\n* 2 FETCH (FLAGS (\\Deleted))\r\n"
                b"* 3 FETCH (UID 6 FLAGS (\\Seen))\r\nTAG OK done\r\n")
    found = fetch_bodies(wire, [4, 6])
    assert found[4].body == b"x\r\n" and found[4].flags == (b"\\Seen",)
    assert 6 not in found  # flags alone: no body, so nothing to store


def test_a_quoted_or_nil_body_is_read_as_such():
    wire = Wire(b'* 1 FETCH (UID 1 BODY[] "a \\"quoted\\" body")\r\n* 2 FETCH (UID 2 BODY[] NIL)\r\nTAG OK\r\n')
    found = fetch_bodies(wire, [1, 2])
    assert found[1].body == b'a "quoted" body' and 2 not in found


def test_no_is_an_imap_error_and_bye_or_a_cut_literal_is_a_broken_connection():
    with pytest.raises(imaplib.IMAP4.error, match="mailbox in use"):
        fetch_bodies(Wire(b"TAG NO [INUSE] mailbox in use\r\n"), [1])
    with pytest.raises(imaplib.IMAP4.abort, match="shutting down"):
        fetch_bodies(Wire(b"* BYE server shutting down\r\n"), [1])
    with pytest.raises(imaplib.IMAP4.abort, match="inside a literal"):
        fetch_bodies(Wire(b"* 1 FETCH (UID 1 BODY[] {100}\r\nonly this"), [1])
    with pytest.raises(imaplib.IMAP4.abort, match="closed the connection"):
        fetch_bodies(Wire(b"* 1 FETCH (UID 1 BODY[] NIL)\r\n"), [1])


def test_a_form_it_does_not_read_is_left_for_imapclient_after_reading_to_the_end():
    wire = Wire(b"* 1 FETCH (UID 1 X-THING (nested (list)) BODY[] " + literal(b"x") + b")\r\n"
                b"TAG OK done\r\nNEXT\r\n")
    with pytest.raises(UnexpectedResponse, match="X-THING"):
        fetch_bodies(wire, [1])
    assert wire.file.readline() == b"NEXT\r\n", "the connection is left at the next response"


@pytest.mark.parametrize("response", [
    b"* 1 FETCH (UID 1 BODY[]<0> " + literal(b"partial") + b")",  # another item holds the data
    b"* 1 FETCH (FLAGS () BODY[] " + literal(b"whole") + b")",  # a body without its UID
])
def test_a_body_it_cannot_file_under_its_uid_is_never_taken_for_an_expunged_message(response):
    with pytest.raises(UnexpectedResponse):
        fetch_bodies(Wire(response + b"\r\nTAG OK\r\n"), [1])


def test_uid_sets_are_compressed_into_ranges():
    assert uid_set([1, 2, 3, 5, 7, 8, 10]) == "1:3,5,7:8,10"
    assert uid_set([42]) == "42"
    assert uid_set([]) == ""


@pytest.mark.parametrize("value, expected", [
    (b"02-Mar-2026 09:59:51 +0000", "2026-03-02T09:59:51+00:00"),
    (b" 2-mar-2026 09:59:51 -0800", "2026-03-02T09:59:51-08:00"),
    (b"31-Dec-1999 23:59:59 +1400", "1999-12-31T23:59:59+14:00"),
])
def test_internaldate_is_read_without_the_locale(value, expected):
    assert internaldate(value) == datetime.fromisoformat(expected).timestamp()


@pytest.mark.parametrize("value", [b"", b"garbage", b"30-Feb-2026 09:00:00 +0000", b"02-Foo-2026 09:00:00 +0000"])
def test_a_garbage_internaldate_is_none(value):
    assert internaldate(value) is None
