"""The Textual app: the split view over the store.

The app reads the store in thread workers and writes intents to it (reply, done, reopen, snooze);
it never calls a channel. It notices other processes' commits through `PRAGMA data_version`
twice a second, and starts the sync engine as a separate process when nobody runs one.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from console.config import ConfigError, WorkspaceConfig
from console.store import ListFilter, ListRow, OptedOut, Store
from console.sync import SyncLock
from console.ui.commands import ConsoleCommands
from console.ui.composer import Composer, Target
from console.ui.conversation_list import ConversationList
from console.ui.render import CHANNEL_NAMES, STATE_MARKS, icon, safe_line
from console.ui.screens import HelpScreen, SnoozeScreen
from console.ui.timeline import CustomerHeader, Timeline

log = logging.getLogger("console.ui")

STATUS_TABS = ("open", "waiting", "snoozed", "done")
STATUS_LABELS = {"open": "Open", "waiting": "Waiting", "snoozed": "Snoozed", "done": "Done"}


class ConsoleApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "console"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("tab", "switch_pane", "Switch pane", id="app.switch_pane", show=False),
        Binding("enter", "open", "Open", id="conversation.open"),
        Binding("r", "reply", "Reply", id="conversation.reply"),
        Binding("c", "compose_new", "New message", id="conversation.new", show=False),
        Binding("e", "done", "Done", id="conversation.done"),
        Binding("u", "reopen", "Reopen", id="conversation.reopen"),
        Binding("s", "snooze", "Snooze", id="conversation.snooze"),
        Binding("space", "next_waiting", "Next needing a reply", id="conversation.next_waiting", show=False),
        Binding("U", "undo_send", "Undo the last send", id="conversation.undo_send", show=False),
        Binding("right_square_bracket", "cycle_status(1)", "Next tab", id="list.next_tab", show=False),
        Binding("left_square_bracket", "cycle_status(-1)", "Previous tab", id="list.previous_tab", show=False),
        Binding("O", "show_status('open')", "Open tab", id="list.open", show=False),
        Binding("W", "show_status('waiting')", "Waiting tab", id="list.waiting", show=False),
        Binding("Z", "show_status('snoozed')", "Snoozed tab", id="list.snoozed", show=False),
        Binding("D", "show_status('done')", "Done tab", id="list.done", show=False),
        Binding("v", "toggle_grouping", "By customer / by thread", id="list.grouping", show=False),
        Binding("0", "channel_filter(0)", "All channels", id="list.all_channels", show=False),
        *[Binding(str(n), f"channel_filter({n})", f"Channel filter {n}", id=f"list.channel_{n}", show=False)
          for n in range(1, 10)],
    ]

    def __init__(self, workspace: WorkspaceConfig, store: Store, engine_args: list[str] | None = None):
        super().__init__()
        self.workspace = workspace
        self.store = store
        self.engine_args = engine_args
        self.engine: subprocess.Popen | None = None
        self.drafts: dict[int, str] = {}
        self._last_sent: int | None = None
        self.current: ListRow | None = None
        self.channels: list[str] = []
        self._data_version = store.data_version()
        self._started = time.perf_counter()
        self.title = workspace.name
        keymap_errors = [key for key in workspace.keymap if key not in self.binding_ids()]
        if keymap_errors:
            key = keymap_errors[0]
            raise ConfigError("unknown binding id; `?` in the app and the README's key table list the ids",
                              workspace.path, workspace.keymap_lines.get(key), f"keymap.{key}")
        self.set_keymap(workspace.keymap)

    @classmethod
    def binding_ids(cls) -> set[str]:
        ids = set()
        for owner in (cls, ConversationList, Timeline, Composer):
            ids.update(b.id for b in owner.BINDINGS if isinstance(b, Binding) and b.id)
        return ids

    # ---- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Static(id="tabs")
                yield ConversationList(self.store, self.workspace.response_target_minutes, id="conversations")
            with Vertical(id="right"):
                yield CustomerHeader(id="customer")
                yield Timeline(id="timeline")
                yield Composer(id="composer")
        yield Footer()

    @property
    def conversations(self) -> ConversationList:
        return self.query_one(ConversationList)

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    def on_mount(self) -> None:
        self.composer.display = False
        self.query_one(CustomerHeader).clear()
        self.conversations.focus()
        self.conversations.reload()
        self.load_header()
        self.load_channels()
        self.set_interval(0.5, self.poll_store)
        self.set_interval(30, self.load_header)
        if self.engine_args is not None:
            self.ensure_engine()
            self.set_interval(5, self.ensure_engine)
        self._benchmark_report = os.environ.get("CONSOLE_BENCH_REPORT")

    def _exit_for_benchmark(self) -> None:
        """bench/startup.py: report seconds from spawn to the first full screen, then exit."""
        with open(self._benchmark_report, "w") as report:
            report.write(f"{time.time() - float(os.environ['CONSOLE_BENCH_T0']):.4f}")
        self.exit()

    # ---- the store changed --------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="poll", exclusive=True)
    def poll_store(self) -> None:
        version = self.store.data_version()
        if version != self._data_version:
            self._data_version = version
            self.call_from_thread(self.refresh_all)

    def refresh_all(self) -> None:
        self.conversations.reload()
        self.load_header()
        if self.current is not None:
            self.load_timeline(self.current)

    @work(thread=True, exit_on_error=False, group="header", exclusive=True)
    def load_header(self) -> None:
        states = self.store.account_states()
        text = Text()
        text.append_text(safe_line(self.workspace.name, 40, style="bold"))
        text.append(" ─", style="dim")
        for state in states:
            style = {"ok": "green", "syncing": "cyan", "retrying": "yellow"}.get(state.state, "red")
            text.append(f" {STATE_MARKS.get(state.state, '•')} ", style=style)
            text.append_text(safe_line(state.name, 20))
            if state.progress:
                done, total = state.progress
                text.append(f" {done:,} / {total:,}", style="cyan")
            elif state.state not in ("ok", "syncing", "idle"):
                text.append(" (")
                text.append_text(safe_line(state.detail or state.state, 40, style=style))
                text.append(")")
        text.append(f"   {self.workspace.agent} · {time.strftime('%H:%M')}", style="dim")
        self.call_from_thread(self.query_one("#header", Static).update, text)

    @work(thread=True, exit_on_error=False, group="channels")
    def load_channels(self) -> None:
        channels = self.store.channels_in_use()
        self.call_from_thread(setattr, self, "channels", channels)
        self.call_from_thread(self.update_tabs, None)

    def update_tabs(self, counts: dict[str, int] | None) -> None:
        if counts is not None:
            self._counts = counts
        counts = getattr(self, "_counts", {})
        flt = self.conversations.filter
        text = Text()
        for number, status in enumerate(STATUS_TABS):
            if number:
                text.append(" ")
            label = f"{STATUS_LABELS[status]} {counts.get(status, '…')}"
            text.append(label, style="bold reverse" if status == flt.status else "")
        if flt.channel:
            text.append(f"  {icon(flt.channel)} {CHANNEL_NAMES.get(flt.channel, flt.channel)}", style="bold")
        if not flt.by_customer:
            text.append("  threads", style="dim")
        self.query_one("#tabs", Static).update(text)

    def on_conversation_list_counted(self, message: ConversationList.Counted) -> None:
        self.update_tabs(message.counts)

    # ---- selection and timeline ---------------------------------------------------------------
    def on_conversation_list_highlighted(self, message: ConversationList.Highlighted) -> None:
        previous = self.current
        self.current = message.row
        if message.row is None:
            self.query_one(CustomerHeader).clear()
            self.timeline.clear()
            return
        if self.composer.display and previous and previous.customer_id != message.row.customer_id:
            self.close_composer()
        self.load_timeline(message.row)

    @work(thread=True, exit_on_error=False, group="timeline", exclusive=True)
    def load_timeline(self, row: ListRow) -> None:
        identities = self.store.identities(row.customer_id)
        name = self.store.customer_name(row.customer_id)
        entries = self.store.timeline(row.customer_id)
        self.call_from_thread(self._show_timeline, row, name, identities, entries)

    def _show_timeline(self, row, name, identities, entries) -> None:
        if self.current is None or self.current.customer_id != row.customer_id:
            return
        self.query_one(CustomerHeader).show(name, identities)
        self.timeline.show(entries, row.conversation_id)
        if self._benchmark_report:
            self.call_after_refresh(self._exit_for_benchmark)

    # ---- actions ------------------------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.binding_rows()))

    def binding_rows(self) -> list[tuple[str, str, str]]:
        """(keys, description, id) for every binding, with the user's remapping applied."""
        rows = []
        seen = set()
        for owner in (ConsoleApp, ConversationList, Timeline, Composer):
            for binding in owner.BINDINGS:
                if not isinstance(binding, Binding) or not binding.id or binding.id in seen:
                    continue
                seen.add(binding.id)
                keys = self.workspace.keymap.get(binding.id, binding.key)
                display = ", ".join(self.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))
                rows.append((display, binding.description, binding.id))
        rows.append((self.get_key_display(Binding("ctrl+p", "")), "Command palette", "app.command_palette"))
        return rows

    def action_switch_pane(self) -> None:
        if self.composer.display and not self.composer.editor.has_focus and self.timeline.has_focus:
            self.composer.editor.focus()
        elif self.conversations.has_focus:
            self.timeline.focus()
        else:
            self.conversations.focus()

    def action_open(self) -> None:
        if self.current is not None:
            self.timeline.focus()

    def action_cycle_status(self, step: int) -> None:
        index = STATUS_TABS.index(self.conversations.filter.status)
        self.action_show_status(STATUS_TABS[(index + step) % len(STATUS_TABS)])

    def action_show_status(self, status: str) -> None:
        flt = self.conversations.filter
        self.conversations.set_filter(ListFilter(status, flt.channel, flt.by_customer, flt.assignee))
        self.update_tabs(None)
        self.conversations.focus()

    def action_channel_filter(self, number: int) -> None:
        flt = self.conversations.filter
        if number and number > len(self.channels):
            self.notify(Text(f"There is no channel {number}; channels here: "
                             + ", ".join(f"{n} {CHANNEL_NAMES.get(c, c)}" for n, c in enumerate(self.channels, 1))))
            return
        channel = self.channels[number - 1] if number else None
        self.conversations.set_filter(ListFilter(flt.status, channel, flt.by_customer, flt.assignee))
        self.update_tabs(None)

    def action_toggle_grouping(self) -> None:
        flt = self.conversations.filter
        self.conversations.set_filter(ListFilter(flt.status, flt.channel, not flt.by_customer, flt.assignee))
        self.update_tabs(None)

    def _set_status(self, status: str, from_statuses: tuple[str, ...], snooze_until: float | None = None) -> None:
        row = self.current
        if row is None:
            self.bell()
            return
        self._write_status(row, status, from_statuses, snooze_until, self.conversations.filter.by_customer)

    @work(thread=True, exit_on_error=False, group="write")
    def _write_status(self, row: ListRow, status: str, from_statuses: tuple[str, ...],
                      snooze_until: float | None, by_customer: bool) -> None:
        if by_customer:
            changed = self.store.set_status(status, customer_id=row.customer_id, from_statuses=from_statuses,
                                            snooze_until=snooze_until)
        else:
            changed = self.store.set_status(status, conversation_id=row.conversation_id,
                                            from_statuses=from_statuses, snooze_until=snooze_until)
        if changed:
            self.call_from_thread(self.notify, Text.assemble(safe_line(row.name, 40),
                                                             f": {STATUS_LABELS[status].lower()}"), timeout=2)
        self.call_from_thread(self._status_written)

    def _status_written(self) -> None:
        self.conversations.release()
        self.conversations.reload()

    def action_next_waiting(self) -> None:
        """Jump to the customer who has waited longest for a reply (the Open tab, all channels)."""
        flt = self.conversations.filter
        if flt.status != "open" or flt.channel is not None:
            self.conversations.set_filter(ListFilter("open", None, flt.by_customer, flt.assignee))
            self.update_tabs(None)
        else:
            self.conversations.cursor = 0
        self.conversations.focus()

    def action_undo_send(self) -> None:
        if self._last_sent is None:
            self.notify("Nothing to undo: no reply is waiting in the outbox.")
            return
        self._cancel(self._last_sent)

    @work(thread=True, exit_on_error=False, group="write")
    def _cancel(self, message_id: int) -> None:
        if self.store.cancel_send(message_id):
            self._last_sent = None
            self.call_from_thread(self.notify, "Send undone: the reply stays in the timeline as cancelled.")
            self.call_from_thread(self.refresh_all)
        else:
            self.call_from_thread(self.notify, "Too late to undo: the reply has already left.", severity="warning")

    def action_done(self) -> None:
        self._set_status("done", ("open", "waiting", "snoozed"))

    def action_reopen(self) -> None:
        self._set_status("open", ("waiting", "snoozed", "done"))

    def action_snooze(self) -> None:
        if self.current is None:
            self.bell()
            return

        def chosen(until: float | None) -> None:
            if until is not None:
                self._set_status("snoozed", ("open", "waiting", "done"), snooze_until=until)

        self.push_screen(SnoozeScreen(), chosen)

    # ---- replying -----------------------------------------------------------------------------
    def action_reply(self) -> None:
        self._open_composer(all_channels=False)

    def action_compose_new(self) -> None:
        self._open_composer(all_channels=True)

    def _open_composer(self, all_channels: bool) -> None:
        row = self.current
        if row is None:
            self.bell()
            return
        targets = [
            Target(t["account"], t["channel"], t["identity_id"], t["address"], bool(t["opted_out"]),
                   t["conversation_id"])
            for t in self.store.reply_targets(row.customer_id)
        ]
        # reply_targets lists the customer's last-used channel first; skip opted-out ones.
        index = next((n for n, t in enumerate(targets) if not t.opted_out), 0)
        if all_channels and len(targets) > 1:
            index = (index + 1) % len(targets)
        self.composer.open(targets, self.drafts.get(row.customer_id, ""), index)

    def close_composer(self) -> None:
        if self.current is not None:
            text = self.composer.editor.text
            if text.strip():
                self.drafts[self.current.customer_id] = text
            else:
                self.drafts.pop(self.current.customer_id, None)
        self.composer.display = False
        self.conversations.focus()

    def on_composer_closed(self, message: Composer.Closed) -> None:
        self.close_composer()

    def on_composer_send(self, message: Composer.Send) -> None:
        row = self.current
        if row is None:
            return
        target = message.target
        subject = ""
        if target.channel == "email" and target.conversation_id is not None:
            conv = self.store.conversation(target.conversation_id)
            base = (conv["subject"] if conv else "") or ""
            subject = base if base.lower().startswith("re:") else (f"Re: {base}" if base else "")
        self._enqueue(row, target, message.body, subject)

    @work(thread=True, exit_on_error=False, group="write")
    def _enqueue(self, row: ListRow, target: Target, body: str, subject: str) -> None:
        try:
            message_id = self.store.enqueue_reply(
                target.identity_id, target.account, target.channel, body, subject=subject,
                author=self.workspace.agent, conversation_id=target.conversation_id,
                delay=self.workspace.send_delay_seconds,
            )
        except OptedOut as exc:
            self.call_from_thread(self.notify, Text(str(exc)), severity="error")
            return
        self.call_from_thread(self._sent, row, target, message_id)

    def _sent(self, row: ListRow, target: Target, message_id: int) -> None:
        self._last_sent = message_id
        self.drafts.pop(row.customer_id, None)
        self.composer.editor.load_text("")
        self.composer.display = False
        self.conversations.focus()
        delay = self.workspace.send_delay_seconds
        note = Text.assemble("Reply to ", safe_line(row.name, 40), " queued on ",
                             CHANNEL_NAMES.get(target.channel, target.channel))
        if delay:
            note.append(f"; it leaves in {delay:g} s (U to undo)")
        self.notify(note, timeout=max(3.0, delay))
        self.conversations.reload()
        self.load_timeline(row)

    # ---- the sync engine ----------------------------------------------------------------------
    def ensure_engine(self) -> None:
        """Start `console sync` in its own process when no process syncs this workspace."""
        if not self.workspace.accounts:
            return
        if self.engine is not None and self.engine.poll() is None:
            return
        if SyncLock(self.workspace.data_dir).holder() is not None:
            return
        log_path = Path(self.workspace.data_dir) / "engine.out"
        with open(log_path, "ab") as out:
            self.engine = subprocess.Popen(
                [sys.executable, "-m", "console", "sync", *self.engine_args, "--parent-pid", str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            )
        log.info("started the sync engine, pid %s", self.engine.pid)

    def on_unmount(self) -> None:
        if self.engine is not None and self.engine.poll() is None:
            self.engine.terminate()
