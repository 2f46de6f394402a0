"""The channel catalog: one entry per channel and per account kind, read by everyone else.

That what the composer allows is what each adapter sends is checked against every adapter in
test_contract.py; these are the entries' own rules.
"""

from __future__ import annotations

import importlib

import pytest

from console import config, model
from console.channels import catalog
from console.model import PermanentError

HOUR, DAY = 3600.0, 86400.0
NOW = 1_800_000_000.0


def test_every_account_kind_names_an_adapter_module_and_known_channels():
    for kind in catalog.account_kinds():
        module = importlib.import_module(kind.module)
        assert callable(module.configure), kind.id
        assert kind.channels and all(c in {e.id for e in catalog.channels()} for c in kind.channels)


def test_every_channel_has_a_distinct_ascii_letter_and_an_identity_kind_with_a_label():
    letters = [entry.letter for entry in catalog.channels()]
    assert len(set(letters)) == len(letters) and all(len(x) == 1 and x.isascii() and x.isupper() for x in letters)
    for entry in catalog.channels():
        assert catalog.identity(entry.identity_kind).icon != "•", f"{entry.id}: no identity entry"
        assert entry.icon and entry.name


def test_sms_and_whatsapp_share_the_phone_identity():
    assert catalog.channel("sms").identity_kind == catalog.channel("whatsapp").identity_kind == "phone"


def test_an_unknown_channel_is_shown_under_its_own_name_without_a_limit():
    entry = catalog.channel("carrier-pigeon")
    assert (entry.name, entry.icon, entry.letter) == ("carrier-pigeon", "•", "?")
    assert catalog.measure("carrier-pigeon", "x" * 100_000).ok


def test_the_config_accepts_exactly_the_catalogs_account_kinds_and_knows_their_secrets():
    assert config.KINDS == tuple(kind.id for kind in catalog.account_kinds())
    assert {"password", "auth_token", "api_secret", "bot_token", "page_access_token", "access_token"} == \
        set(catalog.secret_keys())


# ---- lengths ------------------------------------------------------------------------------------

def test_sms_is_counted_in_segments():
    verdict = catalog.measure("sms", "Hi Maria 🎂")
    assert verdict.ok and (verdict.used, verdict.limit, verdict.unit) == (1, 10, "segments")
    assert "UCS-2 (emoji)" in verdict.note
    too_long = catalog.measure("sms", "a" * 1531)
    assert not too_long.ok and "11 segments" in too_long.refusal and too_long.refusal.endswith("split it.")


def test_telegram_and_whatsapp_count_an_emoji_as_two():
    assert catalog.measure("telegram", "🎂" * 2048).ok
    verdict = catalog.measure("telegram", "🎂" * 2049)
    assert not verdict.ok and verdict.used == 4098 and "an emoji counts as 2" in verdict.refusal
    assert catalog.measure("telegram", "漢" * 4096).ok  # CJK is one unit each
    assert catalog.measure("whatsapp", "a" * 1600).ok and not catalog.measure("whatsapp", "🎂" * 801).ok


def test_instagram_counts_utf8_bytes_and_messenger_characters():
    assert catalog.measure("instagram", "é" * 500).ok
    verdict = catalog.measure("instagram", "é" * 501)
    assert not verdict.ok and (verdict.used, verdict.unit) == (1002, "bytes")
    assert "Instagram allows at most 1000" in verdict.refusal
    assert catalog.measure("messenger", "é" * 2000).ok and not catalog.measure("messenger", "a" * 2001).ok


def test_mastodon_counts_a_url_as_23_a_remote_mention_by_its_user_and_the_instances_limit():
    url = "https://acme.example/" + "z" * 300
    text = "y" * 470 + " " + url  # 470 + 1 + 23
    assert catalog.measure("mastodon", text).ok
    mentioned = catalog.length_settings({}, mention="@kofi@remote.example")
    verdict = catalog.measure("mastodon", text, mentioned)  # "@kofi " adds 6: 500
    assert verdict.ok and verdict.used == 500
    verdict = catalog.measure("mastodon", "!" + text, mentioned)
    assert not verdict.ok and "with the @kofi@remote.example mention" in verdict.refusal
    assert "this Mastodon server allows at most 500" in verdict.refusal
    assert catalog.measure("mastodon", "x" * 900, catalog.length_settings({"max_characters": 1000})).ok


def test_email_has_no_limit_and_nothing_blank_is_sendable():
    assert catalog.measure("email", "x" * 1_000_000).ok
    for channel in catalog.channels():
        assert not catalog.measure(channel.id, "  \n ").ok


def test_an_adapter_refuses_what_does_not_fit_with_the_verdicts_sentence():
    with pytest.raises(PermanentError) as caught:
        catalog.enforce_length("messenger", "a" * 2001)
    assert caught.value.code == "too_long" and str(caught.value) == catalog.measure("messenger", "a" * 2001).refusal
    assert catalog.enforce_length("messenger", "a" * 2000).ok


# ---- reply windows ------------------------------------------------------------------------------

def test_whatsapp_allows_free_text_for_24_hours_then_only_templates():
    open_ = catalog.window_state("whatsapp", NOW - 23 * HOUR, NOW)
    assert open_.free_text and open_.left == HOUR and open_.templates
    closed = catalog.window_state("whatsapp", NOW - 25 * HOUR, NOW)
    assert not closed.free_text and not closed.human_agent and closed.left == -HOUR
    never = catalog.window_state("whatsapp", None, NOW)
    assert not never.free_text and not never.wrote


def test_meta_allows_a_human_agent_reply_until_day_7():
    state = catalog.window_state("messenger", NOW - 3 * DAY, NOW)
    assert not state.free_text and state.human_agent and state.human_agent_left == 4 * DAY
    assert not catalog.window_state("instagram", NOW - 8 * DAY, NOW).human_agent
    assert catalog.window_state("instagram", NOW - HOUR, NOW).free_text


def test_channels_without_a_window_always_allow_free_text():
    state = catalog.window_state("sms", None, NOW)
    assert state.free_text and state.hours is None and not state.human_agent


def test_every_channel_understands_the_opt_out_words():
    for entry in catalog.channels():
        assert {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"} <= entry.opt_out.stop_words, entry.id
        assert {"START", "UNSTOP"} <= entry.opt_out.start_words, entry.id


def test_an_sms_stop_ends_replies_too_and_is_confirmed_once_elsewhere_only_marketing_ends():
    sms = catalog.channel("sms").opt_out
    assert sms.withdraws == ("service", "marketing") and sms.acknowledge
    whatsapp = catalog.channel("whatsapp").opt_out
    assert whatsapp.withdraws == ("marketing",) and not whatsapp.acknowledge


def test_twilio_confirms_its_own_sms_words_and_nothing_else():
    twilio = catalog.account_kind("twilio")
    assert twilio.confirms("sms", "STOP") and twilio.confirms("sms", "START")
    assert not twilio.confirms("sms", "STOPP") and not twilio.confirms("whatsapp", "STOP")
    assert not catalog.account_kind("demo").confirms("sms", "STOP")


def test_a_keyword_is_the_whole_message_in_any_case_with_punctuation():
    sms = catalog.channel("sms").opt_out
    assert catalog.keyword(sms, " Stop! ") == "stop"
    assert catalog.keyword(sms, "please stop baking so well") is None
    assert catalog.keyword(sms, "unstop") == "start"
    assert catalog.keyword(sms, "STOPP") is None
    assert catalog.keyword(sms, "Stopp.", frozenset({"STOPP"})) == "stop"
    # An email's own words: above the quoted history and the signature.
    email = catalog.channel("email").opt_out
    assert catalog.keyword(email, "Unsubscribe\n\n-- \nMaria\n\nOn Mon, Ana wrote:\n> our menu") == "stop"
