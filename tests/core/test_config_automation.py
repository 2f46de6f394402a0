"""The measuring and automation sections of the config: `[business_hours]`, `[[sla]]`, `[[rules]]`,
`[csat]`, `[notifications]` — read into typed settings, errors naming the file, line and key."""

from pathlib import Path

import pytest

from console.config import ConfigError, load

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(str(path))
    return str(err.value)


def test_the_example_documents_every_section():
    ws = load(EXAMPLE)
    assert ws.business_hours.configured and ws.business_hours.zone_name == "Europe/London"
    assert [p.name for p in ws.policies] == ["wholesale", "chat", "default"]
    assert [r.name for r in ws.rules] == ["wholesale", "after-hours", "share-the-work", "about-to-breach"]
    assert ws.csat is not None and ws.csat.quiet_hours == (21 * 60, 8 * 60)
    assert ws.notifications.level == "mine"


def test_bad_opening_hours_name_the_weekday_and_its_line(tmp_path):
    message = error(tmp_path, '[business_hours]\ntimezone = "UTC"\nmonday = "09:00-17:00"\ntuesday = "9 to 5"\n')
    assert "line 4, key 'business_hours.tuesday'" in message and "09:00-17:30" in message


def test_an_unknown_time_zone_is_named(tmp_path):
    message = error(tmp_path, '[business_hours]\nmonday = "09:00-17:00"\ntimezone = "Europe/Atlantis"\n')
    assert "line 3, key 'business_hours.timezone'" in message and "unknown time zone" in message


def test_an_sla_policy_without_a_target(tmp_path):
    message = error(tmp_path, '[[sla]]\nname = "a"\nfirst_response_minutes = 30\n\n[[sla]]\nname = "b"\n'
                              'tags = ["vip"]\n')
    assert "key 'sla[1].first_response_minutes'" in message and "at least one of" in message


def test_an_sla_policy_for_an_account_that_does_not_exist(tmp_path):
    message = error(tmp_path, '[[sla]]\nname = "a"\nfirst_response_minutes = 30\naccounts = ["nope"]\n')
    assert "line 4, key 'sla[0].accounts'" in message and "'nope'" in message


def test_a_rule_on_an_unknown_event(tmp_path):
    message = error(tmp_path, '[[rules]]\nname = "x"\non = "message_deleted"\nadd_tag = ["a"]\n')
    assert "line 3, key 'rules[0].on'" in message and "message_received" in message


def test_a_rule_that_replies_with_a_missing_template(tmp_path):
    message = error(tmp_path, '[templates]\nhi = "Hi"\n\n[[rules]]\nname = "x"\non = "message_received"\n'
                              'reply_template = "closed"\n')
    assert "line 7, key 'rules[0].reply_template'" in message and "no template 'closed'" in message


def test_a_time_rule_needs_its_delay_and_a_rule_needs_an_action(tmp_path):
    assert "after_minutes" in error(tmp_path, '[[rules]]\nname = "x"\non = "no_reply"\nadd_tag = ["a"]\n')
    assert "does nothing" in error(tmp_path, '[[rules]]\nname = "x"\non = "message_received"\nchannel = ["sms"]\n')


def test_a_bad_regular_expression_is_named(tmp_path):
    message = error(tmp_path, '[[rules]]\nname = "x"\non = "message_received"\ntext_matches = "order (\\\\d+"\n'
                              'add_tag = ["a"]\n')
    assert "line 4, key 'rules[0].text_matches'" in message and "not a regular expression" in message


def test_csat_quiet_hours_and_notification_levels(tmp_path):
    assert "key 'csat.quiet_hours'" in error(tmp_path, '[csat]\nquiet_hours = "night"\n')
    message = error(tmp_path, '[notifications]\nlevel = "mine"\n[notifications.accounts]\nshop = "all"\n')
    assert "line 4, key 'notifications.accounts.shop'" in message and "no account is named 'shop'" in message
    assert "key 'notifications.level'" in error(tmp_path, '[notifications]\nlevel = "loud"\n')


def test_without_the_sections_nothing_changes(tmp_path):
    ws = load(write(tmp_path, '[workspace]\nname = "Acme"\nresponse_target_minutes = 45\n'))
    assert not ws.business_hours.configured
    assert [p.name for p in ws.policies] == ["default"] and ws.policies[0].first_response == 45 * 60
    assert ws.rules == [] and ws.csat is None and ws.notifications.level == "mine"
