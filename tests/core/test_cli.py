"""The command line: how to start, sync --once, check, export/import, errors as one sentence."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def console(*args, env=None, cwd=None, stdin=None):
    environment = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True,
                          env=environment, cwd=cwd, input=stdin, timeout=120)


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[workspace]\nname = "Test shop"\ndata_dir = "{tmp_path / "data"}"\n' + body)
    path.chmod(0o600)
    return path


DEMO = '[[accounts]]\nkind = "demo"\nname = "demo"\nchannels = ["sms", "email"]\nchatter = false\n'


def test_version_and_module_entry_point():
    done = console("--version")
    assert done.returncode == 0 and done.stdout.startswith("console ")


def test_without_config_it_says_how_to_start(tmp_path):
    done = console(env={"CONSOLE_CONFIG": str(tmp_path / "missing.toml")})
    assert done.returncode == 1
    assert "console --demo" in done.stdout and "config.example.toml" in done.stdout
    assert "Traceback" not in done.stderr


def test_bad_config_is_one_line_naming_file_line_and_key(tmp_path):
    path = write_config(tmp_path, '[[accounts]]\nkind = "demo"\nname = "x"\nchannels = "sms"\n')
    done = console("--config", str(path), "check")
    assert done.returncode != 0
    assert f"{path}, line 7, key 'accounts[0].channels'" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_missing_config_given_explicitly_is_an_error(tmp_path):
    done = console("--config", str(tmp_path / "nope.toml"), "sync", "--once")
    assert done.returncode == 2 and "file not found" in done.stderr


def test_sync_once_pulls_and_exits_zero(tmp_path):
    path = write_config(tmp_path, DEMO)
    done = console("--config", str(path), "sync", "--once")
    assert done.returncode == 0, done.stderr
    lines = console("--config", str(path), "export").stdout.splitlines()
    assert sum(json.loads(line)["type"] == "message" for line in lines) > 100


def test_sync_once_fails_naming_the_failing_account(tmp_path):
    body = DEMO + '[[accounts]]\nkind = "demo"\nname = "broken"\nchannels = ["fax"]\n'
    path = write_config(tmp_path, body)
    done = console("--config", str(path), "sync", "--once")
    assert done.returncode == 1
    assert "account 'broken' failed" in done.stderr
    assert "Traceback" not in done.stderr


def test_second_sync_process_refuses_while_one_runs(tmp_path):
    path = write_config(tmp_path, DEMO)
    first = subprocess.Popen([sys.executable, "-m", "console", "--config", str(path), "sync"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / "data" / "sync.lock"
        for _ in range(200):
            if lock.exists() and lock.read_text().strip() == str(first.pid):
                break
            subprocess.run(["sleep", "0.05"])
        second = console("--config", str(path), "sync", "--once")
        assert second.returncode == 3
        assert f"another process (pid {first.pid}) is already syncing" in second.stderr
    finally:
        first.terminate()
        first.wait(timeout=20)
    assert first.returncode == 0  # SIGTERM is a clean stop


def test_check_prints_a_table_and_fails_on_a_bad_account(tmp_path):
    path = write_config(tmp_path, DEMO)
    done = console("--config", str(path), "check")
    assert done.returncode == 0 and "demo" in done.stdout and "ok" in done.stdout
    path = write_config(tmp_path, DEMO + '[[accounts]]\nkind = "demo"\nname = "b"\nchannels = ["fax"]\n')
    done = console("--config", str(path), "check")
    assert done.returncode == 1 and "FAILED" in done.stdout


def test_export_import_round_trip_through_the_cli(tmp_path):
    path = write_config(tmp_path, DEMO)
    assert console("--config", str(path), "sync", "--once").returncode == 0
    from console.config import load
    from console.store import Store

    store = Store(load(path).store_path)  # the triage data is part of a complete backup
    store.add_tag(1, "wholesale")
    store.add_note(1, "ana", "Pays by invoice")
    store.save_draft(1, "ana", "Half an answer")
    store.save_template("ready", "Hi {first_name}, it is ready")
    store.close()
    dump = console("--config", str(path), "export").stdout
    for kind in ("tag", "note", "draft", "template"):
        assert f'"type": "{kind}"' in dump
    other = tmp_path / "other"
    other.mkdir()
    other_config = write_config(other, "")
    done = console("--config", str(other_config), "import", "-", stdin=dump)
    assert done.returncode == 0, done.stderr
    assert console("--config", str(other_config), "export").stdout == dump


def test_export_since_a_date_and_a_bad_date(tmp_path):
    path = write_config(tmp_path, DEMO)
    console("--config", str(path), "sync", "--once")
    everything = console("--config", str(path), "export").stdout.count('"type": "message"')
    recent = console("--config", str(path), "export", "--since", "2999-01-01").stdout.count('"type": "message"')
    assert everything > 0 and recent == 0
    done = console("--config", str(path), "export", "--since", "last tuesday")
    assert done.returncode == 2 and "expected a date like 2026-11-01" in done.stderr


def test_import_of_a_broken_file_changes_nothing(tmp_path):
    path = write_config(tmp_path, "")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "customer", "id": 1, "name": "A", "created_at": 0, "updated_at": 0}\nnot json\n')
    done = console("--config", str(path), "import", str(bad))
    assert done.returncode == 2 and "line 2: not an export record; nothing was imported" in done.stderr
    assert console("--config", str(path), "export").stdout.splitlines() == [
        '{"type": "end", "counts": {}, "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}']


def test_export_into_a_pipe_closed_early_says_nothing(tmp_path):
    path = write_config(tmp_path, DEMO)
    assert console("--config", str(path), "sync", "--once").returncode == 0
    done = subprocess.run(f"{sys.executable} -m console --config {path} export | head -2", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert len(done.stdout.splitlines()) == 2
    assert done.stderr == "", done.stderr


def test_import_of_random_bytes_is_one_line(tmp_path):
    path = write_config(tmp_path, "")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 40)
    done = console("--config", str(path), "import", str(junk))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "nothing was imported" in done.stderr


def test_an_export_cut_short_imports_nothing(tmp_path):
    path = write_config(tmp_path, DEMO)
    assert console("--config", str(path), "sync", "--once").returncode == 0
    dump = console("--config", str(path), "export").stdout.splitlines(keepends=True)
    assert '"type": "end"' in dump[-1]
    other = tmp_path / "other"
    other.mkdir()
    other_config = write_config(other, "")
    half = "".join(dump[: len(dump) // 2])  # cut at a line boundary
    done = console("--config", str(other_config), "import", "-", stdin=half)
    assert done.returncode == 2 and "without its last line" in done.stderr, done.stderr
    assert console("--config", str(other_config), "export").stdout.count("\n") == 1  # only its own end line
    edited = "".join(dump).replace('"name": "', '"name": "X', 1)
    done = console("--config", str(other_config), "import", "-", stdin=edited)
    assert done.returncode == 2 and "do not match" in done.stderr, done.stderr


def test_sync_once_says_what_it_did_per_account(tmp_path):
    path = write_config(tmp_path, DEMO + '[[accounts]]\nkind = "demo"\nname = "chat"\nchannels = ["telegram"]\n'
                                         'chatter = false\n')
    done = console("--config", str(path), "sync", "--once")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("demo: ok, ") and lines[1].startswith("chat: ok, ")
    assert "new messages" in lines[0]


def test_help_names_the_config_and_the_logs():
    done = console("--help", env={"CONSOLE_CONFIG": "/somewhere/shop.toml"})
    assert done.returncode == 0
    assert "/somewhere/shop.toml" in done.stdout and "errors.log" in done.stdout


def test_a_secret_command_that_prints_nothing_names_file_line_and_key(tmp_path):
    body = ('[[accounts]]\nkind = "telegram"\nname = "bot"\nbot_token_cmd = "true"\n')
    path = write_config(tmp_path, body)
    from console.config import load

    import pytest

    from console.config import ConfigError

    ws = load(path)
    with pytest.raises(ConfigError) as error:
        ws.accounts[0].secret("bot_token").get()
    message = str(error.value)
    assert f"{path}, line 7, key 'accounts[0].bot_token_cmd'" in message and "printed nothing" in message


KEYMAP = '[keymap]\n"conversation.done" = "e,x"\n"app.search" = "ctrl+shift+banana"\n"conversation.dnoe" = "z"\n'


@pytest.mark.postgres_only
def test_check_tests_the_store_database_and_names_a_refused_login(tmp_path, backend):
    path = write_config(tmp_path, DEMO + backend.toml())
    done = console("--config", str(path), "check")
    assert done.returncode == 0, done.stderr
    assert "schema" in done.stdout and "owner" in done.stdout
    url = backend.location().rsplit("/", 1)[0] + "/nosuchdb"
    done = console("--config", str(write_config(tmp_path, DEMO + f'[store]\nurl = "{url}"\n')), "check")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "console: [store]:" in done.stderr and "nosuchdb" in done.stderr


def test_check_reports_every_keymap_problem_with_file_line_and_key(tmp_path):
    path = write_config(tmp_path, DEMO + KEYMAP)
    done = console("--config", str(path), "check")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "keymap" in line]
    assert any(f"{path}, line 10, key 'keymap.conversation.done': x is already the key of customer.split" in e
               for e in errors), done.stderr
    assert any(f"{path}, line 11, key 'keymap.app.search': 'banana'" in e for e in errors), done.stderr
    assert any(f"{path}, line 12, key 'keymap.conversation.dnoe': unknown binding id" in e for e in errors), done.stderr


def test_the_app_refuses_to_start_on_a_bad_keymap_saying_where(tmp_path):
    path = write_config(tmp_path, DEMO + KEYMAP)
    done = console("--config", str(path))
    assert done.returncode == 2
    assert f"{path}, line 10, key 'keymap.conversation.done'" in done.stderr
    assert "Traceback" not in done.stderr


def test_outreach_commands_cut_short_by_head_end_without_a_traceback(tmp_path, seeded_demo):
    """`console campaign report NAME | head -1` printed a BrokenPipeError traceback."""
    import shutil

    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    (tmp_path / "console" / "demo").mkdir(parents=True)
    shutil.copy(seeded_demo, tmp_path / "console" / "demo" / "console.db")  # the demo, furnished
    console = Path(sys.executable).with_name("console")
    for command in (["campaign", "report", "Pumpkin week"], ["campaign", "preview", "Spring menu"],
                    ["consent", "export"]):
        reader, writer = os.pipe()
        os.close(reader)  # the reader is gone before the first line, as `head` is after its last
        done = subprocess.run([str(console), "--demo", *command], stdout=writer, stderr=subprocess.PIPE, text=True,
                              env=env, timeout=120)
        os.close(writer)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (command, done.stderr[-2000:])
