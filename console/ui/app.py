"""The Textual app: a thin shell around the inbox screen.

It owns what is the same for every screen: the lanes to the store (console/ui/background.py), the
one error handler (an exception anywhere becomes one line for the user and a traceback in
`errors.log`; the app goes on and the composer keeps its text), notices, the keymap, quitting
and hanging up without losing a draft, and the sync engine's process (started when nobody runs
one, so the UI never parses mail on its own thread). The inbox itself is console/ui/inbox.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.content import Content

from console.config import WorkspaceConfig
from console.sanitize import one_line
from console.synclock import FINISH_OUTBOX_WITHIN, SyncLock
from console.ui.background import Background
from console.ui.commands import ConsoleCommands

log = logging.getLogger("console.ui")


class ConsoleApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "console"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
    ]

    def __init__(self, workspace: WorkspaceConfig, store, engine_args: list[str] | None = None, first=None):
        super().__init__()
        self.first = first  # the first screen, being read (console/ui/first_screen.py)
        from console.ui.keys import check_keymap

        self.workspace = workspace
        self.store = store
        self.engine_args = engine_args
        self.engine: subprocess.Popen | None = None
        self.background: Background | None = None
        self.inbox = None
        self.title = workspace.name
        self._errors: dict[str, float] = {}  # error summary -> when last shown (no floods)
        self._leaving = False
        self._left = False  # the draft was taken and exit asked for, after a signal
        errors, self.keymap_warnings = check_keymap(workspace) if workspace.keymap else ([], [])
        if errors:
            raise errors[0]
        self.set_keymap(workspace.keymap)

    # ---- the inbox, for tests and the palette -----------------------------------------------
    @property
    def conversations(self):
        return self.inbox.conversations

    @property
    def timeline(self):
        return self.inbox.timeline

    @property
    def composer(self):
        return self.inbox.composer

    @property
    def current(self):
        return self.inbox.current if self.inbox else None

    def on_mount(self) -> None:
        from console.ui.inbox import InboxScreen

        self.background = Background(self.store, self._post_from_thread, self.report_error, self._unreachable)
        self.inbox = InboxScreen(self.workspace, self.first)
        self.push_screen(self.inbox)
        for warning in self.keymap_warnings:
            self.notify(warning, severity="warning", timeout=10)
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                asyncio.get_running_loop().add_signal_handler(sig, self._hang_up, sig)
            except (NotImplementedError, RuntimeError):  # not the main thread (Pilot in a thread)
                pass
        if self.engine_args is not None:
            self.ensure_engine()
            self.set_interval(5, self.ensure_engine)

    def _post_from_thread(self, callback) -> None:
        """Run `callback` on the UI thread soon, without waiting for it (jobs report this way)."""
        if self._leaving and not self.is_running:
            return

        async def run() -> None:
            with self._context():
                callback()

        try:
            asyncio.run_coroutine_threadsafe(run(), self._loop)
        except RuntimeError:  # the loop has closed: the app is gone
            pass

    # ---- the error boundary -------------------------------------------------------------------
    def report_error(self, error: BaseException, what: str = "") -> None:
        """One line for the user, the traceback in the log; never ends the app."""
        what = what or "do that"
        log.error("could not %s", what, exc_info=(type(error), error, error.__traceback__))
        summary = one_line(f"{type(error).__name__}: {error}", 160)
        last = self._errors.get(summary)
        now = time.monotonic()
        self._errors[summary] = now
        if last is not None and now - last < 5:
            return  # the same failure again at once (a repaint, a timer): the log has it
        where = Path(self.workspace.data_dir) / "errors.log"
        try:
            self.notify(f"Could not {what}: {summary}. Nothing you typed is lost; details in {where}.",
                        severity="error", timeout=10)
        except Exception:  # noqa: BLE001 - reporting must never raise
            pass

    async def _on_message(self, message) -> None:
        try:
            await super()._on_message(message)
        except Exception as error:  # noqa: BLE001 - see report_error
            self.report_error(error, _what(message))

    async def on_event(self, event) -> None:
        try:
            await super().on_event(event)
        except Exception as error:  # noqa: BLE001 - see report_error (priority bindings run here)
            self.report_error(error, _what(event))

    def _unreachable(self, error: BaseException) -> None:
        """A read found the store's server unreachable: the inbox's header says so until it is back."""
        if self.inbox is not None and self.inbox.is_mounted:
            self.inbox.store_unreachable(error)

    def _handle_exception(self, error: Exception) -> None:
        """The last line: an error Textual would end the app for (a timer, a repaint, a screen's
        callback) is reported once the app is running; only a failure to start ends it."""
        if self.is_running and self.inbox is not None and self.inbox.is_mounted and not self._leaving:
            self.report_error(error, "draw the screen or run a timer")
            return
        super()._handle_exception(error)

    def notify(self, message, *, title: str = "", severity: str = "information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Notices take plain text: a `Text` becomes its characters (Textual's toast needs a
        string), and nothing in a notice is parsed as markup unless asked for."""
        if isinstance(message, Text):
            message = message.plain
        elif isinstance(message, Content):
            message = message.plain
        super().notify(str(message), title=title, severity=severity, timeout=timeout, markup=markup)

    # ---- help -----------------------------------------------------------------------------------
    def action_help(self) -> None:
        from console.ui.screens import HelpScreen

        from console.ui.keys import registry

        headings = {"ConsoleApp": "Everywhere", "InboxScreen": "The inbox", "ConversationList": "The list",
                    "Timeline": "The timeline (enter or tab)", "Composer": "The composer (r)",
                    "HelpScreen": "This help", "SnoozeScreen": "Snoozing", "PickScreen": "Prompts",
                    "ConfirmScreen": "Confirmations", "ReportsScreen": "Reports (ctrl+r)",
                    "StatusScreen": "Accounts, hours, SLA and rules (H)",
                    "CampaignsScreen": "Campaigns (C) and every outreach list",
                    "CampaignEditorScreen": "A campaign's steps", "StepScreen": "A step's texts",
                    "TextScreen": "Writing a text", "PreviewScreen": "The dry run",
                    "ReportScreen": "A campaign's report", "SegmentsScreen": "Segments",
                    "SegmentEditScreen": "A segment", "ConsentScreen": "Consent (o)"}
        sections, seen = {}, set()
        for info in registry():
            if info.owner not in seen:
                seen.add(info.owner)
                sections[info.id] = headings.get(info.owner, info.owner)
        self.push_screen(HelpScreen(self.binding_rows(), sections))

    def binding_rows(self) -> list[tuple[str, str, str]]:
        """(keys, description, id) for every binding, with the user's remapping applied."""
        from console.ui.keys import registry

        channels = self.inbox.channels if self.inbox else []
        rows = []
        for info in registry():
            keys = self.workspace.keymap.get(info.id) or ",".join(info.keys)
            display = ", ".join(self.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))
            description = info.description
            if info.id.startswith("list.channel_"):
                number = int(info.id.rsplit("_", 1)[1])
                description = (f"Only {channel_label(channels[number - 1])}" if number <= len(channels)
                               else f"Channel filter {number} (no such channel here)")
            rows.append((display, description, info.id))
        rows.append((self.get_key_display(Binding("ctrl+p", "")), "Command palette", "app.command_palette"))
        return rows

    # ---- leaving ------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Save the draft, let the queued writes land, and say what the outbox still holds."""
        if self._leaving:
            return
        self._leaving = True
        if self.inbox is None or self.background is None:
            self.exit()
            return
        composer = self.inbox.composer
        if composer.display:
            # ctrl+q is a priority key: keys typed just before may still wait in the editor's
            # queue; the draft is taken after them.
            composer.editor.call_later(self._quit_saving)
        else:
            self._quit_saving()

    def _quit_saving(self) -> None:
        self.inbox.keep_draft_now()
        self.background.run(lambda store: store.outbox_waiting(), self._exit_with_outbox,
                            what="read the outbox before quitting", lane="write")
        self.set_timer(5, lambda: self.exit())  # a store that does not answer must not keep us

    def _exit_with_outbox(self, waiting: list[dict]) -> None:
        self.exit(message=self.outbox_notice(waiting) or None)

    def outbox_notice(self, waiting: list[dict], now: float | None = None) -> str:
        """What quitting means for replies not delivered yet, in a sentence."""
        if not waiting:
            return ""
        now = time.time() if now is None else now
        soon = [w for w in waiting if w["next_try_at"] <= now + FINISH_OUTBOX_WITHIN]
        later = [w for w in waiting if w not in soon]
        holder = SyncLock(Path(self.workspace.data_dir)).holder()
        parts = []
        if soon:
            last = max(w["next_try_at"] for w in soon)
            at = time.strftime("%H:%M:%S", time.localtime(max(now, last)))
            noun = "reply is" if len(soon) == 1 else "replies are"
            if holder is not None:
                ours = self.engine is not None and self.engine.pid == holder
                parts.append(f"{len(soon)} {noun} still in the outbox: the sync engine (pid {holder}) "
                             f"delivers {'it' if len(soon) == 1 else 'them'} by {at}"
                             + (" and then stops." if ours else "."))
            else:
                parts.append(f"{len(soon)} {noun} still in the outbox and no sync engine runs: "
                             f"{'it goes' if len(soon) == 1 else 'they go'} when console or `console sync` next runs.")
        if later:
            first = time.strftime("%Y-%m-%d %H:%M", time.localtime(min(w["next_try_at"] for w in later)))
            parts.append(f"{len(later)} more wait{'s' if len(later) == 1 else ''} to be retried (first at {first}) "
                         "by the next `console` or `console sync`.")
        return "console: " + " ".join(parts)

    def _hang_up(self, sig: int) -> None:
        """SIGHUP (an SSH session dropped) or SIGTERM: keep the draft, then leave.

        The signal overtakes keys already typed: they may still wait in the terminal, in the
        driver's parser or in the editor's queue. So the draft is taken once the terminal has
        nothing more to read (at most a second) and after the keys queued before it."""
        if self._leaving:
            return
        log.info("leaving on signal %s", sig)
        self._leaving = True
        self.set_timer(4, lambda: self._leave_now(sig))  # whatever happens, we leave
        # Kept on the app: a task nobody holds may be collected before it runs.
        self._hang_up_task = asyncio.get_running_loop().create_task(self._hang_up_after_typing(sig))

    async def _hang_up_after_typing(self, sig: int) -> None:
        deadline = time.monotonic() + 1.0
        quiet = 0
        while time.monotonic() < deadline and quiet < 2:
            quiet = quiet + 1 if _unread_input() == 0 else 0
            await asyncio.sleep(0.03)  # the driver's thread parses what it read and posts it
        composer = self.inbox.composer if self.inbox is not None else None
        if composer is not None and composer.display:
            self.call_later(composer.editor.call_later, self._leave_now, sig)
        else:
            self.call_later(self._leave_now, sig)

    def _leave_now(self, sig: int) -> None:
        if not self.is_running or self._left:
            return
        self._left = True
        if self.inbox is not None:
            self.inbox.keep_draft_now()
        if self.background is not None:
            self.background.close(wait=3.0)
        # The draft and the queued writes are in the store now. A terminal that hung up makes
        # Textual's writer thread die on EIO and its shutdown wait forever on a full queue, so
        # a process nobody can see any more would linger: past a few seconds, it just ends.
        def _end() -> None:
            log.warning("the terminal did not let go %s s after signal %s; leaving without it", 3, sig)
            logging.shutdown()
            os._exit(128 + sig)

        timer = threading.Timer(3.0, _end)
        timer.daemon = True  # a normal exit does not wait for it
        timer.start()
        self.exit(return_code=128 + sig)

    def on_unmount(self) -> None:
        self._leaving = True
        if self.background is not None:
            if self.inbox is not None:
                pid, agent = os.getpid(), self.workspace.agent
                self.background.run(lambda store: store.clear_presence(agent, pid), what="leave", lane="write")
            self.background.close(wait=5.0)

    # ---- the sync engine ----------------------------------------------------------------------
    def ensure_engine(self) -> None:
        """Start `console sync` in its own process when no process syncs this workspace. When this
        app goes, that engine delivers what is due in the outbox and stops."""
        if not self.workspace.accounts or self._leaving:
            return
        if self.engine is not None and self.engine.poll() is None:
            return
        if SyncLock(Path(self.workspace.data_dir)).holder() is not None:
            return
        log_path = Path(self.workspace.data_dir) / "engine.out"
        with open(log_path, "ab") as out:
            self.engine = subprocess.Popen(
                [sys.executable, "-m", "console", "sync", *self.engine_args, "--parent-pid", str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            )
        log.info("started the sync engine, pid %s", self.engine.pid)


def _unread_input() -> int:
    """Bytes the terminal has sent that nobody has read yet; 0 when it is gone or not a terminal."""
    import fcntl
    import struct
    import termios

    try:
        fd = sys.__stdin__.fileno()
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except (OSError, ValueError, AttributeError):
        return 0


def channel_label(channel: str) -> str:
    from console.ui.render import channel_icon, channel_name

    return f"{channel_icon(channel)} {channel_name(channel)}"


def _what(message) -> str:
    key = getattr(message, "key", None)
    if key:
        return f"handle the key {key}"
    return f"handle {type(message).__name__}"
