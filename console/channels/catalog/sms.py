"""How an SMS body will travel: GSM-7 or UCS-2, how many segments, and whether Twilio takes it.

The SMS entry of the channel catalog measures lengths with it (`catalog.measure("sms", ...)`).
Pure functions, no I/O: the composer measures on every keystroke. The rules are the
GSM 03.38 alphabet (extension characters such as `€ [ ] { }` cost two septets) and the usual
concatenation limits: 160 septets in one segment, 153 per segment when split (the rest is the
concatenation header); 70 / 67 UTF-16 code units when any character needs UCS-2. A character is
never split across two segments, which is why a long message can need one segment more than a
plain division suggests. Twilio refuses bodies above 1,600 characters and we stop at 10 segments,
Twilio's own recommendation for deliverability.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# GSM 03.38 basic character set (ESC, 0x1B, is left out: it only introduces extension characters).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs two septets (ESC + the character).
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67
MAX_SEGMENTS = 10
MAX_CHARS = 1600  # Twilio's hard limit on Body


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    chars: int  # characters as a person counts them (code points)
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    per_segment: int  # capacity of each segment at this length: 160/153 or 70/67
    left: int  # units still free in the last segment
    sendable: bool
    reason: str = ""  # why it cannot be sent, when it cannot
    ucs2_cause: str = ""  # "emoji" or the first character that forced UCS-2, for the note

    def describe(self) -> str:
        if self.chars == 0:
            return ""
        noun = "segment" if self.segments == 1 else "segments"
        encoding = self.encoding if self.encoding == "GSM-7" else f"UCS-2 ({self.ucs2_cause})"
        text = f"{self.segments} SMS {noun} · {encoding} · {self.left} left"
        return f"{self.reason} — {text}" if self.reason else text


def _is_emoji(char: str) -> bool:
    code = ord(char)
    return (0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF or 0x1F900 <= code <= 0x1F9FF
            or code in (0xFE0F, 0x200D) or unicodedata.category(char) == "So")


def _show(char: str) -> str:
    """A character for the note: itself when harmless to print, else its code point."""
    if unicodedata.category(char)[0] in "CZ" and char != " ":
        return f"U+{ord(char):04X}"
    return f"“{char}”"


def _pack(costs: list[int], capacity: int) -> tuple[int, int]:
    """(segments, units free in the last one), never splitting one character's units."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments, used = segments + 1, 0
        used += cost
    return segments, capacity - used


def segment_info(body: str) -> SegmentInfo:
    chars = len(body)
    offending = next((c for c in body if c not in GSM7_BASIC and c not in GSM7_EXTENSION), None)
    if offending is None:
        costs = [2 if c in GSM7_EXTENSION else 1 for c in body]
        encoding, single, multi, cause = "GSM-7", GSM7_SINGLE, GSM7_MULTI, ""
    else:
        costs = [2 if ord(c) > 0xFFFF else 1 for c in body]  # astral characters are surrogate pairs
        encoding, single, multi = "UCS-2", UCS2_SINGLE, UCS2_MULTI
        emoji = any(_is_emoji(c) for c in body)
        cause = "emoji" if emoji else f"because of {_show(offending)}"
    units = sum(costs)
    if units <= single:
        segments, per_segment, left = 1, single, single - units
    else:
        segments, left = _pack(costs, multi)
        per_segment = multi
    reason = ""
    if chars > MAX_CHARS:
        reason = f"too long: {chars} characters; Twilio accepts at most {MAX_CHARS}"
    elif segments > MAX_SEGMENTS:
        reason = f"too long: {segments} segments; Twilio accepts at most {MAX_SEGMENTS}"
    return SegmentInfo(encoding, segments, chars, units, per_segment, left, not reason and chars > 0,
                       reason, cause)
