"""SMS segment counting: what the composer tells the user before a long or emoji-laden text goes out."""

from console.channels.catalog.sms import segment_info
from console.ui.composer import limit_note


def test_plain_text_up_to_160_characters_is_one_gsm7_segment():
    info = segment_info("a" * 160)
    assert (info.encoding, info.segments, info.left, info.sendable) == ("GSM-7", 1, 0, True)
    assert info.describe() == "1 SMS segment · GSM-7 · 0 left"


def test_161_characters_split_into_153_septet_segments():
    info = segment_info("a" * 161)
    assert (info.segments, info.per_segment, info.left) == (2, 153, 145)
    info = segment_info("a" * 265)
    assert info.describe() == "2 SMS segments · GSM-7 · 41 left"


def test_extension_characters_cost_two_septets():
    assert segment_info("€" * 80).segments == 1
    assert segment_info("€" * 81).segments == 2
    assert segment_info("[]{}").units == 8


def test_an_extension_character_is_never_split_across_segments():
    # 152 plain septets then one '€' (2 septets) does not fit in the first 153: it moves on.
    info = segment_info("a" * 152 + "€" + "b" * 10)
    assert info.encoding == "GSM-7" and info.segments == 2
    assert info.left == 153 - 12


def test_gsm7_accented_letters_do_not_force_ucs2():
    assert segment_info("Grüße aus Köln, ¿qué tal? Ñoño à la carte").encoding == "GSM-7"
    assert segment_info("Ñandú").encoding == "UCS-2"  # ú is not in the GSM alphabet; ù is


def test_one_emoji_switches_the_whole_message_to_ucs2():
    info = segment_info("Your cake is ready 🎂")
    assert info.encoding == "UCS-2" and info.units == 21
    assert "UCS-2 (emoji)" in info.describe()
    info = segment_info("🎂" * 35)  # 70 UTF-16 units: still one segment
    assert info.segments == 1
    info = segment_info("🎂" * 36)
    assert info.segments == 2 and info.per_segment == 67


def test_ucs2_note_names_the_character_that_forced_it():
    info = segment_info("It’s ready")  # a curly apostrophe, the usual culprit
    assert info.encoding == "UCS-2" and "’" in info.describe()
    assert "U+202E" in segment_info("x\u202ey").describe()  # invisible characters are named, not printed


def test_ucs2_three_segments():
    info = segment_info("ж" * 150)
    assert info.describe() == "3 SMS segments · UCS-2 (because of “ж”) · 51 left"


def test_more_than_ten_segments_is_refused_with_a_reason():
    info = segment_info("a" * (153 * 10 + 1))
    assert info.segments == 11 and not info.sendable
    assert info.describe().startswith("too long: 11 segments; Twilio accepts at most 10")


def test_more_than_1600_characters_is_refused():
    info = segment_info("€" * 1601)
    assert not info.sendable and "1601 characters" in info.reason


def test_the_composer_shows_segments_for_sms():
    note, ok = limit_note("sms", "Hi Maria 🎂")
    assert ok and "UCS-2" in note and "1 SMS segment" in note
    note, ok = limit_note("sms", "a" * 2000)
    assert not ok and "too long" in note
