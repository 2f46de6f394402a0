"""Make untrusted text safe to show in a terminal.

Everything a customer (or a remote server) wrote passes through `clean()` before any widget or
terminal sees it. It removes escape sequences (CSI, OSC, DCS, APC, PM, SOS and two-byte ESC
forms), C0 controls except newline and tab, DEL and the C1 range, and replaces bidirectional
overrides and isolates with a visible marker so a "invoice\u202efdp.exe" trick shows up as what it
is. It imports nothing from Textual or Rich: the core uses it too.

Invisible format characters (Unicode category Cf: zero-width space and joiners U+200B-U+200D,
word joiner U+2060, BOM U+FEFF, soft hyphen, the LRM/RLM marks, tag characters) are removed: they
take no cell in a row's width arithmetic but some terminals draw them, which broke list rows;
and text a person cannot see is text that can hide things (a spoofed name, smuggled tag
characters). The cost is cosmetic: an emoji joined by U+200D (a family) shows as its parts, and a
Persian word loses a non-joiner's hint. Searching, storing and sending keep the original text.
"""

from __future__ import annotations

import re

# ESC-introduced sequences: CSI ... final byte; OSC/DCS/APC/PM/SOS ... terminated by BEL or ST
# (or left unterminated at end of text); any other ESC + one character. The 8-bit forms (U+009B
# CSI, U+009D OSC, U+0090 DCS...) are matched the same way.
_SEQUENCES = re.compile(
    r"""
    (?:\x1b\[|\x9b)[\x20-\x3f]*[\x40-\x7e]?          # CSI
  | (?:\x1b[\]P_^X]|[\x9d\x90\x9f\x9e\x98])          # OSC DCS APC PM SOS ...
        [^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?          #   ... up to BEL or ST
  | \x1b[\x20-\x2f]*[\x30-\x7e]?                      # other ESC sequences (ESC c, ESC ( B ...)
    """,
    re.VERBOSE,
)
# C0 controls but TAB and LF, DEL, and the C1 block.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
BIDI_MARKERS = {
    "\u202a": "LRE", "\u202b": "RLE", "\u202c": "PDF", "\u202d": "LRO", "\u202e": "RLO",
    "\u2066": "LRI", "\u2067": "RLI", "\u2068": "FSI", "\u2069": "PDI",
}
_BIDI = re.compile("[" + "".join(BIDI_MARKERS) + "]")
# Cf characters other than the bidi controls above (those become markers): what a terminal may or
# may not draw, in no width a layout can count.
# (Every Cf code point of Python 3.11's Unicode 14 database; a test checks the list is complete.)
_INVISIBLE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2060-\u2064"
    "\u206a-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]")


def clean(text: str | None) -> str:
    """Return `text` with terminal control sequences removed and bidi controls made visible."""
    if not text:
        return ""
    if text.isprintable():  # the common case: nothing to do (isprintable is False for \n too)
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SEQUENCES.sub("", text)
    text = _CONTROLS.sub("", text)
    text = _BIDI.sub(lambda m: f"\u27e8{BIDI_MARKERS[m.group()]}\u27e9", text)
    return _INVISIBLE.sub("", text)


def one_line(text: str | None, limit: int = 200) -> str:
    """`clean()` folded to a single line (for lists, headers, filenames), at most `limit` chars."""
    text = " ".join(clean(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
