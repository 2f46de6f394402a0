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


@pytest.mark.parametrize("text, where, says", [
    ('[business_hours]\ntimezone = "UTC"\nmonday = "09:00-17:00"\ntuesday = "9 to 5"\n',
     "line 4, key 'business_hours.tuesday'", "09:00-17:30"),
    ('[business_hours]\nmonday = "09:00-17:00"\ntimezone = "Europe/Atlantis"\n',
     "line 3, key 'business_hours.timezone'", "unknown time zone"),
    ('[[sla]]\nname = "a"\nfirst_response_minutes = 30\n\n[[sla]]\nname = "b"\ntags = ["vip"]\n',
     "key 'sla[1].first_response_minutes'", "at least one of"),
    ('[[sla]]\nname = "a"\nfirst_response_minutes = 30\naccounts = ["nope"]\n',
     "line 4, key 'sla[0].accounts'", "'nope'"),
    ('[[rules]]\nname = "x"\non = "message_deleted"\nadd_tag = ["a"]\n', "line 3, key 'rules[0].on'",
     "message_received"),
    ('[templates]\nhi = "Hi"\n\n[[rules]]\nname = "x"\non = "message_received"\nreply_template = "closed"\n',
     "line 7, key 'rules[0].reply_template'", "no template 'closed'"),
    ('[[rules]]\nname = "x"\non = "message_received"\ntext_matches = "order (\\\\d+"\nadd_tag = ["a"]\n',
     "line 4, key 'rules[0].text_matches'", "not a regular expression"),
    ('[notifications]\nlevel = "mine"\n[notifications.accounts]\nshop = "all"\n',
     "line 4, key 'notifications.accounts.shop'", "no account is named 'shop'"),
    ('[notifications]\nlevel = "loud"\n', "key 'notifications.level'", "all, mine, none"),
    ('[csat]\nquiet_hours = "night"\n', "key 'csat.quiet_hours'", "21:00-08:00"),
])
def test_errors_name_the_line_and_key(tmp_path, text, where, says):
    message = error(tmp_path, text)
    assert where in message and says in message


def test_a_time_rule_needs_its_delay_and_a_rule_needs_an_action(tmp_path):
    assert "after_minutes" in error(tmp_path, '[[rules]]\nname = "x"\non = "no_reply"\nadd_tag = ["a"]\n')
    assert "does nothing" in error(tmp_path, '[[rules]]\nname = "x"\non = "message_received"\nchannel = ["sms"]\n')


def test_without_the_sections_nothing_changes(tmp_path):
    ws = load(write(tmp_path, '[workspace]\nname = "Acme"\nresponse_target_minutes = 45\n'))
    assert not ws.business_hours.configured
    assert [p.name for p in ws.policies] == ["default"] and ws.policies[0].first_response == 45 * 60
    assert ws.rules == [] and ws.csat is None and ws.notifications.level == "mine"
