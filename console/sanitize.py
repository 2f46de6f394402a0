"""Make untrusted text safe to show in a terminal.

Everything a customer (or a remote server) wrote passes through `clean()` before any widget or
terminal sees it. It removes escape sequences (CSI, OSC, DCS, APC, PM, SOS and two-byte ESC
forms), C0 controls except newline and tab, DEL and the C1 range, and replaces bidirectional
overrides and isolates with a visible marker so a "invoice\u202efdp.exe" trick shows up as what it
is. It imports nothing from Textual or Rich: the core uses it too.
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


def clean(text: str | None) -> str:
    """Return `text` with terminal control sequences removed and bidi controls made visible."""
    if not text:
        return ""
    if text.isprintable():  # the common case: nothing to do (isprintable is False for \n too)
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SEQUENCES.sub("", text)
    text = _CONTROLS.sub("", text)
    return _BIDI.sub(lambda m: f"\u27e8{BIDI_MARKERS[m.group()]}\u27e9", text)


def one_line(text: str | None, limit: int = 200) -> str:
    """`clean()` folded to a single line (for lists, headers, filenames), at most `limit` chars."""
    text = " ".join(clean(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
