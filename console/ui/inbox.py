"""The inbox screen: who is waiting on the left, the selected customer's timeline on the right.

It keeps what the screen shows in step with the store: the list, the selected customer's
timeline, header and card, the account states, who else is here. Other processes' commits (the
sync engine's, another agent's, on this machine or another) are noticed through the store's one
change interface, `change_token()`, asked off the UI thread like every store call: SQLite's
`PRAGMA data_version` twice a second, PostgreSQL's LISTEN/NOTIFY counter (no query) ten times a
second. When a PostgreSQL server cannot be reached the header says "store unreachable"; the
screen keeps what it shows, and once the store answers again everything is read afresh. What the keys do lives in console/ui/actions/, one module
per group of actions; this module wires them together.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import replace

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.config import WorkspaceConfig
from console.outreach.consent import consent_rows
from console.store import ListRow, Presence, StoreUnavailable
from console.startup_trace import dump, mark
from console.store.presence import PRESENCE_HEARTBEAT
from console.ui.actions.attachments import AttachmentActions
from console.ui.actions.attention import AttentionActions
from console.ui.actions.customer import CustomerActions
from console.ui.actions.finding import FindActions
from console.ui.actions.outreach import OutreachActions
from console.ui.actions.replying import ReplyActions
from console.ui.actions.status import StatusActions
from console.ui.card import CardView
from console.ui.composer import Composer, Draft
from console.ui.conversation_list import ConversationList, describe_empty
from console.ui.guard import Guarded
from console.ui.render import STATE_MARKS, channel_icon, channel_name, in_catalog_order, safe_line
from console.ui.timeline import CustomerHeader, Timeline, lay_out

STATUS_TABS = ("open", "waiting", "snoozed", "done")
STATUS_LABELS = {"open": "Open", "waiting": "Waiting", "snoozed": "Snoozed", "done": "Done"}
STATUS_KEYS = {"open": "O", "waiting": "W", "snoozed": "Z", "done": "D"}
TIMELINE_PAGE = 300
POLL_EVERY = 0.5
POLL_EVERY_LISTENING = 0.1  # PostgreSQL: the token is a counter in memory, asking costs nothing
UNREACHABLE = "store unreachable"


class AccountsBar(Guarded, Static):
    """The header's left part: the workspace and each account's state (ok, syncing with its
    progress, or what is wrong), shortened to what fits."""

    COMPONENT_CLASSES = {"accounts--ok", "accounts--busy", "accounts--warn", "accounts--bad", "accounts--idle"}
    DEFAULT_CSS = """
    AccountsBar > .accounts--ok { color: $success; }
    AccountsBar > .accounts--busy { color: $accent; }
    AccountsBar > .accounts--warn { color: $warning; }
    AccountsBar > .accounts--bad { color: $error; text-style: bold; }
    AccountsBar > .accounts--idle { color: $text-muted; }
    """
    GRADES = {"ok": "ok", "syncing": "busy", "retrying": "warn", "idle": "idle"}

    def show(self, name: str, states, narrow: bool, unreachable: str | None = None) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        if unreachable is not None:  # before anything else: nothing on screen is current
            text.append(f"⚠ {UNREACHABLE} ", style=self.get_component_rich_style("accounts--bad", partial=True))
        text.append_text(safe_line(name, 24 if narrow else 40, style="bold"))
        text.append(" ─", style="dim")
        for state in states:
            style = self.get_component_rich_style(f"accounts--{self.GRADES.get(state.state, 'bad')}", partial=True)
            text.append(f" {STATE_MARKS.get(state.state, '•')} ", style=style)
            text.append_text(safe_line(state.name, 20))
            if state.progress:
                done, total = state.progress
                text.append(f" {done:,}/{total:,}", style=self.get_component_rich_style("accounts--busy", partial=True))
            elif state.state not in ("ok", "syncing", "idle"):
                text.append(" (")
                text.append_text(safe_line(state.detail or state.state, 30 if narrow else 60, style=style))
                text.append(")")
        self.update(text)


class InboxScreen(ReplyActions, StatusActions, CustomerActions, FindActions, AttachmentActions, AttentionActions,
                  OutreachActions,
                  Guarded, Screen):
    BINDINGS = [
        Binding("tab", "switch_pane", "Switch pane", id="app.switch_pane", show=False),
        Binding("enter", "open", "Open", id="conversation.open", show=False),
        *ReplyActions.KEYS, *StatusActions.KEYS, *CustomerActions.KEYS, *FindActions.KEYS, *AttentionActions.KEYS,
        *OutreachActions.KEYS,
    ]
    PALETTE_ONLY = ReplyActions.PALETTE_ONLY + OutreachActions.PALETTE_ONLY

    def __init__(self, workspace: WorkspaceConfig, first=None):
        super().__init__()
        self.workspace = workspace
        self.first = first  # a Future of console/ui/first_screen.FirstScreen, or None
        self.current: ListRow | None = None
        self.channels: list[str] = []
        self.highlight: list[str] = []
        self.presence: list[Presence] = []
        self.drafts: dict[int, Draft] = {}  # the newest text per customer, before the store has it
        self.downloads: list[int] = []  # attachment downloads asked of the engine, not reported yet
        self._data_version = None
        self.unreachable: str | None = None  # why the store cannot be reached, while it cannot
        self._presence_token: tuple | None = None
        self._presence_timer = None
        self._header: tuple = ([], None)  # the accounts' states and the needs-me count last read
        self._counts: dict[str, int] = {}
        self._host = socket.gethostname()
        self._prefetched = None  # the first customer's newest messages, read before mounting

    # ---- layout -------------------------------------------------------------------------------
    def compose(self):
        with Horizontal(id="header"):
            yield AccountsBar(id="header-left")
            yield Static(id="header-right")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Static(id="tabs")
                yield ConversationList(self.workspace.response_target_minutes, self.workspace.business_hours,
                                       id="conversations")
            with Vertical(id="right"):
                yield CustomerHeader(id="customer")
                with Horizontal(id="timeline-row"):
                    yield Timeline(id="timeline")
                    yield CardView(id="card")
                yield Composer(id="composer")
        yield Footer(compact=True)

    @property
    def conversations(self) -> ConversationList:
        return self.query_one(ConversationList)

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    @property
    def card(self) -> CardView:
        return self.query_one(CardView)

    @property
    def agent(self) -> str:
        return self.workspace.agent

    def run(self, job, done=None, *, what: str, lane: str = "read", key: str | None = None, pass_ticket: bool = False):
        """A store job off the UI thread (console/ui/background.py)."""
        return self.app.background.run(job, done, what=what, lane=lane, key=key, pass_ticket=pass_ticket)

    def on_mount(self) -> None:
        mark("inbox mounted")
        self.composer.display = False
        self.query_one(CustomerHeader).clear("Loading…")
        self.timeline.clear("Loading…")
        conversations = self.conversations
        conversations.me = self.agent
        conversations.empty_note = describe_empty(conversations.filter, self.agent)
        conversations.focus()
        self.update_tabs()
        first, self.first = self.first, None
        if first is None:
            self._first_or_reload(None)
        elif first.done():
            self._first_or_reload(first)
        else:
            first.add_done_callback(lambda done: self.app._post_from_thread(lambda: self._first_or_reload(done)))
        templates = dict(self.workspace.templates)
        if templates:
            self.run(lambda store: [store.save_template(n, b) for n, b in templates.items()],
                     what="load the config's templates", lane="write")
        self.start_watching()
        listening = self.workspace.store is not None  # [store]: PostgreSQL, which tells of changes
        self.set_interval(POLL_EVERY_LISTENING if listening else POLL_EVERY, self.poll_store)
        self.set_interval(30, self.load_header)
        self.set_interval(PRESENCE_HEARTBEAT, self._heartbeat)

    def _first_or_reload(self, first) -> None:
        if first is not None and first.exception() is None:
            self._first_screen(first.result())
            return
        if first is not None:
            self.app.report_error(first.exception(), "read the first screen")
        self.conversations.reload()
        self.load_header()
        self.load_context()

    def _first_screen(self, first) -> None:
        """Show what was read while the app started; the rest of the timeline follows."""
        self._show_header((first.states, first.needs))
        self._context_loaded((first.channels, first.drafts, first.presence))
        self._prefetched = first.customer
        self.conversations.preload(first.counts, first.rows)
        if self.conversations.selected is not None:  # before the first frame, not a message later
            self.show_row(self.conversations.selected)

    def focus_list(self) -> None:
        self.conversations.focus()

    def describe_binding(self, node, binding_id: str, description: str) -> None:
        """Change what the footer and help say for a binding (e.g. 'Hide quoted text')."""
        for key, bindings in node._bindings.key_to_bindings.items():
            node._bindings.key_to_bindings[key] = [replace(b, description=description) if b.id == binding_id else b
                                                   for b in bindings]
        self.refresh_bindings()

    # ---- the store changed --------------------------------------------------------------------
    def poll_store(self) -> None:
        self.run(_change_token, self._polled, what="watch the workspace", key="poll")

    def _polled(self, version) -> None:
        if isinstance(version, StoreUnavailable):
            self.store_unreachable(version)
            return
        if self.unreachable is not None:  # back: what changed meanwhile is unknown, read it all
            self.unreachable = None
            self._data_version = version
            self.load_header()
            self.refresh_all()
            self._heartbeat()
            return
        if self._data_version is None:
            self._data_version = version
            return
        if version != self._data_version:
            self._data_version = version
            self.refresh_all()

    def store_unreachable(self, error: BaseException) -> None:
        """The store's server cannot be reached: the header says so; the poll notices its return."""
        if self.unreachable is None:
            self.unreachable = str(error)
            self._show_header(self._header)

    def refresh_all(self) -> None:
        self.conversations.reload()
        self.load_header()
        self.watch()
        self.load_context()
        if self.current is not None:
            self.load_timeline(self.current)
        if self.downloads:
            self.check_downloads()

    def load_context(self) -> None:
        """What the screen needs besides the list: channels in use, my drafts, who else is here."""
        agent, pid = self.agent, os.getpid()

        def job(store):
            return store.channels_in_use(), store.draft_customers(agent), store.presence(exclude_pid=pid, agent=agent)

        self.run(job, self._context_loaded, what="load the workspace's channels and drafts", key="context")

    def _context_loaded(self, result) -> None:
        channels, drafts, presence = result
        channels = in_catalog_order(channels)
        if channels != self.channels:
            self.channels = channels
            self.update_tabs()
        drafts = drafts | {c for c, d in self.drafts.items() if d.body.strip()}
        drafts -= {c for c, d in self.drafts.items() if not d.body.strip()}
        if drafts != self.conversations.drafts:
            self.conversations.drafts = drafts
            self.conversations.refresh()
        if presence != self.presence:
            self._presence_changed(presence)

    # ---- header and tabs ----------------------------------------------------------------------
    def load_header(self) -> None:
        agent = self.agent
        self.run(lambda store: (store.account_states(), store.needs_me(agent)), self._show_header,
                 what="read the accounts' states", key="header")

    def _show_header(self, found) -> None:
        states, needs = found
        self._header = found
        self.query_one(AccountsBar).show(self.workspace.name, states, self.size.width < 100, self.unreachable)
        right = Text(no_wrap=True)
        right.append_text(safe_line(self.agent, 16))
        if needs is not None:
            # Open conversations that are mine or nobody's: what this agent should look at.
            right.append(" · ")
            right.append(f"needs me {needs}", style="bold" if needs else "dim")
        right.append(f" · {time.strftime('%H:%M', time.localtime(time.time()))}", style="dim")
        self.query_one("#header-right", Static).update(right)

    def update_tabs(self) -> None:
        counts = self._counts
        flt = self.conversations.filter
        filters = Text()  # what narrows the list, always in view: it comes right after the open tab
        if flt.channel:
            filters.append(f" {channel_icon(flt.channel)} {channel_name(flt.channel)}", style="bold")
        if not flt.by_customer:
            filters.append(" threads", style="dim")
        if flt.assignee:
            filters.append(" mine", style="bold")
        if flt.tag:
            filters.append(" #")
            filters.append_text(safe_line(flt.tag, 20, style="bold"))
        if flt.breaching is not None:
            filters.append(" breaching", style="bold")
        # With a filter on, the other tabs shrink to their keys (and are the part cut at the edge).
        narrow = self.conversations.size.width < 50 or bool(filters)
        text = Text(no_wrap=True, overflow="ellipsis")
        for number, status in enumerate(STATUS_TABS):
            count = counts.get(status, "…")
            if status == flt.status:
                text.append(f" {STATUS_LABELS[status]} {count} ", style="bold reverse")
                text.append_text(filters)
                continue
            text.append(" ")
            if narrow:
                text.append(f"{STATUS_KEYS[status]} {count}", style="dim")
            else:
                text.append(f"{STATUS_LABELS[status]} {count}", style="dim")
        self.query_one("#tabs", Static).update(text)

    def on_conversation_list_counted(self, message: ConversationList.Counted) -> None:
        self._counts = message.counts
        self.update_tabs()

    def on_resize(self) -> None:
        self.update_tabs()
        self.load_header()

    # ---- selection and timeline ---------------------------------------------------------------
    def on_conversation_list_highlighted(self, message: ConversationList.Highlighted) -> None:
        row = message.row
        if self.composer.display and self.current and (row is None or self.current.customer_id != row.customer_id):
            self.close_composer()  # keeps the draft of the customer it was written for
        self.show_row(row)

    def show_row(self, row: ListRow | None, highlight: list[str] | None = None) -> None:
        """Make `row`'s customer the current one: header, timeline, card, presence."""
        changed = (self.current.customer_id if self.current else None) != (row.customer_id if row else None)
        self.current = row
        if highlight is not None or changed:
            self.highlight = highlight or []
        if changed:
            self._presence("viewing")
        if row is None:
            note = self.conversations.empty_note if self.conversations.total == 0 else "No conversation selected"
            self.query_one(CustomerHeader).clear(note if self.conversations.counted else "Loading…")
            self.timeline.clear("")
            self.card.show(None, [], [])
            return
        self.load_timeline(row)

    def load_timeline(self, row: ListRow) -> None:
        timeline = self.timeline
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched[0] == row.customer_id and timeline.customer_id is None:
            customer, name, identities, entries, more = prefetched
            self._show_timeline(row, name, identities, entries, more, None,
                                lay_out(entries, timeline.layout_width, timeline.show_quotes, more))
        same = timeline.customer_id == row.customer_id
        limit = max(TIMELINE_PAGE, len(timeline.entries) + 50) if same else TIMELINE_PAGE
        width, quotes = timeline.layout_width, timeline.show_quotes
        with_card = self.card.has_class("shown")
        customer = row.customer_id

        def job(store):
            entries, more = store.timeline_page(customer, limit)
            card = (store.card(customer), store.merge_suggestions(customer), consent_rows(store, customer)) \
                if with_card else None
            return (store.customer_name(customer), store.identities(customer), entries, more, card,
                    lay_out(entries, width, quotes, more))

        self.run(job, lambda result: self._show_timeline(row, *result), what="load the customer's messages",
                 key="timeline")

    def _show_timeline(self, row, name, identities, entries, more, card, layout) -> None:
        if self.current is None or self.current.customer_id != row.customer_id:
            return
        self.query_one(CustomerHeader).show(name, identities, self._others_here(row.customer_id))
        self.timeline.show(row.customer_id, entries, row.conversation_id, more, layout, self.highlight)
        if card is not None:
            self.card.show(card[0], identities, card[1], card[2])
        mark("timeline shown")
        if os.environ.get("CONSOLE_BENCH_REPORT"):
            self.call_after_refresh(self._bench_report)

    def on_timeline_need_older(self, message: Timeline.NeedOlder) -> None:
        timeline = self.timeline
        if not timeline.entries or timeline.customer_id is None:
            return
        first = timeline.entries[0]
        customer, before = timeline.customer_id, (first.sent_at, first.id)
        limit = None if message.everything else TIMELINE_PAGE

        def loaded(result) -> None:
            entries, more = result
            if timeline.customer_id == customer and timeline.entries and timeline.entries[0].id == first.id:
                timeline.prepend(entries, more)

        self.run(lambda store: store.timeline_page(customer, limit, before), loaded,
                 what="load older messages", key="timeline-older")

    def _bench_report(self) -> None:
        """bench/startup.py: seconds from spawn to the first full screen, then exit."""
        mark("first full screen painted")
        dump()
        report = os.environ.pop("CONSOLE_BENCH_REPORT", None)
        if not report:
            return
        with open(report, "w") as out:
            out.write(f"{time.time() - float(os.environ['CONSOLE_BENCH_T0']):.4f}")
        self.set_timer(0.3, self.app.exit)  # let the driver finish writing the frame to the terminal

    # ---- who else is here ---------------------------------------------------------------------
    def _presence(self, activity: str) -> None:
        """Tell the other agents' consoles what this one looks at (debounced: `j` held down
        writes once when it stops)."""
        customer = self.current.customer_id if self.current else None
        token = (customer, activity)
        if token == self._presence_token:
            return
        self._presence_token = token
        if self._presence_timer is not None:
            self._presence_timer.stop()
        self._presence_timer = self.set_timer(0.15, self._heartbeat)

    def _heartbeat(self) -> None:
        if self._presence_token is None:
            self._presence_token = (self.current.customer_id if self.current else None, "viewing")
        customer, activity = self._presence_token
        agent, pid, host = self.agent, os.getpid(), self._host

        def beat(store) -> None:
            try:
                store.set_presence(agent, pid, customer, activity, host)
            except StoreUnavailable:  # the header says so; the next beat after it is back counts
                pass

        self.run(beat, what="share where you are", lane="write")

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
            self.load_timeline(self.current)  # the header says who is here

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

    # ---- moving around ------------------------------------------------------------------------
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

    def need_customer(self) -> ListRow | None:
        if self.current is None:
            self.app.bell()
            self.app.notify(self.conversations.empty_note if self.conversations.total == 0
                            else "Select a customer first.", timeout=3)
        return self.current


def _change_token(store):
    """The store's change token, or the StoreUnavailable saying why there is none (a value, so
    that an unreachable store is a state of the screen, not an error)."""
    try:
        return store.change_token()
    except StoreUnavailable as exc:
        return exc
