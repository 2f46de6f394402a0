"""Reading one RFC 5322 message into what the console shows, without ever raising.

Well-formed mail is cut into parts with `bytes.find` (`_fast_tree`, 0.4 ms a message); anything
else goes to the stdlib's `compat32` parser, and both give the same result (the `default` policy
costs ~2.4 ms a message, see PITFALLS). Header values get our own decoding. Hostile mail is
expected: before the stdlib parses it, a message with more than MAX_CONTAINERS multipart/message
containers or MAX_PARTS part delimiters is cut at that point (the first parts stay readable, the
rest is noted), which bounds both recursion depth and time. Unknown charsets decode as UTF-8 with replacement characters; a missing or garbage date is
left as None for the caller to replace with the server's INTERNALDATE. Whatever happens, the
caller keeps the raw bytes, so a better parser can re-read the message later.

Escape sequences in headers and bodies are kept as data here: the UI sanitises on display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import Compat32, compat32

from console.channels.email.headers import (addresses, decode_bytes, decode_header, header_date, message_ids,
                                            normalise_message_id, synthetic_message_id)
from console.htmltext import html_to_text
from console.model import Attachment

MAX_CONTAINERS = 50  # multipart / message/rfc822 containers, which bounds nesting depth
MAX_PARTS = 500  # MIME part delimiters
MAX_BODY = 1_000_000  # characters of body text kept (the raw mail keeps everything)

_CONTAINER = re.compile(rb"boundary\s*=|message/rfc822|message/global", re.IGNORECASE)
_DELIMITER = re.compile(rb"^--", re.MULTILINE)


@dataclass(slots=True)
class ParsedMail:
    message_id: str  # normalised "<id>", synthesised from the raw bytes' hash when missing
    subject: str = ""
    from_name: str = ""
    from_addr: str = ""
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    date: float | None = None  # UTC epoch seconds, None when missing or garbage
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    body: str = ""
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def thread_root(self) -> str:
        """The thread's first message: first of References, else In-Reply-To, else this one."""
        if self.references:
            return self.references[0]
        if self.in_reply_to:
            return self.in_reply_to[0]
        return self.message_id

    @property
    def related(self) -> tuple[str, ...]:
        """Every Message-ID this message points at, for joining an earlier conversation."""
        seen: dict[str, None] = {}
        for ref in (*self.references, *self.in_reply_to):
            if ref != self.message_id:
                seen[ref] = None
        return tuple(seen)


class _RawHeaderPolicy(Compat32):
    """compat32, but a header with raw 8-bit bytes comes back as the surrogate-escaped string
    instead of a `Header` whose str() turns those bytes into U+FFFD: `decode_header` reads them
    as UTF-8 (what nearly every sender of raw 8-bit headers means)."""

    def header_fetch_parse(self, name, value):
        return value


_POLICY = _RawHeaderPolicy()


# ---- structure -------------------------------------------------------------------------------------

def _within_limits(raw: bytes) -> bool:
    """True when `raw` cannot have more than the allowed containers or parts (nearly all mail).

    It counts plain substrings, a superset of what the patterns in `_cap` match: a
    case-insensitive regex over a large base64 attachment costs milliseconds, these counts
    microseconds."""
    low = raw.lower()
    return (low.count(b"boundary") + low.count(b"message/rfc822") + low.count(b"message/global") <= MAX_CONTAINERS
            and raw.count(b"\n--") <= MAX_PARTS)


def _cap(raw: bytes, problems: list[str]) -> bytes:
    """Cut a message with too many containers or parts so the parser's depth and time are bounded."""
    if _within_limits(raw):
        return raw
    cut = len(raw)
    containers = _CONTAINER.finditer(raw)
    for count, found in enumerate(containers, 1):
        if count > MAX_CONTAINERS:
            cut = min(cut, raw.rfind(b"\n", 0, found.start()) + 1 or found.start())
            problems.append(f"more than {MAX_CONTAINERS} nested parts; the rest is not shown (kept in the original)")
            break
    if raw.count(b"\n--", 0, cut) > MAX_PARTS:
        for count, found in enumerate(_DELIMITER.finditer(raw, 0, cut), 1):
            if count > MAX_PARTS:
                cut = min(cut, found.start())
                problems.append(f"more than {MAX_PARTS} parts; the rest is not shown (kept in the original)")
                break
    return raw[:cut]


# ---- the fast path: cutting the MIME tree with bytes.find ------------------------------------------
#
# The stdlib parser reads a message line by line in Python, base64 attachments included: most of
# its time goes to bodies nobody reads up front. For well-formed mail, the tree can be cut at its
# delimiter lines with `bytes.find` instead, reading each part's header block the way the stdlib
# parser does and setting the body as the payload it would have set (the same `Message` objects,
# so everything downstream is shared). Whenever the message is anything but plain (a bare CR
# where it matters, a header the stdlib would flag, a missing or repeated delimiter, a message/*
# part, multipart/digest, nested boundaries that overlap, too many parts), this returns None and the
# stdlib parser reads the whole message: both paths give the same result on every message the
# fast path accepts (tests/test_mailparse.py checks this on the corpora and on mutated mail).

_HEADER_LINE = re.compile(r"[\041-\071\073-\176]+:")  # the stdlib's header line, less "From " and ":x"


def _header_block(block: bytes) -> Message | None:
    """The header block (ending with its line break) read as the stdlib parser reads it, or None
    for anything it would flag as a defect or read differently (a bare CR, a line that is not a
    header, a first line that is a continuation, an mbox "From " line)."""
    msg = Message(policy=_POLICY)
    if not block:
        return msg
    if block.count(b"\r") != block.count(b"\r\n"):
        return None
    lines = block.decode("ascii", "surrogateescape").split("\n")
    if lines.pop() != "":
        return None
    current: list[str] | None = None
    for line in lines:
        line += "\n"
        if line[0] in " \t":
            if current is None:
                return None
            current.append(line)
            continue
        if not _HEADER_LINE.match(line):
            return None
        if current is not None:
            msg.set_raw(*_POLICY.header_source_parse(current))
        current = [line]
    if current is not None:
        msg.set_raw(*_POLICY.header_source_parse(current))
    return msg


_BLANK_LINE = re.compile(rb"\n\r?\n")


def _headers(raw: bytes, start: int, end: int) -> tuple[Message, int] | None:
    """The header block starting at `start`, parsed, and where its body starts."""
    if raw.startswith(b"\n", start, end):
        block, body = b"", start + 1
    elif raw.startswith(b"\r\n", start, end):
        block, body = b"", start + 2
    else:
        blank = _BLANK_LINE.search(raw, start, end)
        if blank is None:
            return None  # no blank line: headers running into the next delimiter or the end
        block, body = raw[start:blank.start() + 1], blank.end()
    msg = _header_block(block)
    return None if msg is None else (msg, body)


def _delimiters(raw: bytes, sep: bytes, start: int, end: int) -> list[tuple[int, int, bool]]:
    """(line start, next line start, is the close delimiter) for each delimiter line of `sep`
    in [start, end), up to the close delimiter; the lines the stdlib parser's boundary regex
    matches: `sep`, an optional "--", spaces or tabs, then the end of the line."""
    found: list[tuple[int, int, bool]] = []
    pos = start
    while True:
        at = raw.find(sep, pos, end)
        if at < 0:
            return found
        pos = at + 1
        if at != start and raw[at - 1] != 10:
            if raw[at - 1] == 13:
                raise _Decline  # a bare CR ends a line for the stdlib parser, not here
            continue  # not at the start of a line
        after = at + len(sep)
        close = raw.startswith(b"--", after, end)
        if close:
            after += 2
        while after < end and raw[after] in (32, 9):
            after += 1
        if after == end:
            line_end = end
        elif raw[after] == 10:
            line_end = after + 1
        elif raw.startswith(b"\r\n", after, end):
            line_end = after + 2
        elif raw[after] == 13:
            raise _Decline  # "--boundary" ended by a bare CR
        else:
            continue  # "--boundary" followed by more text: body text, not a delimiter
        found.append((at, line_end, close))
        if close:
            return found


class _Decline(Exception):
    """The fast path cannot promise the stdlib parser's reading of this message."""


def _fast_tree(raw: bytes) -> tuple[Message, list[tuple[str, Message]]] | None:
    """(root, leaves as in `_walk`) cut with `bytes.find`, or None when the stdlib must parse."""
    try:
        return _cut(raw)
    except _Decline:
        return None


def _cut(raw: bytes) -> tuple[Message, list[tuple[str, Message]]] | None:
    top = _headers(raw, 0, len(raw))
    if top is None:
        return None
    root, body = top
    leaves: list[tuple[str, Message]] = []
    containers = 0
    # (path, part, body start, end, enclosing delimiters, is the top-level message)
    stack: list[tuple[str, Message, int, int, tuple[bytes, ...], bool]] = [("", root, body, len(raw), (), True)]
    while stack:
        path, part, start, end, outer, is_top = stack.pop()
        maintype = part.get_content_maintype()
        if maintype == "message":
            return None
        if maintype != "multipart":
            payload = raw[start:end]
            if not is_top:  # the line break before a delimiter belongs to the delimiter
                payload = payload[:-2] if payload.endswith(b"\r\n") else payload[:-1] if payload.endswith(b"\n") else payload
            part.set_payload(payload.decode("ascii", "surrogateescape"))
            leaves.append((path or "1", part))
            continue
        containers += 1
        boundary = part.get_boundary()
        if not boundary or part.get_content_type() == "multipart/digest" or containers > MAX_CONTAINERS:
            return None
        try:
            sep = b"--" + boundary.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            return None
        if any(sep.startswith(o) or o.startswith(sep) for o in outer):
            return None
        delims = _delimiters(raw, sep, start, end)
        if len(delims) < 2 or delims[0][2] or not delims[-1][2]:
            return None  # no parts, or no close delimiter
        children: list[tuple[str, Message, int, int, tuple[bytes, ...], bool]] = []
        for number, ((_, content, _), (next_line, _, _)) in enumerate(zip(delims, delims[1:]), 1):
            if content == next_line:
                return None  # two delimiter lines in a row: the stdlib parser skips the second
            child = _headers(raw, content, next_line)
            if child is None:
                return None
            message, child_body = child
            children.append((f"{path}.{number}" if path else str(number), message, child_body, next_line,
                             (*outer, sep), False))
        if len(leaves) + len(stack) + len(children) > MAX_PARTS:
            return None
        stack.extend(reversed(children))
    return root, leaves


def _tree(raw: bytes, problems: list[str], fast_path: bool = True) -> tuple[Message | None, list[tuple[str, Message]]]:
    """The root and leaves of a message, by the fast path when it can, else by the stdlib parser."""
    try:
        fast = _fast_tree(raw) if fast_path else None
    except Exception:
        fast = None
    if fast is not None:
        return fast
    try:
        msg = message_from_bytes(_cap(raw, problems), policy=_POLICY)
    except RecursionError:
        problems.append("nested too deeply to read; only the headers are shown")
        msg = _headers_only(raw)
    except Exception as exc:
        problems.append(f"could not read this message ({type(exc).__name__}); the original is kept")
        msg = _headers_only(raw)
    if msg is None:
        return None, []
    try:
        return msg, _walk(msg)
    except RecursionError:
        problems.append("nested too deeply to read the body")
    except Exception as exc:
        problems.append(f"could not read the body ({type(exc).__name__}); the original is kept")
    return msg, []


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition", "")).split(";", 1)[0].strip().lower()
    if disposition == "attachment":
        return True
    if disposition != "inline" or part.get_content_maintype() == "text":
        return False
    try:
        has_name = bool(part.get_param("name") or part.get_param("filename", header="content-disposition"))
    except Exception:
        has_name = False
    return disposition == "inline" and has_name and part.get_content_maintype() != "text"


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("ascii", "surrogateescape")
    return b""


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        try:
            name = part.get_param("name")
            if isinstance(name, tuple):
                name = name[2]
        except Exception:
            name = None
    return decode_header(name)[:255] if name else ""


def _walk(msg: Message) -> list[tuple[str, Message]]:
    """(IMAP-style part path, part) for every leaf part, depth first, without recursion."""
    leaves: list[tuple[str, Message]] = []
    stack: list[tuple[str, Message]] = [("", msg)]
    while stack and len(leaves) < MAX_PARTS:
        path, part = stack.pop()
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                if part.get_content_type() in ("message/rfc822", "message/global"):
                    leaves.append((path or "1", part))
                    continue
                for number in range(len(children), 0, -1):
                    child = children[number - 1]
                    if isinstance(child, Message):
                        stack.append((f"{path}.{number}" if path else str(number), child))
                continue
        leaves.append((path or "1", part))
    return leaves


def _fill_content(leaves: list[tuple[str, Message]], mail: ParsedMail, keep_html: bool = True) -> None:
    plain: list[str] = []
    html_parts: list[tuple[str, Message]] = []
    for path, part in leaves:
        try:
            _take_part(path, part, mail, plain, html_parts)
        except Exception as exc:  # one broken part must not hide the others
            mail.problems.append(f"part {path} could not be read ({type(exc).__name__}); the original is kept")
    # An HTML alternative is decoded only when it is the body or wanted (the raw mail keeps it).
    html = [text for text in (_html_text(path, part, mail) for path, part in html_parts) if text is not None] \
        if html_parts and (keep_html or not plain) else []
    if html:
        mail.html = "\n".join(html)[:MAX_BODY * 2]
    if plain:
        mail.body = "\n\n".join(t.strip("\n") for t in plain)
    elif html:
        mail.body = html_to_text("\n".join(html)[:MAX_BODY * 2])
    mail.body = mail.body.replace("\x00", "")[:MAX_BODY]


def _text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text = decode_bytes(_payload(part), charset).replace("\r\n", "\n")
    return text.replace("\r", "\n") if "\r" in text else text


def _html_text(path: str, part: Message, mail: ParsedMail) -> str | None:
    try:
        return _text(part)
    except Exception as exc:
        mail.problems.append(f"part {path} could not be read ({type(exc).__name__}); the original is kept")
        return None


def _take_part(path: str, part: Message, mail: ParsedMail, plain: list[str],
               html: list[tuple[str, Message]]) -> None:
    try:
        ctype = part.get_content_type()
    except Exception:
        ctype = "application/octet-stream"
    if ctype in ("message/rfc822", "message/global"):
        name = _filename(part) or "forwarded message.eml"
        try:
            size = len(part.as_bytes(policy=compat32))
        except Exception:
            size = None
        mail.attachments.append(Attachment(name, ctype, size, path))
        return
    if ctype in ("text/plain", "text/html") and not _is_attachment(part):
        if ctype == "text/plain":
            plain.append(_text(part))
        else:
            html.append((path, part))
        return
    if ctype.startswith("multipart/"):  # an empty or broken container
        return
    data = _payload(part)
    name = _filename(part) or f"part-{path}"
    mail.attachments.append(Attachment(name, ctype, len(data), path))


# ---- entry point -----------------------------------------------------------------------------------

def parse(raw: bytes, fast_path: bool = True, keep_html: bool = True) -> ParsedMail:
    """Parse one message. Never raises: what cannot be read is noted in `problems`.
    `fast_path=False` always uses the stdlib parser (the tests compare both). Without
    `keep_html`, an HTML alternative to a plain text part is not decoded (`html` stays None):
    the sync keeps the raw mail, so the HTML is never stored twice."""
    problems: list[str] = []
    msg, leaves = _tree(raw, problems, fast_path)
    mail = ParsedMail(message_id="", problems=problems)
    if msg is None:
        mail.message_id = synthetic_message_id(raw)
        return mail
    try:
        mail.message_id = normalise_message_id(msg.get("Message-ID")) or synthetic_message_id(raw)
        mail.subject = decode_header(msg.get("Subject"))
        senders = addresses(msg, "From") or addresses(msg, "Sender")
        if senders:
            mail.from_name, mail.from_addr = senders[0]
        mail.reply_to = addresses(msg, "Reply-To")
        mail.to = addresses(msg, "To")
        mail.cc = addresses(msg, "Cc")
        mail.date = header_date(msg)
        mail.in_reply_to = message_ids(msg.get("In-Reply-To"))
        mail.references = message_ids(msg.get("References"))
    except Exception as exc:
        problems.append(f"could not read the headers ({type(exc).__name__})")
        mail.message_id = mail.message_id or synthetic_message_id(raw)
    try:
        _fill_content(leaves, mail, keep_html)
    except RecursionError:
        problems.append("nested too deeply to read the body")
    except Exception as exc:
        problems.append(f"could not read the body ({type(exc).__name__}); the original is kept")
    return mail


def _headers_only(raw: bytes) -> Message | None:
    end = raw.find(b"\r\n\r\n")
    end = raw.find(b"\n\n") if end < 0 else end
    try:
        return message_from_bytes(raw[: end if end >= 0 else 65536] + b"\n\n", policy=_POLICY)
    except Exception:
        return None


def part_bytes(raw: bytes, ref: str, fast_path: bool = True) -> bytes | None:
    """The decoded content of the part `ref` (a path from `ParsedMail.attachments`), or None."""
    try:
        for path, part in _tree(raw, [], fast_path)[1]:
            if path == ref:
                if part.get_content_type() in ("message/rfc822", "message/global"):
                    inner = part.get_payload()
                    if isinstance(inner, list) and inner:
                        return inner[0].as_bytes(policy=compat32)
                return _payload(part)
    except Exception:
        return None
    return None
