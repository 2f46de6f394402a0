"""The sanitizer: what a customer writes can never drive the terminal."""

import pytest

from console.sanitize import clean, one_line

HOSTILE = [
    ("title \x1b]0;pwned\x07 set", "title  set"),
    ("clipboard \x1b]52;c;SGVsbG8=\x07 write", "clipboard  write"),
    ("clear \x1b[2J screen", "clear  screen"),
    ("reset \x1bc terminal", "reset  terminal"),
    ("c1 csi \x9b31m red", "c1 csi  red"),
    ("c1 osc \x9d0;x\x9c end", "c1 osc  end"),
    ("st-terminated \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "st-terminated link"),
    ("unterminated osc \x1b]0;forever", "unterminated osc "),
    ("nul\x00 bell\x07 del\x7f", "nul bell del"),
    ("crlf\r\nline", "crlf\nline"),
    ("invoice\u202efdp.exe", "invoice\u27e8RLO\u27e9fdp.exe"),
    ("isolate \u2067x\u2069", "isolate \u27e8RLI\u27e9x\u27e8PDI\u27e9"),
]


@pytest.mark.parametrize("raw, shown", HOSTILE)
def test_escape_sequences_and_controls_never_survive(raw, shown):
    assert clean(raw) == shown


def test_text_keeps_newlines_tabs_markup_and_unicode():
    text = "Hi [b]Maria[/b] 🎂\n\tcafé — 東京"
    assert clean(text) == text


def test_no_escape_byte_or_c1_control_survives_any_mix():
    payload = "".join(chr(c) for c in range(0, 0xA0)) * 3 + "\x1b[" + "\x1b]" + "\x9b"
    out = clean(payload)
    assert not any(0x80 <= ord(ch) <= 0x9F or (ord(ch) < 0x20 and ch not in "\n\t") or ch == "\x7f" for ch in out)


def test_one_line_folds_whitespace_and_limits_length():
    assert one_line("a\n\n b\t c", 100) == "a b c"
    assert one_line("x" * 50, 10) == "x" * 9 + "\u2026"


ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u200f", "\U000e0041"]


@pytest.mark.parametrize("char", ZERO_WIDTH, ids=[f"U+{ord(c):04X}" for c in ZERO_WIDTH])
def test_invisible_format_characters_are_removed(char):
    assert clean(f"Ma{char}ria") == "Maria"
    assert one_line(f"{char}Maria{char}") == "Maria"


def test_every_format_character_but_the_bidi_ones_is_removed_or_marked():
    import unicodedata

    for code in range(0x110000):
        char = chr(code)
        if unicodedata.category(char) != "Cf":
            continue
        out = clean(f"a{char}b")
        assert out == "ab" or (out.startswith("a\u27e8") and out.endswith("\u27e9b")), f"U+{code:04X}: {out!r}"


def test_a_row_holding_zero_width_characters_keeps_its_width():
    from rich.cells import cell_len

    name = "Ma\u200bri\u200ca \ufeffLopez\u2060"
    assert cell_len(one_line(name)) == len("Maria Lopez")
