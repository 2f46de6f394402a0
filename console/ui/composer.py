"""The composer: a reply on the channel the customer last used, or a new message on any of theirs.

It only writes intents: `Composer.Send` carries the text and the chosen target to the inbox,
which commits it to the outbox. Limits that matter are shown while typing (SMS segments, chat
length limits, reply windows, opted-out identities). What is typed is saved as a draft a moment
after each pause (`DraftChanged`), so a crash, `ctrl+q` or a dropped SSH session loses nothing;
a draft kept from before is shown as one when the composer opens, never silently joined to new
text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static, TextArea

from console.channels import catalog
from console.templates import unfilled
from console.ui.editor import edit_in_editor
from console.ui.guard import Guarded
from console.ui.render import age, channel_icon, channel_name, identity_label, when

DRAFT_SAVE_DELAY = 0.6  # seconds after the last keystroke


@dataclass
class Target:
    account: str
    channel: str
    identity_id: int
    address: str
    opted_out: bool
    conversation_id: int | None
    last_inbound_at: float | None = None
    kind: str = ""
    display_name: str = ""

    # The account's own length settings (a Mastodon server's max_characters), from the config.
    account_settings: dict | None = None

    @property
    def window(self) -> catalog.WindowState:
        return catalog.window_state(self.channel, self.last_inbound_at)

    @property
    def window_closed(self) -> bool:
        return not self.window.free_text

    @property
    def human_agent_open(self) -> bool:
        """Meta lets a human agent answer for 7 days after the customer's last message."""
        return self.window.human_agent

    @property
    def takes_human_agent(self) -> bool:
        return catalog.channel(self.channel).human_agent_days is not None

    @property
    def window_note(self) -> str:
        window = self.window
        if window.hours is None:
            return ""
        name = channel_name(self.channel)
        if window.free_text:
            return f"{name} {window.hours}-hour window open: {age(window.left)} left"
        if not window.wrote:
            return f"{name}: the customer has not written yet, so only a template can start the conversation"
        return (f"{name}'s {window.hours}-hour window closed {age(-window.left)} ago: the service refuses free text "
                "now" + ("; send an approved template" if window.templates else ""))

    def measure(self, body: str) -> catalog.LengthVerdict:
        mention = self.display_name if self.channel == "mastodon" else ""
        return catalog.measure(self.channel, body, catalog.length_settings(self.account_settings, mention=mention))

    def label(self) -> Text:
        text = Text(f"{channel_icon(self.channel)} {channel_name(self.channel)} ", style="bold")
        text.append("to ")
        text.append_text(identity_label(self.kind, self.address, self.display_name, 40, icon=False))
        text.append(f" via {self.account}", style="dim")
        return text


@dataclass
class Draft:
    body: str
    updated_at: float


def limit_note(channel: str, body: str, settings=None) -> tuple[str, bool]:
    """A short note on length for this channel, and whether the body may be sent: the catalog's
    verdict, the very rule the channel's adapter enforces before sending."""
    if not body.strip():
        return "", False
    verdict = catalog.measure(channel, body, settings)
    return verdict.note, verdict.ok


class Composer(Guarded, Vertical):
    """Opens under the timeline with `r` (or `c`); `ctrl+s` sends, `esc` keeps the draft and closes."""

    COMPONENT_CLASSES = {"composer--bad", "composer--warn", "composer--good", "composer--note", "composer--others"}
    DEFAULT_CSS = """
    Composer > .composer--bad { color: $error; text-style: bold; }
    Composer > .composer--warn { color: $warning; }
    Composer > .composer--good { color: $success; text-style: bold; }
    Composer > .composer--note { color: $text-muted; }
    Composer > .composer--others { color: $secondary; text-style: bold; }
    """
    BINDINGS = [
        Binding("ctrl+s,ctrl+j", "send", "Send", id="composer.send", priority=True),
        Binding("escape", "close", "Close (keep draft)", id="composer.close"),
        Binding("ctrl+o", "next_target", "Other channel", id="composer.channel", priority=True),
        Binding("ctrl+t", "template", "Template", id="composer.template", priority=True),
        Binding("ctrl+e", "external_editor", "Edit in $EDITOR", id="composer.editor", priority=True, show=False),
        Binding("ctrl+l", "discard", "Clear the text (drop the draft)", id="composer.clear", priority=True, show=False),
        Binding("ctrl+g", "human_agent", "Send as a human agent (Meta, 7 days)", id="composer.human_agent",
                priority=True, show=False),
    ]

    class Send(Message):
        def __init__(self, target: Target, body: str, options: dict[str, str] | None = None, subject: str = "",
                     new_thread: bool = False):
            super().__init__()
            self.target, self.body, self.options = target, body, options or {}
            self.subject, self.new_thread = subject, new_thread

    class Closed(Message):
        def __init__(self, draft: str):
            super().__init__()
            self.draft = draft

    class DraftChanged(Message):
        """The text changed and a pause followed: the inbox saves it as the customer's draft."""

        def __init__(self, customer_id: int, text: str):
            super().__init__()
            self.customer_id, self.text = customer_id, text

    class TemplateWanted(Message):
        pass

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.targets: list[Target] = []
        self.index = 0
        self.customer_id: int | None = None
        self.others_note = ""  # "ana is replying to this customer too", from the inbox's presence polling
        self.wa_template: str | None = None  # an approved WhatsApp template: the lines fill {{1}}, {{2}}...
        self.human_agent = False  # Meta: a HUMAN_AGENT-tagged reply, allowed up to 7 days after the customer wrote
        self.new_message = False  # `c`: a new message (an email gets a subject and a thread of its own)
        self.draft: Draft | None = None  # the kept draft this composer opened with
        self._saved_text = ""
        self._save_timer = None
        self.status = Static(id="composer-status")
        self.subject = Input(placeholder="Subject", id="composer-subject")
        self.editor = TextArea(id="composer-text", soft_wrap=True, show_line_numbers=False)

    def compose(self):
        yield self.status
        yield self.subject
        yield self.editor

    def on_mount(self) -> None:
        self.subject.display = False

    @property
    def target(self) -> Target | None:
        return self.targets[self.index] if self.targets else None

    @property
    def text(self) -> str:
        return self.editor.text

    def open(self, customer_id: int, targets: list[Target], draft: Draft | None = None, index: int = 0,
             new_message: bool = False, subject: str = "") -> None:
        self.customer_id = customer_id
        self.human_agent = False
        self.wa_template = None
        self.new_message = new_message
        self.draft = draft if draft and draft.body.strip() else None
        self.targets, self.index = targets, min(index, max(0, len(targets) - 1))
        self._saved_text = self.draft.body if self.draft else ""
        self.editor.load_text(self._saved_text)
        self.subject.value = subject
        self.display = True
        self._update_subject()
        self.editor.focus()
        self.editor.move_cursor(self.editor.document.end)
        self.update_status()

    def close(self) -> None:
        self.flush_draft()
        self.display = False

    def _update_subject(self) -> None:
        target = self.target
        self.subject.display = bool(self.new_message and target is not None and target.channel == "email")

    def _style(self, name: str):
        return self.get_component_rich_style(f"composer--{name}", partial=True)

    def update_status(self) -> None:
        target = self.target
        if target is None:
            self.status.update(Text("This customer has no channel we can reply on.", style=self._style("bad")))
            return
        text = Text("new message on " if self.new_message else "reply on ")
        text.append_text(target.label())
        if len(self.targets) > 1:
            text.append(f"  ({self.index + 1}/{len(self.targets)}, ctrl+o: other)", style=self._style("note"))
        if self.draft is not None and self.editor.text == self.draft.body:
            text.append(f"\ndraft kept from {when(self.draft.updated_at)}: go on writing, or ctrl+l clears it",
                        style=self._style("warn"))
        if target.opted_out:
            text.append("  opted out: nothing can be sent here", style=self._style("bad"))
        elif self.wa_template:
            text.append(f"\napproved template '{self.wa_template}': line 1 fills {{{{1}}}}, line 2 fills {{{{2}}}}…",
                        style=self._style("good"))
        else:
            verdict = target.measure(self.editor.text) if self.editor.text.strip() else None
            note, ok = (verdict.note, verdict.ok) if verdict else ("", False)
            if note:
                text.append(f"  {note}", style=self._style("note") if ok else self._style("bad"))
            if target.window_note:
                text.append(f"\n{target.window_note}", style=self._style("warn" if target.window_closed else "note"))
                if target.window_closed and target.channel == "whatsapp":
                    text.append(" (ctrl+t)", style=self._style("warn"))
            if target.window_closed and target.takes_human_agent:
                if target.human_agent_open:
                    text.append("\nctrl+g: send as a human agent (HUMAN_AGENT tag, allowed for 7 days) "
                                + ("[on]" if self.human_agent else "[off]"),
                                style=self._style("good" if self.human_agent else "warn"))
                else:
                    text.append("\nmore than 7 days since the customer wrote: Meta allows no reply until they write again",
                                style=self._style("bad"))
            missing = unfilled(self.editor.text)
            if missing:
                text.append(f"\nfill in {', '.join('{' + m + '}' for m in missing)} before sending",
                            style=self._style("warn"))
        if self.others_note:
            text.append(f"\n{self.others_note}", style=self._style("others"))
        self.status.update(text)

    # ---- drafts ---------------------------------------------------------------------------------
    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.update_status()
        if self._save_timer is not None:
            self._save_timer.stop()
        self._save_timer = self.set_timer(DRAFT_SAVE_DELAY, self.flush_draft)

    def flush_draft(self) -> None:
        """Save the text now if it changed since the last save (the inbox writes it)."""
        if self._save_timer is not None:
            self._save_timer.stop()
            self._save_timer = None
        if self.customer_id is None or not self.display:
            return
        text = self.editor.text
        if text != self._saved_text:
            self._saved_text = text
            self.post_message(self.DraftChanged(self.customer_id, text))

    def hide_while_sending(self) -> None:
        """Out of the way at once after ctrl+s; the text stays until the reply is in the outbox."""
        if self._save_timer is not None:
            self._save_timer.stop()
            self._save_timer = None
        self.display = False

    def show_again(self) -> None:
        """The reply was refused: the composer comes back with its text."""
        self.display = True
        self.editor.focus()
        self.update_status()

    def sent(self) -> None:
        """The reply is in the outbox: nothing left to keep."""
        if self._save_timer is not None:
            self._save_timer.stop()
            self._save_timer = None
        self._saved_text = ""
        self.draft = None
        self.editor.load_text("")
        self.display = False

    def _discard(self) -> None:
        self.draft = None
        self.editor.load_text("")
        self.flush_draft()
        self.update_status()

    # ---- sending --------------------------------------------------------------------------------
    def _next_target(self) -> None:
        if self.targets:
            self.index = (self.index + 1) % len(self.targets)
            self._update_subject()
            self.update_status()

    # The composer's keys are priority bindings: the app runs them as soon as they arrive, while
    # keys typed just before may still wait in the editor's queue (a fast typist, a paste). Each
    # action runs after them, through the editor's own queue, so `text` + ctrl+s sends all of it.
    def action_send(self) -> None:
        self.editor.call_later(self._send)

    def action_next_target(self) -> None:
        self.editor.call_later(self._next_target)

    def action_template(self) -> None:
        self.editor.call_later(self.post_message, self.TemplateWanted())

    def action_discard(self) -> None:
        self.editor.call_later(self._discard)

    def action_external_editor(self) -> None:
        self.editor.call_later(self._external_editor)

    def action_human_agent(self) -> None:
        self.editor.call_later(self._human_agent)

    def _send(self) -> None:
        target = self.target
        body = self.editor.text.strip("\n")
        if target is None:
            self.app.bell()
            return
        if target.opted_out:
            self.app.notify("This customer opted out on this channel; pick another with ctrl+o.", severity="error")
            return
        if not body.strip():
            self.app.notify("Type a message first.", severity="warning")
            return
        verdict = target.measure(body)
        if not verdict.ok:
            self.app.notify(verdict.refusal or verdict.note, severity="warning")
            return
        if self.wa_template and target.channel == "whatsapp":
            values = [line.strip() for line in body.splitlines() if line.strip()]
            variables = json.dumps({str(n): value for n, value in enumerate(values, 1)})
            shown = f"[template {self.wa_template}] " + " · ".join(values)
            self.post_message(self.Send(target, shown, {"template": self.wa_template, "variables": variables}))
            return
        if target.window_closed and not (self.human_agent and target.human_agent_open):
            self.app.notify(target.window_note, severity="error")
            return
        missing = unfilled(body)
        if missing:
            self.app.notify(f"Fill in {', '.join('{' + m + '}' for m in missing)} first: the template left it open.",
                            severity="warning")
            return
        subject = self.subject.value.strip() if self.subject.display else ""
        if self.subject.display and not subject:
            self.app.notify("A new email needs a subject: type it in the line above the text.", severity="warning")
            self.subject.focus()
            return
        options = {"tag": "HUMAN_AGENT"} if self.human_agent and target.window_closed else {}
        self.post_message(self.Send(target, body, options, subject=subject,
                                    new_thread=self.new_message and target.channel == "email"))

    def _human_agent(self) -> None:
        target = self.target
        if target is None or not target.takes_human_agent or not target.window_closed:
            self.app.notify("The human-agent tag is for Messenger and Instagram replies after the 24-hour window.")
            return
        if not target.human_agent_open:
            self.app.notify("More than 7 days since the customer wrote: Meta allows no reply now.", severity="error")
            return
        self.human_agent = not self.human_agent
        self.update_status()

    def insert(self, text: str) -> None:
        self.editor.insert(text)
        self.editor.focus()

    def _external_editor(self) -> None:
        """Edit the draft in $VISUAL/$EDITOR (console/ui/editor.py); the text comes back as the
        editor saved it, line breaks included."""
        text = edit_in_editor(self.app, self.editor.text, prefix="console-reply-")
        if text is not None:
            self.editor.load_text(text)
            self.editor.move_cursor(self.editor.document.end)
            self.flush_draft()
        self.editor.focus()

    def action_close(self) -> None:
        self.post_message(self.Closed(self.editor.text))
