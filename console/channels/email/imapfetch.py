"""Fetching whole messages over IMAP without imaplib's per-response overhead.

`UID FETCH uids (UID FLAGS INTERNALDATE BODY.PEEK[])` through imapclient costs about 0.6 ms of
CPU a message in imaplib's response loop and imapclient's lexer (12.6 s for the 20,000-message
benchmark mailbox, against 2.5 s for TLS and the socket themselves; bench/README.md). This module
sends that one command on imapclient's own connection and reads the answer straight from its
buffered socket file: lines with `readline`, literals with one `read(n)`, and the few items around
each literal with a regular expression. It asks only for what it understands, and anything it does
not understand is `UnexpectedResponse`, after which the caller fetches the same UIDs the ordinary
way: the fast path can be wrong only by being slow.

Responses are merged per UID, so an unsolicited FETCH (flags changed by another client) never
shadows the body, and a UID without a body in the answer (expunged meanwhile) is simply absent.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timezone

MAX_LINE = 1_000_000  # as imaplib: a longer response line means a broken or hostile server

_LITERAL_END = re.compile(rb"\{(\d{1,10})\}\r\n\Z")
_FETCH_START = re.compile(rb"\* (\d+) FETCH \(")
# One item of a FETCH response: a name, then a number, a parenthesised list of atoms, a quoted
# string, NIL, or the literal that follows this piece of the line (`{n}` at its end).
_ITEM = re.compile(
    rb"\s*([A-Za-z0-9.\[\]<>-]+)\s+(?:(\d+)|\(([^()\"{}]*)\)|\"((?:[^\"\\]|\\.)*)\"|(NIL)|(\{\d+\}\Z))", re.S)
_MONTHS = {m.lower().encode(): i for i, m in enumerate(calendar.month_abbr) if m}
_INTERNALDATE = re.compile(rb"\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z")


class UnexpectedResponse(Exception):
    """The server answered in a form this reader does not handle; fetch these UIDs another way."""


@dataclass(slots=True)
class Fetched:
    body: bytes
    flags: tuple[bytes, ...] = ()
    internal: float | None = None  # INTERNALDATE as UTC epoch seconds


def uid_set(uids: list[int]) -> str:
    """`1:5,7,9:12` for sorted UIDs: short command lines for long runs."""
    ranges: list[str] = []
    start = prev = None
    for uid in uids:
        if prev is not None and uid == prev + 1:
            prev = uid
            continue
        if start is not None:
            ranges.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    if start is not None:
        ranges.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(ranges)


def internaldate(value: bytes) -> float | None:
    """`02-Mar-2026 09:59:51 +0100` as epoch seconds (no locale: month names are IMAP's own)."""
    found = _INTERNALDATE.match(value)
    if not found:
        return None
    day, month, year, hour, minute, second, sign, zone_h, zone_m = found.groups()
    number = _MONTHS.get(month.lower())
    if number is None:
        return None
    try:
        moment = datetime(int(year), number, int(day), int(hour), int(minute), int(second), tzinfo=timezone.utc)
    except ValueError:  # 30-Feb, 25:00...
        return None
    stamp = calendar.timegm(moment.timetuple())
    offset = (int(zone_h) * 3600 + int(zone_m) * 60) * (1 if sign == b"+" else -1)
    return float(stamp - offset)


def fetch_bodies(conn, uids: list[int]) -> dict[int, Fetched]:
    """Whole messages, flags and INTERNALDATE for `uids` of the selected folder.

    `conn` is an `imapclient.IMAPClient`; its imaplib connection (`conn._imap`) is used for this one
    command. Raises imaplib's `abort` for a broken connection, its `error` for a NO or BAD answer,
    and `UnexpectedResponse` when the answer cannot be read here (the connection is still usable:
    the rest of the answer has been read up to the tagged line).
    """
    if not uids:
        return {}
    imap = conn._imap  # imapclient >= 3 keeps imaplib's connection here (pinned in pyproject.toml)
    tag = imap._new_tag()
    imap.send(tag + b" UID FETCH " + uid_set(uids).encode() + b" (UID FLAGS INTERNALDATE BODY.PEEK[])\r\n")
    try:
        return _read_answer(imap, tag)
    finally:
        imap.tagged_commands.pop(tag, None)  # registered by _new_tag; the answer was read here


def _read_answer(imap, tag: bytes) -> dict[int, Fetched]:
    readline, read = imap.file.readline, imap.file.read
    done = tag + b" "
    found: dict[int, Fetched] = {}
    trouble = None

    def line_of() -> bytes:
        line = readline(MAX_LINE + 1)
        if not line:
            raise imap.abort("the server closed the connection during FETCH")
        if len(line) > MAX_LINE or not line.endswith(b"\r\n"):
            raise imap.abort("a response line that is too long or unterminated")
        return line

    while True:
        line = line_of()
        if line.startswith(done):
            status = line[len(done):].split(None, 1)[0].upper() if line[len(done):].strip() else b""
            if status != b"OK":
                raise imap.error(f"UID FETCH failed: {line[len(done):].decode('ascii', 'replace').strip()}")
            if trouble is not None:
                raise UnexpectedResponse(trouble)
            return found
        pieces: list[bytes] = []
        literals: list[bytes] = []
        while (size := _LITERAL_END.search(line)) is not None:
            count = int(size.group(1))
            data = read(count)
            if len(data) != count:
                raise imap.abort("the server closed the connection inside a literal")
            pieces.append(line[:-2])
            literals.append(data)
            line = line_of()
        pieces.append(line[:-2])
        if pieces[0].startswith(b"* BYE"):
            raise imap.abort(pieces[0][2:].decode("ascii", "replace"))
        start = _FETCH_START.match(pieces[0])
        if start is None:
            continue  # EXISTS, EXPUNGE, RECENT...: nothing this command needs
        if trouble is None:
            try:
                _merge(found, pieces, literals, start.end())
            except UnexpectedResponse as exc:
                trouble = str(exc)  # keep reading up to the tagged line, then say so


def _merge(found: dict[int, Fetched], pieces: list[bytes], literals: list[bytes], offset: int) -> None:
    items: dict[bytes, object] = {}
    for number, piece in enumerate(pieces):
        pos = offset if number == 0 else 0
        end = len(piece)
        if number == len(pieces) - 1:
            if not piece.endswith(b")"):
                raise UnexpectedResponse(f"FETCH response does not end with ')': {piece[-40:]!r}")
            end -= 1
        while True:
            item = _ITEM.match(piece, pos, end)
            if item is None:
                if piece[pos:end].strip():
                    raise UnexpectedResponse(f"unexpected FETCH item: {piece[pos:pos + 60]!r}")
                break
            name, digits, listed, quoted, nil, literal = item.groups()
            name = name.upper()
            if literal is not None:
                if number >= len(literals):
                    raise UnexpectedResponse("a literal announced but not sent")
                items[name] = literals[number]
            elif digits is not None:
                items[name] = int(digits)
            elif listed is not None:
                items[name] = tuple(listed.split())
            elif quoted is not None:
                items[name] = re.sub(rb"\\(.)", rb"\1", quoted)
            else:
                items[name] = None
            pos = item.end()
    uid = items.get(b"UID")
    if literals and b"BODY[]" not in items:
        # A message came in a form not asked for: never take it for one that was expunged.
        raise UnexpectedResponse(f"a FETCH response with data but no BODY[]: {pieces[0][:60]!r}")
    if not isinstance(uid, int):
        if b"BODY[]" in items:
            raise UnexpectedResponse("a message body without its UID")
        return  # not an answer to UID FETCH (an unsolicited flags update by sequence number)
    entry = found.get(uid)
    body = items.get(b"BODY[]", entry.body if entry else None)
    if body is not None and not isinstance(body, bytes):
        raise UnexpectedResponse(f"BODY[] of UID {uid} is not a string")
    if body is None:
        return  # flags alone, for a message whose body comes in another response (or never)
    flags = items.get(b"FLAGS", entry.flags if entry else ())
    date = items.get(b"INTERNALDATE")
    found[uid] = Fetched(body, flags if isinstance(flags, tuple) else (),
                         internaldate(date) if isinstance(date, bytes) else (entry.internal if entry else None))
