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
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from console.config import ConfigError, WorkspaceConfig
from console.store import ListRow, OptedOut, Presence, Store
from console.sync import SyncLock
from console.ui.commands import ConsoleCommands
from console.ui.composer import Composer, Target
from console.ui.conversation_list import ConversationList
from console.ui.render import CHANNEL_NAMES, STATE_MARKS, icon, safe_line, when
from console.store.triage import parse_search
from console.templates import fill, values_for
from console.ui.card import CardView
from console.ui.screens import HelpScreen, PickScreen, SnoozeScreen
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
        Binding("T", "reply_template", "Reply with a template", id="conversation.reply_template", show=False),
        Binding("e", "done", "Done", id="conversation.done"),
        Binding("u", "reopen", "Reopen", id="conversation.reopen"),
        Binding("s", "snooze", "Snooze", id="conversation.snooze"),
        Binding("space", "next_waiting", "Next needing a reply", id="conversation.next_waiting", show=False),
        Binding("U", "undo_send", "Undo the last send", id="conversation.undo_send", show=False),
        Binding("R", "send_again", "Send a failed reply again", id="conversation.send_again", show=False),
        Binding("i", "toggle_card", "Customer card", id="customer.card", show=False),
        Binding("t", "tag", "Tag (-name removes)", id="customer.tag", show=False),
        Binding("w", "note", "Write a note", id="customer.note", show=False),
        Binding("a", "assign_me", "Assign to me / unassign", id="conversation.assign_me", show=False),
        Binding("A", "assign", "Assign to an agent", id="conversation.assign", show=False),
        Binding("m", "merge", "Merge with another customer", id="customer.merge", show=False),
        Binding("x", "split", "Split an identity out", id="customer.split", show=False),
        Binding("ctrl+z", "undo_merge", "Undo the last merge or split", id="customer.undo_merge", show=False),
        Binding("slash", "search", "Search", id="app.search"),
        Binding("M", "mine", "Only mine / everyone's", id="list.mine", show=False),
        Binding("number_sign", "tag_filter", "Only a tag / all", id="list.tag", show=False),
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

    # Commands without a key of their own, offered in the palette (ctrl+p).
    PALETTE_ONLY = [("Save the composer text as a template", "save_template"),
                    ("Insert a template into the composer", "insert_template")]

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
        self._highlight: list[str] = []
        self._downloads: list[int] = []  # attachment downloads asked of the engine, not reported yet
        self.presence: list[Presence] = []
        self._presence_token: tuple | None = None
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
                with Horizontal(id="timeline-row"):
                    yield Timeline(id="timeline")
                    yield CardView(id="card")
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
        self.conversations.me = self.workspace.agent
        self.conversations.reload()
        self._load_templates()
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
        self._benchmark_report = None
        self.set_timer(0.3, self.exit)  # let the driver finish writing the frame to the terminal

    @work(thread=True, exit_on_error=False, group="write")
    def _load_templates(self) -> None:
        """The config's [templates] join the workspace's templates (the config wins on a name)."""
        for name, body in self.workspace.templates.items():
            self.store.save_template(name, body)

    # ---- the store changed --------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="poll", exclusive=True)
    def poll_store(self) -> None:
        version = self.store.data_version()
        if version != self._data_version:
            self._data_version = version
            presence = self.store.presence(exclude_pid=os.getpid())
            if presence != self.presence:
                self.call_from_thread(self._presence_changed, presence)
            self.call_from_thread(self.refresh_all)

    # ---- who else is here ---------------------------------------------------------------------
    def _presence(self, activity: str) -> None:
        """Tell the other agents' consoles what this one looks at (debounced: `j` held down
        writes once when it stops)."""
        customer = self.current.customer_id if self.current else None
        token = (customer, activity)
        if token == self._presence_token:
            return
        self._presence_token = token
        if getattr(self, "_presence_timer", None) is not None:
            self._presence_timer.stop()
        self._presence_timer = self.set_timer(0.15, lambda: self._write_presence(customer, activity))

    @work(thread=True, exit_on_error=False, group="presence")
    def _write_presence(self, customer_id: int | None, activity: str) -> None:
        self.store.set_presence(self.workspace.agent, os.getpid(), customer_id, activity)

    def _presence_changed(self, presence: list[Presence]) -> None:
        self.presence = presence
        viewers: dict[int, list[tuple[str, str]]] = {}
        for p in presence:
            if p.customer_id is not None:
                viewers.setdefault(p.customer_id, []).append((p.agent, p.activity))
        self.conversations.viewers = viewers
        self.conversations.refresh()
        if self.current is not None:
            self.composer.others_note = self._others_here(self.current.customer_id, replying_only=True)
            if self.composer.display:
                self.composer.update_status()

    def _others_here(self, customer_id: int, replying_only: bool = False) -> str:
        """'ana is replying to this customer too', or '' when nobody else is here."""
        people = [(p.agent, p.activity) for p in self.presence if p.customer_id == customer_id
                  and (p.activity == "replying" or not replying_only)]
        if not people:
            return ""
        replying = sorted({a for a, act in people if act == "replying"})
        viewing = sorted({a for a, act in people if act != "replying"} - set(replying))
        parts = []
        if replying:
            parts.append(f"{', '.join(replying)} {'is' if len(replying) == 1 else 'are'} replying to this customer too")
        if viewing:
            parts.append(f"{', '.join(viewing)} {'is' if len(viewing) == 1 else 'are'} viewing")
        return "; ".join(parts)

    def refresh_all(self) -> None:
        if self._downloads:
            self.check_downloads()
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
        if flt.assignee:
            text.append("  mine", style="bold")
        if flt.tag:
            text.append("  #")
            text.append_text(safe_line(flt.tag, 20, style="bold cyan"))
        self.query_one("#tabs", Static).update(text)

    def on_conversation_list_counted(self, message: ConversationList.Counted) -> None:
        self.update_tabs(message.counts)

    # ---- selection and timeline ---------------------------------------------------------------
    def on_conversation_list_highlighted(self, message: ConversationList.Highlighted) -> None:
        if self.composer.display and self.current and (
                message.row is None or self.current.customer_id != message.row.customer_id):
            self.close_composer()  # keeps the draft of the customer it was written for
        self.show_row(message.row)

    def show_row(self, row: ListRow | None, highlight: list[str] | None = None) -> None:
        """Make `row`'s customer the current one: header, timeline, card, presence."""
        changed = (self.current.customer_id if self.current else None) != (row.customer_id if row else None)
        self.current = row
        self._highlight = highlight or []
        if changed:
            self._presence("viewing")
        if row is None:
            self.query_one(CustomerHeader).clear()
            self.timeline.clear()
            self.query_one(CardView).show(None, [], [])
            return
        self.load_timeline(row)

    @work(thread=True, exit_on_error=False, group="timeline", exclusive=True)
    def load_timeline(self, row: ListRow) -> None:
        identities = self.store.identities(row.customer_id)
        name = self.store.customer_name(row.customer_id)
        entries = self.store.timeline(row.customer_id)
        card = None
        if self.query_one(CardView).has_class("shown"):
            card = (self.store.card(row.customer_id), self.store.merge_suggestions(row.customer_id))
        self.call_from_thread(self._show_timeline, row, name, identities, entries, card)

    def _show_timeline(self, row, name, identities, entries, card=None) -> None:
        if self.current is None or self.current.customer_id != row.customer_id:
            return
        self.query_one(CustomerHeader).show(name, identities, self._others_here(row.customer_id))
        self.timeline.show(entries, row.conversation_id, self._highlight)
        if card is not None:
            self.query_one(CardView).show(card[0], identities, card[1])
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
        self.conversations.set_filter(replace(flt, status=status, keep=None))
        self.update_tabs(None)
        self.conversations.focus()

    def action_channel_filter(self, number: int) -> None:
        flt = self.conversations.filter
        if number and number > len(self.channels):
            self.notify(Text(f"There is no channel {number}; channels here: "
                             + ", ".join(f"{n} {CHANNEL_NAMES.get(c, c)}" for n, c in enumerate(self.channels, 1))))
            return
        channel = self.channels[number - 1] if number else None
        self.conversations.set_filter(replace(flt, channel=channel, keep=None))
        self.update_tabs(None)

    def action_toggle_grouping(self) -> None:
        flt = self.conversations.filter
        self.conversations.set_filter(replace(flt, by_customer=not flt.by_customer, keep=None))
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
            self.conversations.set_filter(replace(flt, status="open", channel=None, keep=None))
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

    def action_send_again(self) -> None:
        """Queue again the newest reply of this customer that failed, was cancelled, or whose
        delivery is unknown (the user checked it did not arrive): a new send, with a new key."""
        entry = next((e for e in reversed(self.timeline.entries) if e.direction == "out"
                      and e.status in ("failed", "undelivered", "unknown")), None)
        if entry is None:
            self.notify("No failed, cancelled or unknown reply to send again for this customer.")
            return
        self._send_again(entry.id)

    @work(thread=True, exit_on_error=False, group="write")
    def _send_again(self, message_id: int) -> None:
        try:
            self.store.send_again(message_id)
        except (ValueError, OptedOut) as exc:
            self.call_from_thread(self.notify, Text(str(exc)), severity="warning")
            return
        self.call_from_thread(self.notify, "Queued again as a new send.", timeout=3)
        self.call_from_thread(self.refresh_all)

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

    # ---- the customer: card, tags, notes, assignment, merge -----------------------------------
    def action_toggle_card(self) -> None:
        card = self.query_one(CardView)
        card.toggle_class("shown")
        self.query_one("#body").set_class(card.has_class("shown"), "with-card")
        if card.has_class("shown") and self.current is not None:
            self.load_timeline(self.current)

    def _need_customer(self) -> ListRow | None:
        if self.current is None:
            self.bell()
        return self.current

    def action_tag(self) -> None:
        row = self._need_customer()
        if row is None:
            return
        have = set(self.store.tags(row.customer_id))

        def lookup(text: str):
            text = text.strip().lstrip("#-").lower()
            known = [t for t in self.store.all_tags() if text in t]
            return [(f"-{t}" if t in have else t, f"{'remove' if t in have else 'add'} #{t}") for t in known[:12]]

        def done(answer) -> None:
            if answer is None:
                return
            typed, chosen = answer
            value = chosen or typed.strip()
            self._write_tag(row, value)

        self.push_screen(PickScreen(Text.assemble("Tag ", safe_line(row.name, 40),
                                                  " (a new name adds it; -name removes)"), lookup,
                                    placeholder="tag, e.g. wholesale"), done)

    @work(thread=True, exit_on_error=False, group="write")
    def _write_tag(self, row: ListRow, value: str) -> None:
        try:
            if value.startswith("-"):
                removed = self.store.remove_tag(row.customer_id, value[1:])
                note = f"#{value[1:].strip().lower()} removed" if removed else "no such tag on this customer"
            else:
                note = f"tagged #{self.store.add_tag(row.customer_id, value)}"
        except ValueError as exc:
            self.call_from_thread(self.notify, Text(str(exc)), severity="warning")
            return
        self.call_from_thread(self.notify, Text.assemble(safe_line(row.name, 40), f": {note}"), timeout=2)
        self.call_from_thread(self.refresh_all)

    def action_note(self) -> None:
        row = self._need_customer()
        if row is None:
            return

        def done(answer) -> None:
            if answer and answer[0].strip():
                self._write_note(row, answer[0])

        self.push_screen(PickScreen(Text.assemble("Note on ", safe_line(row.name, 40), " (only agents see it)"),
                                    lambda text: [], placeholder="e.g. prefers pickup after 5pm"), done)

    @work(thread=True, exit_on_error=False, group="write")
    def _write_note(self, row: ListRow, body: str) -> None:
        self.store.add_note(row.customer_id, self.workspace.agent, body)
        self.call_from_thread(self.notify, "Note saved on the customer card (i shows it).", timeout=2)
        self.call_from_thread(self.refresh_all)

    def action_assign_me(self) -> None:
        row = self._need_customer()
        if row is not None:
            self._toggle_mine(row)

    @work(thread=True, exit_on_error=False, group="write")
    def _toggle_mine(self, row: ListRow) -> None:
        """Mine -> nobody's; anything else -> mine (read from the store: the row may be a moment old)."""
        me = self.workspace.agent
        self._assign(row, None if self.store.assigned_to(row.customer_id, me) else me)

    def action_assign(self) -> None:
        row = self._need_customer()
        if row is None:
            return

        def lookup(text: str):
            agents = [a for a in self.store.agents() if text.strip().lower() in a.lower()]
            return [(a, a) for a in agents] + [("", "nobody (unassign)")]

        def done(answer) -> None:
            if answer is not None:
                typed, chosen = answer
                agent = chosen if chosen is not None else typed.strip()
                self._write_assignee(row, agent or None)

        self.push_screen(PickScreen(Text.assemble("Assign ", safe_line(row.name, 40), " to"), lookup,
                                    placeholder="agent name"), done)

    @work(thread=True, exit_on_error=False, group="write")
    def _write_assignee(self, row: ListRow, agent: str | None) -> None:
        self._assign(row, agent)

    def _assign(self, row: ListRow, agent: str | None) -> None:
        """(In a worker thread.)"""
        self.store.assign(row.customer_id, agent)
        note = f"assigned to {agent}" if agent else "unassigned"
        self.call_from_thread(self.notify, Text.assemble(safe_line(row.name, 40), f": {note}"), timeout=2)
        self.call_from_thread(self.refresh_all)

    def action_mine(self) -> None:
        flt = self.conversations.filter
        mine = None if flt.assignee == self.workspace.agent else self.workspace.agent
        self.conversations.set_filter(replace(flt, assignee=mine, keep=None))
        self.update_tabs(None)

    def action_tag_filter(self) -> None:
        flt = self.conversations.filter
        if flt.tag:
            self.conversations.set_filter(replace(flt, tag=None, keep=None))
            self.update_tabs(None)
            return

        def lookup(text: str):
            return [(t, f"#{t}") for t in self.store.all_tags() if text.strip().lstrip("#").lower() in t][:15]

        def done(answer) -> None:
            if answer and answer[1]:
                self.conversations.set_filter(replace(self.conversations.filter, tag=answer[1], keep=None))
                self.update_tabs(None)

        self.push_screen(PickScreen("Only customers tagged", lookup, allow_free_text=False), done)

    def action_merge(self) -> None:
        row = self._need_customer()
        if row is None:
            return
        suggestions = {s.customer_id: s.reason for s in self.store.merge_suggestions(row.customer_id)}

        def lookup(text: str):
            if not text.strip():
                found = [(cid, self.store.customer_name(cid), reason) for cid, reason in suggestions.items()]
            else:
                found = [(cid, name, addresses)
                         for cid, name, addresses in self.store.find_customers(text, exclude=row.customer_id)]
            return [(str(cid), Text.assemble(safe_line(name, 30, style="bold"), "  ", safe_line(extra, 60, style="dim")))
                    for cid, name, extra in found]

        def done(answer) -> None:
            if answer and answer[1]:
                self._write_merge(row, int(answer[1]))

        self.push_screen(PickScreen(Text.assemble("Merge another customer into ", safe_line(row.name, 40),
                                                  " (type a name, email or phone)"), lookup,
                                    allow_free_text=False), done)

    @work(thread=True, exit_on_error=False, group="write")
    def _write_merge(self, row: ListRow, other_id: int) -> None:
        other = self.store.customer_name(other_id)
        self.store.merge_customers(row.customer_id, other_id)
        self.call_from_thread(self.notify, Text.assemble(safe_line(other, 40), " merged into ", safe_line(row.name, 40),
                                                         "; ctrl+z undoes it"), timeout=4)
        self.call_from_thread(self.refresh_all)

    def action_split(self) -> None:
        row = self._need_customer()
        if row is None:
            return
        identities = self.store.identities(row.customer_id)
        if len(identities) < 2:
            self.notify("This customer has one identity: there is nothing to split out.", severity="warning")
            return

        def lookup(text: str):
            return [(str(i.id), Text.assemble(f"{i.kind}: ", safe_line(i.address, 50)))
                    for i in identities if text.strip().lower() in (i.address + i.display_name).lower()]

        def done(answer) -> None:
            if answer and answer[1]:
                self._write_split(int(answer[1]))

        self.push_screen(PickScreen(Text.assemble("Split one identity out of ", safe_line(row.name, 40),
                                                  " into a customer of its own"), lookup, allow_free_text=False), done)

    @work(thread=True, exit_on_error=False, group="write")
    def _write_split(self, identity_id: int) -> None:
        try:
            self.store.split_identity(identity_id)
        except ValueError as exc:
            self.call_from_thread(self.notify, Text(str(exc)), severity="warning")
            return
        self.call_from_thread(self.notify, "Identity split out into its own customer; ctrl+z undoes it.", timeout=4)
        self.call_from_thread(self.refresh_all)

    @work(thread=True, exit_on_error=False, group="write")
    def action_undo_merge(self) -> None:
        last = self.store.last_merge()
        if last is None:
            self.call_from_thread(self.notify, "No merge or split to undo.")
            return
        done = self.store.undo_merge(last)
        self.call_from_thread(self.notify, done[0].upper() + done[1:] + ".", timeout=3)
        self.call_from_thread(self.refresh_all)

    # ---- search ---------------------------------------------------------------------------------
    def action_search(self) -> None:
        hits: dict[str, object] = {}

        def lookup(text: str):
            if len(text.strip()) < 2:
                return []
            found = self.store.search(text, limit=50)  # SearchSyntaxError is shown in the prompt
            hits.clear()
            words = parse_search(text)[0]
            out = []
            for hit in found:
                hits[str(hit.message_id)] = hit
                label = Text.assemble(safe_line(hit.name, 22, style="bold"), f" {icon(hit.channel)} ",
                                      (f"{hit.status:<7} ", "dim"), (when(hit.sent_at) + "  ", "dim"))
                line = safe_line(hit.line, 160)
                for word in words:
                    line.highlight_words([word], style="bold reverse", case_sensitive=False)
                label.append_text(line)
                out.append((str(hit.message_id), label))
            return out

        def done(answer) -> None:
            if answer and answer[1] and answer[1] in hits:
                hit = hits[answer[1]]
                words = parse_search(answer[0])[0]
                self._open_hit(hit, words)

        self.push_screen(PickScreen("Search every message (from: channel: tag: status: before: after:)", lookup,
                                    placeholder="e.g. sourdough from:maria after:2026-11-01", allow_free_text=False),
                         done)

    def _open_hit(self, hit, words: list[str]) -> None:
        row = self.store.row_for(hit.customer_id, hit.conversation_id)
        if row is None:
            return
        if self.composer.display:
            self.close_composer()
        self.show_row(row, highlight=words)
        self.timeline.focus()
        self.notify(Text.assemble("Showing ", safe_line(row.name, 40),
                                  " (n / N step through the matches; esc goes back to the list)"), timeout=3)

    # ---- attachments ----------------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="attachments")
    def save_attachments(self, entry) -> None:
        """Save a message's attachments into `download_dir` under safe names (never a path the
        sender chose, never over an existing file). Email attachments come from the kept MIME."""
        from console.attachments import save as save_file
        from console.channels.email.mailparse import part_bytes

        raw = self.store.message_raw(entry.id)
        if raw is None:
            # Kept by the service only (MMS, Telegram, the demo...): the sync engine fetches them.
            ids = self.store.request_downloads(entry.id, str(self.workspace.download_dir))
            self._downloads.extend(ids)
            self.call_from_thread(self.notify, f"Downloading {len(ids)} attachment{'s' if len(ids) != 1 else ''}…",
                                  timeout=3)
            return
        saved, missing = [], []
        for attachment in entry.attachments:
            data = part_bytes(raw, attachment.get("ref", "")) if attachment.get("ref") else None
            if data is None:
                missing.append(attachment.get("name") or "attachment")
                continue
            saved.append(save_file(data, attachment.get("name") or "attachment", self.workspace.download_dir))
        if saved:
            names = ", ".join(p.name for p in saved)
            self.call_from_thread(self.notify, Text(f"Saved to {self.workspace.download_dir}: {names}"), timeout=6)
        if missing:
            self.call_from_thread(self.notify, Text(f"Could not read {', '.join(missing)} from the message"),
                                  severity="warning")

    @work(thread=True, exit_on_error=False, group="attachments-check", exclusive=True)
    def check_downloads(self) -> None:
        """Say which requested attachments the engine has saved (or could not)."""
        for item in self.store.downloads(list(self._downloads)):
            if item["state"] == "pending":
                continue
            self._downloads.remove(item["id"])
            if item["state"] == "done":
                self.call_from_thread(self.notify, Text(f"Saved {item['path']}"), timeout=6)
            else:
                self.call_from_thread(self.notify, Text(f"{item['name']}: {item['error']}"), severity="warning")

    # ---- templates ------------------------------------------------------------------------------
    def action_insert_template(self) -> None:
        row = self.current
        if row is None or not self.composer.display:
            self.bell()
            return
        target = self.composer.target
        if target is not None and target.channel == "whatsapp" and target.window_closed:
            self._pick_whatsapp_template(row, target)
            return
        templates = self.store.templates()
        if not templates:
            self.notify("No templates yet: write one in the composer, then use the palette's "
                        "\"Save the draft as a template\".", severity="warning")
            return
        card = self.store.card(row.customer_id)
        values = values_for(card.name if card else row.name, self.workspace.agent, self.workspace.name,
                            card.attributes if card else {})

        def lookup(text: str):
            return [(name, Text.assemble((name, "bold"), "  ", safe_line(fill(body, values), 70, style="dim")))
                    for name, body in templates.items() if text.strip().lower() in name.lower()]

        def done(answer) -> None:
            if answer and answer[1] in templates:
                self.composer.insert(fill(templates[answer[1]], values))

        self.push_screen(PickScreen("Insert template", lookup, allow_free_text=False), done)

    def _pick_whatsapp_template(self, row: ListRow, target: Target) -> None:
        """Outside WhatsApp's 24-hour window only an approved template may be sent: the account's
        `[accounts.templates]` (name = ContentSid); the composer's lines become its variables."""
        account = next((a for a in self.workspace.accounts if a.name == target.account), None)
        approved = account.raw.get("templates", {}) if account is not None else {}
        if not isinstance(approved, dict) or not approved:
            self.notify(Text(f"No approved WhatsApp templates for account '{target.account}': add them under "
                             "[accounts.templates] (name = ContentSid) in the config."), severity="warning")
            return
        first = values_for(row.name, self.workspace.agent, self.workspace.name, {}).get("first_name", "")

        def lookup(text: str):
            return [(name, Text.assemble((name, "bold"), "  approved WhatsApp template"))
                    for name in sorted(approved) if text.strip().lower() in name.lower()]

        def done(answer) -> None:
            if answer and answer[1] in approved:
                self.composer.wa_template = answer[1]
                self.composer.editor.load_text(first)
                self.composer.editor.move_cursor(self.composer.editor.document.end)
                self.composer.update_status()

        self.push_screen(PickScreen("Approved WhatsApp template (the window is closed)", lookup,
                                    allow_free_text=False), done)

    def action_save_template(self) -> None:
        body = self.composer.editor.text if self.composer.display else ""
        if not body.strip():
            self.notify("Write the template's text in the composer first (r), then save it.", severity="warning")
            return

        def done(answer) -> None:
            if answer and answer[0].strip():
                self.store.save_template(answer[0].strip(), body)
                self.notify(Text(f"Template '{answer[0].strip()}' saved; ctrl+t in the composer inserts it."))

        self.push_screen(PickScreen("Save the draft as a template named", lambda text: [],
                                    placeholder="e.g. order-ready"), done)

    # ---- replying -----------------------------------------------------------------------------
    def action_reply(self) -> None:
        self._open_composer(all_channels=False)

    def action_reply_template(self) -> None:
        """`r` then `ctrl+t`: the fastest courteous answer (T, a few letters, enter, ctrl+s, e)."""
        self._open_composer(all_channels=False)
        if self.composer.display:
            self.action_insert_template()

    def action_compose_new(self) -> None:
        self._open_composer(all_channels=True)

    def _open_composer(self, all_channels: bool) -> None:
        row = self.current
        if row is None:
            self.bell()
            return
        targets = [
            Target(t["account"], t["channel"], t["identity_id"], t["address"], bool(t["opted_out"]),
                   t["conversation_id"], t["last_in"])
            for t in self.store.reply_targets(row.customer_id)
        ]
        # reply_targets lists the customer's last-used channel first; skip opted-out ones.
        index = next((n for n, t in enumerate(targets) if not t.opted_out), 0)
        if all_channels and len(targets) > 1:
            index = (index + 1) % len(targets)
        draft = self.drafts.get(row.customer_id) or self.store.draft(row.customer_id, self.workspace.agent)
        self.composer.open(targets, draft, index)
        self._presence("replying")

    def close_composer(self) -> None:
        if self.current is not None and self.composer.display:
            text = self.composer.editor.text
            if text.strip():
                self.drafts[self.current.customer_id] = text
            else:
                self.drafts.pop(self.current.customer_id, None)
            self._save_draft(self.current.customer_id, text)
        self.composer.display = False
        self.conversations.focus()
        self._presence("viewing")

    @work(thread=True, exit_on_error=False, group="drafts")
    def _save_draft(self, customer_id: int, text: str) -> None:
        """Drafts live in the store, per agent: they survive a restart (and a crash of the app)."""
        self.store.save_draft(customer_id, self.workspace.agent, text)

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
        self._enqueue(row, target, message.body, subject, message.options)

    @work(thread=True, exit_on_error=False, group="write")
    def _enqueue(self, row: ListRow, target: Target, body: str, subject: str,
                 options: dict[str, str] | None = None) -> None:
        try:
            message_id = self.store.enqueue_reply(
                target.identity_id, target.account, target.channel, body, subject=subject,
                author=self.workspace.agent, conversation_id=target.conversation_id,
                delay=self.workspace.send_delay_seconds, options=options or None,
            )
        except OptedOut as exc:
            self.call_from_thread(self.notify, Text(str(exc)), severity="error")
            return
        self.call_from_thread(self._sent, row, target, message_id)

    def _sent(self, row: ListRow, target: Target, message_id: int) -> None:
        self._last_sent = message_id
        self.drafts.pop(row.customer_id, None)
        self._save_draft(row.customer_id, "")
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
        try:
            self.store.clear_presence(self.workspace.agent, os.getpid())
        except Exception:  # noqa: BLE001 - leaving must not fail on a busy store; presence expires anyway
            pass
        if self.engine is not None and self.engine.poll() is None:
            self.engine.terminate()
