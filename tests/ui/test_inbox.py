"""The split view, driven from the keyboard with Textual's Pilot on the demo workspace (80x24)."""

from __future__ import annotations

from pathlib import Path

import backends
import pytest

from console.config import ConfigError, parse
from console.model import Address, InboundMessage, PullResult
from console.store import ListFilter, Store
from console.sync import Engine
from console.ui.app import ConsoleApp
from console.ui.keys import binding_ids
from conftest import ready, until  # noqa: F401 - the demo fixtures live in conftest

SIZE = (80, 24)


async def test_opens_on_open_conversations_oldest_waiting_first(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        expected = store.list_rows(ListFilter("open"), 0, 5)
        assert [app.conversations.row_at(i).key for i in range(5)] == [r.key for r in expected]
        assert expected[0].since <= expected[1].since <= expected[2].since
        assert app.conversations.total == store.count_rows(ListFilter("open"))
        shown = {e.id for e in app.timeline.entries}
        assert shown == {e.id for e in store.timeline(expected[0].customer_id)}


async def test_moving_the_selection_follows_with_the_timeline(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        first = app.current.customer_id
        await pilot.press("j", "j")
        await until(pilot, lambda: app.conversations.cursor == 2, "the cursor on row 3")
        third = app.conversations.row_at(2).customer_id
        await until(pilot, lambda: app.timeline.entries and
                    {e.id for e in app.timeline.entries} == {e.id for e in store.timeline(third)}, "row 3's timeline")
        await pilot.press("k")
        await until(pilot, lambda: app.conversations.cursor == 1, "the cursor on row 2")
        await pilot.press("G")
        await until(pilot, lambda: app.conversations.cursor == app.conversations.total - 1, "the last row")
        await pilot.press("g")
        await until(pilot, lambda: app.current and app.current.customer_id == first, "the first row again")


async def test_a_customer_on_several_channels_has_one_timeline(demo):
    ws, store = demo
    multi = store.db.query_one(
        """SELECT customer_id FROM conversation WHERE status = 'open' GROUP BY customer_id
           HAVING COUNT(DISTINCT channel) > 1 LIMIT 1""")
    assert multi is not None, "the demo has customers writing on two channels"
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        for _ in range(app.conversations.total):
            if app.current.customer_id == multi[0]:
                break
            await pilot.press("j")
            await pilot.pause(0.01)
        await until(pilot, lambda: app.current.customer_id == multi[0] and
                    len({e.channel for e in app.timeline.entries}) > 1, "a two-channel timeline")


async def test_reply_is_queued_then_delivered_by_the_demo_channel(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        customer = app.current.customer_id
        await pilot.press("r")
        assert app.composer.display and app.composer.editor.has_focus
        await pilot.press(*"Yes, it will be ready at four.")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any(e.body == "Yes, it will be ready at four." for e in app.timeline.entries),
                    "the reply in the timeline")
        assert not app.composer.display
        reply = [e for e in app.timeline.entries if e.direction == "out"][-1]
        assert (reply.status, reply.author) == ("queued", ws.agent)

        # The engine, as its own process would, delivers the outbox through the demo adapter;
        # the app notices the other connection's commit and shows the new status.
        engine_store = Store(ws.store_location)
        await Engine(ws, engine_store).run(once=True)
        engine_store.close()
        await until(pilot, lambda: any(e.body == "Yes, it will be ready at four." and e.status in ("sent", "delivered")
                                       for e in app.timeline.entries), "the delivered status")
        assert app.current.customer_id == customer


async def test_escape_keeps_the_draft(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("r", *"half a dozen", "escape")
        assert not app.composer.display and app.conversations.has_focus
        await pilot.press("r")
        assert app.composer.editor.text == "half a dozen"


async def test_done_moves_to_the_next_and_reopen_brings_it_back(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        total = app.conversations.total
        first, second = app.conversations.row_at(0).customer_id, app.conversations.row_at(1).customer_id
        await pilot.press("e")
        await until(pilot, lambda: app.conversations.total == total - 1, "one row fewer")
        await until(pilot, lambda: app.current and app.current.customer_id == second, "the next customer selected")
        await pilot.press("D")
        await until(pilot, lambda: app.conversations.filter.status == "done" and app.current is not None,
                    "the Done tab")
        done = [row.customer_id for row in store.list_rows(ListFilter("done"), 0, 10_000)]
        await pilot.press(*["j"] * done.index(first))
        await until(pilot, lambda: app.current.customer_id == first, "the closed customer on the Done tab")
        await pilot.press("u")
        await pilot.press("O")
        await until(pilot, lambda: app.conversations.total == total, "the customer open again")


async def test_status_tabs_and_channel_filters(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("W")
        await until(pilot, lambda: app.conversations.total == store.count_rows(ListFilter("waiting"))
                    and app.current is not None, "the Waiting tab")
        await pilot.press("O", "1")
        channel = app.inbox.channels[0]
        await until(pilot, lambda: app.conversations.filter.channel == channel and app.current is not None,
                    "the first channel's filter")
        expected = store.count_rows(ListFilter("open", channel))
        await until(pilot, lambda: app.conversations.total == expected, "the filtered count")
        assert all(channel in app.conversations.row_at(i).channels for i in range(min(expected, 10)))
        await pilot.press("0")
        await until(pilot, lambda: app.conversations.filter.channel is None, "all channels again")


async def test_help_lists_every_binding_with_its_id(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        from console.ui.screens import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        listed = {ident for _, _, ident in app.screen.rows}
        assert binding_ids() <= listed
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_runs_an_action(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Waiting tab")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.conversations.filter.status == "waiting", "the Waiting tab from the palette")


async def test_snooze_hides_until_chosen_time(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        total = app.conversations.total
        await pilot.press("s")
        await pilot.pause(0.1)
        await pilot.press("enter")  # the first quick choice: in 1 hour
        await until(pilot, lambda: app.conversations.total == total - 1, "one row fewer")
        assert store.count_rows(ListFilter("snoozed")) >= 1


async def test_keys_can_be_remapped_by_binding_id(demo, tmp_path):
    ws, store = demo
    ws.keymap = {"conversation.done": "x", "customer.split": "X"}
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        total = app.conversations.total
        await pilot.press("e")
        await pilot.pause(0.2)
        assert app.conversations.total == total
        await pilot.press("x")
        await until(pilot, lambda: app.conversations.total == total - 1, "done through the remapped key")
@pytest.mark.one_backend
def test_unknown_binding_id_in_keymap_is_a_config_error(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[workspace]\nname = "x"\n\n[keymap]\n"conversation.dnoe" = "x"\n')
    ws = parse(path.read_text(), path)
    with pytest.raises(ConfigError) as err:
        ConsoleApp(ws, Store(tmp_path / "s.db"))
    assert f"{path}, line 5, key 'keymap.conversation.dnoe'" in str(err.value)


# ---- hostile customer text ------------------------------------------------------------------
HOSTILE_NAME = "Mallory [/x] [@click=app.quit]win[/] \x1b]0;pwned\x07"
HOSTILE_BODY = ("[link=https://evil.example]click[/link] [bold red]x \x1b[2J\x1bc \x9b31m "
                "\x1b]52;c;SGVsbG8=\x07 invoice\u202efdp.exe")


def hostile_store(path) -> Store:
    store = Store(path)
    store.apply_pull("demo", PullResult([InboundMessage(
        "evil-1", "evil", "email", "in", Address("email", "mallory@evil.example", HOSTILE_NAME),
        0.0, HOSTILE_BODY, subject="[/urgent] \x1b]0;title\x07 order")]))
    return store


def screen_text(app) -> str:
    """What the terminal shows, as plain text, line by line."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def flowing(screen: str) -> str:
    """Screen text with pane borders dropped and wrapped lines joined, to find long strings."""
    return " ".join(screen.translate({ord(c): " " for c in "▕▌▏│"}).split())


async def test_hostile_text_is_shown_as_data_in_every_widget(tmp_path):
    ws = parse('[workspace]\nname = "[b]Shop[/b]"\n')
    ws.data_dir = tmp_path
    backends.current.configure(ws)
    store = hostile_store(ws.store_location)
    app = ConsoleApp(ws, store)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        await pilot.press("r")
        await pilot.press(*"ok")
        await pilot.pause(0.2)
        screen = flowing(screen_text(app))
        assert app.is_running  # [@click=app.quit] did nothing
        for literal in ("[/x]", "[@click=app.quit]win[/]", "[link=https://evil.example]click[/link]",
                        "[bold red]", "[/urgent]", "invoice\u27e8RLO\u27e9fdp.exe", "[b]Shop[/b]"):
            assert literal in screen, literal
        for leaked in ("pwned", "SGVsbG8", "\x1b", "\x9b", "\u202e"):
            assert leaked not in screen


def test_no_escape_sequence_from_customer_text_reaches_the_terminal(tmp_path):
    """Run the real app on a pseudo-terminal and read every byte it writes."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    data = tmp_path / "data"
    data.mkdir()
    backend = backends.current
    hostile_store(backend.location() if backend.postgres else data / "console.db").close()
    config = tmp_path / "config.toml"
    config.write_text(f'[workspace]\nname = "Shop"\ndata_dir = "{data}"\n' + backend.toml())
    config.chmod(0o600)
    report = tmp_path / "painted"
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", CONSOLE_BENCH_REPORT=str(report), CONSOLE_BENCH_T0="0")
    proc = subprocess.Popen([sys.executable, "-m", "console", "--config", str(config)],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready_fds, _, _ = select.select([master], [], [], 0.1)
        if ready_fds:
            try:
                output += os.read(master, 65536)
            except OSError:
                break
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(master)
    assert report.exists(), output[-2000:]
    text = output.decode("utf-8", "replace")
    assert "Mallory" in text and "fdp.exe" in text  # the customer is on screen...
    for leaked in (b"\x1b]0;pwned", b"pwned", b"\x1b]52;", b"SGVsbG8", b"\x1b[2J", b"\x1bc", b"\xc2\x9b", b"\xe2\x80\xae"):
        assert leaked not in output, leaked  # ...and none of their control sequences
@pytest.mark.one_backend
def test_readme_key_table_lists_every_binding_id():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    ids = {i for i in binding_ids() if not i.startswith("list.channel_")} | {"list.channel_1", "list.channel_9"}
    missing = sorted(i for i in ids if f"`{i}`" not in readme)
    assert not missing, f"README's key table lacks: {missing}"


async def test_undo_send_stops_a_delayed_reply(demo):
    ws, store = demo
    ws.send_delay_seconds = 30
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("r", *"wrong customer!", "ctrl+s")
        await until(pilot, lambda: any(e.body == "wrong customer!" for e in app.timeline.entries), "the queued reply")
        await pilot.press("U")
        await until(pilot, lambda: any(e.body == "wrong customer!" and e.status == "failed"
                                       and e.status_detail == "cancelled" for e in app.timeline.entries),
                    "the cancelled reply")
    # nothing of the reply is due (the demo's own confirmation of an opt-out may be)
    assert "wrong customer!" not in [o.body for o in store.claim_due([a.name for a in ws.accounts])]


async def test_space_jumps_to_the_longest_waiting_customer(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        oldest = app.current.customer_id
        await pilot.press("W")
        await until(pilot, lambda: app.conversations.filter.status == "waiting" and app.current is not None
                    and app.current.customer_id != oldest, "the Waiting tab")
        await pilot.press("space")
        await until(pilot, lambda: app.current is not None and app.current.customer_id == oldest,
                    "the longest-waiting customer")
