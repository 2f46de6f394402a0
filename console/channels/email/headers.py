"""Header values of received mail as text: encoded words, charsets, addresses, ids and dates.

compat32 hands header values over as strings with raw 8-bit bytes kept as surrogate escapes;
these functions read them as UTF-8, decode RFC 2047 words in any charset Python knows (others as
UTF-8 with replacement characters), and never raise: a header that cannot be read is "" or None.
CR, LF and NUL never survive decoding (they are header syntax, not data).
"""

from __future__ import annotations

import binascii
import codecs
import hashlib
import quopri
import re
import time
from email.message import Message
from email.utils import getaddresses, mktime_tz, parsedate_tz

MAX_HEADER = 16_384  # characters of one decoded header kept

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")
_MSGID = re.compile(r"<([^<>\s]{1,900})>")
_SURROGATES = re.compile("[\udc80-\udcff]")
_CHARSET_ALIASES = {"unknown-8bit": "utf-8", "x-unknown": "utf-8", "ansi_x3.4-1968": "ascii", "x-user-defined": "latin-1"}


def _codec(charset: str | None) -> str:
    name = (charset or "utf-8").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return "utf-8"


def decode_bytes(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(_codec(charset), "replace")
    except Exception:  # a codec that fails in its own way (utf-7 on odd input, a broken third-party codec)
        return data.decode("utf-8", "replace")


def _unescape(value: str) -> str:
    """compat32 keeps non-ASCII header bytes as surrogate escapes: read them as UTF-8. Text that
    is already decoded (an RFC 2231 file name) passes unchanged."""
    if not _SURROGATES.search(value):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _decode_word(match: re.Match) -> str:
    charset, encoding, text = match.group(1), match.group(2).lower(), match.group(3)
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
    try:
        if encoding == "b":
            data = binascii.a2b_base64(text.encode("ascii", "replace") + b"===")
        else:
            data = quopri.decodestring(text.replace("_", " ").encode("ascii", "replace"), header=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return decode_bytes(data, charset)


def decode_header(value: object) -> str:
    """Any header value as readable text: RFC 2047 words decoded, raw 8-bit read as UTF-8, folding
    removed. CR, LF and NUL never survive (they are header syntax, not data)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        try:
            value = str(value)
        except Exception:
            return ""
    value = _unescape(value[:MAX_HEADER * 4])
    if "=?" in value:
        value = _BETWEEN_WORDS.sub(r"\1\2", value)
        value = _ENCODED_WORD.sub(_decode_word, value)
    value = re.sub(r"[\r\n\x00]+[ \t]*", " ", value)
    return value.strip()[:MAX_HEADER]


# "Name <local@domain>" or "local@domain", in the characters getaddresses() reads as atoms: the
# usual forms, read without its character-by-character parser. Anything else (quotes, comments,
# several addresses, groups, routes) goes to getaddresses(); tests/test_mailparse.py checks that
# both agree.
_ATOM = r'[^()<>@,:;."\[\] \t\r\n]+'
_ADDR_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*"
_SIMPLE_ADDRESS = re.compile(
    rf'[ \t]*(?:((?:[^()<>@,:;"\[\] \t\r\n]+[ \t]+)*[^()<>@,:;"\[\] \t\r\n]+)[ \t]*<({_ADDR_SPEC})>|({_ADDR_SPEC}))[ \t]*')


def simple_address(value: str) -> tuple[str, str] | None:
    """(display name, address) as getaddresses() reads one plain address, or None."""
    found = _SIMPLE_ADDRESS.fullmatch(value)
    if found is None:
        return None
    name, addr, bare = found.groups()
    return ("", bare) if bare is not None else (" ".join(name.split()), addr)


def addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    try:
        values = [_unescape(str(v)) for v in (msg.get_all(name) or [])]
        simple = simple_address(values[0]) if len(values) == 1 else None
        found = [simple] if simple is not None else getaddresses(values)
    except Exception:
        return []
    result = []
    for display, addr in found:
        addr = re.sub(r"[\s\x00-\x1f\x7f]", "", addr)
        if "@" not in addr:
            continue
        result.append((decode_header(display), addr.lower()))
    return result


def normalise_message_id(value: str | None) -> str:
    """`<id>` from a Message-ID header, or "" when there is no usable one."""
    if not value:
        return ""
    value = _unescape(str(value))
    found = _MSGID.search(value)
    if found:
        return f"<{found.group(1)}>"
    bare = value.strip()
    if bare and len(bare) <= 900 and re.fullmatch(r"[!-~]+", bare) and "<" not in bare and ">" not in bare:
        return f"<{bare}>"
    return ""


def synthetic_message_id(raw: bytes) -> str:
    """A stable id for mail without a Message-ID: the same bytes always give the same id."""
    return f"<sha256-{hashlib.sha256(raw).hexdigest()[:40]}@console.invalid>"


def message_ids(value: object) -> list[str]:
    if not value:
        return []
    return [f"<{v}>" for v in _MSGID.findall(_unescape(str(value)))][:200]


def header_date(msg: Message) -> float | None:
    value = msg.get("Date")
    if not value:
        return None
    try:
        parsed = parsedate_tz(_unescape(str(value)))
        if parsed is None:
            return None
        stamp = float(mktime_tz(parsed))
    except Exception:
        return None
    if stamp < 0 or stamp > time.time() + 2 * 86400:  # before 1970 or in the future: not believable
        return None
    return stamp
