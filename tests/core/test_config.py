"""Configuration: typed settings, and errors that name the file, the line and the key."""

from pathlib import Path

import pytest

from console.config import ConfigError, Secret, default_config_path, load, parse


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_workspace_settings_are_read(tmp_path):
    ws = load(write(tmp_path, '[workspace]\nname = "Acme"\nagent = "ana"\ndefault_region = "gb"\n'
                              f'data_dir = "{tmp_path}/data"\n'))
    assert (ws.name, ws.agent, ws.default_region, ws.data_dir) == ("Acme", "ana", "GB", tmp_path / "data")


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, '[workspace]\nname = "Acme"\nagent = ana\n')
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}, line 3: not valid TOML")


def test_wrong_type_names_the_line_and_key(tmp_path):
    path = write(tmp_path, '[workspace]\nname = "Acme"\n\nresponse_target_minutes = "soon"\n')
    with pytest.raises(ConfigError) as err:
        load(path)
    assert f"{path}, line 4, key 'workspace.response_target_minutes'" in str(err.value)


def test_unknown_account_kind_points_at_its_line(tmp_path):
    text = ('[[accounts]]\nkind = "demo"\nname = "a"\nchannels = ["sms"]\n\n'
            '[[accounts]]\nname = "b"\nkind = "fax"\n')
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, text))
    assert "line 8, key 'accounts[1].kind'" in str(err.value)
    assert "fax" in str(err.value)


def test_account_getters_report_the_line_of_the_bad_key(tmp_path):
    text = '[[accounts]]\nkind = "demo"\nname = "a"\nchannels = ["sms"]\nport = "x"\n'
    ws = load(write(tmp_path, text))
    with pytest.raises(ConfigError) as err:
        ws.accounts[0].int("port")
    assert "line 5, key 'accounts[0].port': expected a whole number" in str(err.value)


def test_duplicate_account_names_are_refused(tmp_path):
    text = '[[accounts]]\nkind = "demo"\nname = "a"\n[[accounts]]\nkind = "demo"\nname = "a"\n'
    with pytest.raises(ConfigError, match="two accounts are named 'a'"):
        load(write(tmp_path, text))


def test_unknown_top_level_key_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="key 'acounts'"):
        load(write(tmp_path, 'acounts = 1\n'))


def test_missing_file_says_how_to_start(tmp_path):
    with pytest.raises(ConfigError, match="copy config.example.toml"):
        load(tmp_path / "nope.toml")


def test_secret_from_command_and_env_resolved_at_use(tmp_path, monkeypatch):
    text = ('[[accounts]]\nkind = "demo"\nname = "a"\npassword_cmd = "echo s3cret"\n'
            '[[accounts]]\nkind = "demo"\nname = "b"\npassword_env = "CONSOLE_TEST_PW"\n')
    ws = load(write(tmp_path, text))
    first, second = ws.accounts[0].secret("password"), ws.accounts[1].secret("password")
    assert first.get() == "s3cret"
    assert "s3cret" not in repr(first)
    with pytest.raises(ConfigError, match="CONSOLE_TEST_PW is not set"):
        second.get()
    monkeypatch.setenv("CONSOLE_TEST_PW", "pw2")
    assert second.get() == "pw2"


def test_failing_secret_command_does_not_leak_output(tmp_path):
    secret = Secret("cmd", "sh -c 'echo hunter2; exit 3'", "accounts[0].password_cmd")
    with pytest.raises(ConfigError) as err:
        secret.get()
    assert "status 3" in str(err.value) and "hunter2" not in str(err.value)


def test_two_sources_for_one_secret_are_refused(tmp_path):
    text = '[[accounts]]\nkind = "demo"\nname = "a"\npassword_cmd = "x"\npassword_env = "Y"\n'
    ws = load(write(tmp_path, text))
    with pytest.raises(ConfigError, match="give only one of"):
        ws.accounts[0].secret("password")


def test_inline_secret_in_a_file_others_can_read_is_warned_about(tmp_path):
    text = '[[accounts]]\nkind = "demo"\nname = "a"\npassword = "hunter2"\n'
    assert load(write(tmp_path, text, 0o600)).warnings == []
    warnings = load(write(tmp_path, text, 0o644)).warnings
    assert len(warnings) == 1 and "chmod 600" in warnings[0] and "hunter2" not in warnings[0]


def test_console_config_env_overrides_default_path(monkeypatch, tmp_path):
    monkeypatch.setenv("CONSOLE_CONFIG", str(tmp_path / "x.toml"))
    assert default_config_path() == tmp_path / "x.toml"


def test_example_config_parses_and_every_account_configures(tmp_path, monkeypatch):
    """config.example.toml is the reference: it must load, and each account must be accepted."""
    from console.channels import open_channel

    example = Path(__file__).parents[2] / "config.example.toml"
    ws = parse(example.read_text(), example)
    every = ws.accounts + ws.disabled_accounts
    assert {a.kind for a in every} >= {"demo"}, "the example documents every kind of account"
    for account in every:
        open_channel(account, ws)


def test_the_config_knows_the_regions_phone_numbers_can_be_read_for():
    import phonenumbers

    from console.regions import SUPPORTED_REGIONS

    assert SUPPORTED_REGIONS == phonenumbers.SUPPORTED_REGIONS  # regenerate console/regions.py if not
