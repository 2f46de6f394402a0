"""The composer: a reply on the channel the customer last used, or any other of theirs.

It only writes intents: `Composer.Send` carries the text and the chosen target to the app, which
commits it to the outbox. Limits that matter are shown while typing (SMS segments, chat length
limits, opted-out identities).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from rich.text import Text
from textual.app import SuspendNotSupported
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static, TextArea

from console.model import REPLY_WINDOW_HOURS
from console.sms import segment_info
from console.templates import unfilled
from console.ui.render import CHANNEL_NAMES, age, icon, safe_line

HUMAN_AGENT_CHANNELS = ("messenger", "instagram")

# Hard limits per channel (characters), where the service has one.
LIMITS = {"sms": 1600, "whatsapp": 4096, "telegram": 4096, "messenger": 2000, "instagram": 1000, "mastodon": 500}


@dataclass
class Target:
    account: str
    channel: str
    identity_id: int
    address: str
    opted_out: bool
    conversation_id: int | None
    last_inbound_at: float | None = None

    @property
    def window_left(self) -> float | None:
        """Seconds left in the channel's customer-service window (negative: closed), or None."""
        hours = REPLY_WINDOW_HOURS.get(self.channel)
        if hours is None:
            return None
        return (self.last_inbound_at or 0) + hours * 3600 - time.time()

    @property
    def human_agent_open(self) -> bool:
        """Meta lets a human agent answer for 7 days after the customer's last message."""
        return self.channel in HUMAN_AGENT_CHANNELS and (self.last_inbound_at or 0) + 7 * 86400 > time.time()

    @property
    def window_closed(self) -> bool:
        left = self.window_left
        return left is not None and left <= 0

    @property
    def window_note(self) -> str:
        left = self.window_left
        if left is None:
            return ""
        name = CHANNEL_NAMES.get(self.channel, self.channel)
        hours = REPLY_WINDOW_HOURS[self.channel]
        if left > 0:
            return f"{name} {hours}-hour window open: {age(left)} left"
        if not self.last_inbound_at:
            return f"{name}: the customer has not written yet, so only a template can start the conversation"
        return (f"{name}'s {hours}-hour window closed {age(-left)} ago: the service refuses free text now; "
                "send an approved template")

    def label(self) -> Text:
        text = Text(f"{icon(self.channel)} {CHANNEL_NAMES.get(self.channel, self.channel)} ", style="bold")
        text.append("to ")
        text.append_text(safe_line(self.address, 40))
        text.append(f" via {self.account}", style="dim")
        return text


def limit_note(channel: str, body: str) -> tuple[str, bool]:
    """A short note on length for this channel, and whether the body may be sent."""
    if not body.strip():
        return "", False
    if channel == "sms":
        info = segment_info(body)
        return info.describe(), info.sendable
    limit = LIMITS.get(channel)
    if limit is not None:
        if len(body) > limit:
            return f"{len(body)}/{limit} characters: too long for {CHANNEL_NAMES.get(channel, channel)}", False
        return f"{len(body)}/{limit}", True
    return f"{len(body)} characters", True


class Composer(Vertical):
    """Opens under the timeline with `r`; `ctrl+s` sends, `esc` keeps the draft and closes."""

    BINDINGS = [
        Binding("ctrl+s,ctrl+j", "send", "Send", id="composer.send", priority=True),
        Binding("escape", "close", "Close (keep draft)", id="composer.close"),
        Binding("ctrl+o", "next_target", "Other channel", id="composer.channel", priority=True),
        Binding("ctrl+t", "template", "Template", id="composer.template", priority=True),
        Binding("ctrl+e", "external_editor", "Edit in $EDITOR", id="composer.editor", priority=True, show=False),
        Binding("ctrl+g", "human_agent", "Send as a human agent (Meta, 7 days)", id="composer.human_agent",
                priority=True, show=False),
    ]

    class Send(Message):
        def __init__(self, target: Target, body: str, options: dict[str, str] | None = None):
            super().__init__()
            self.target, self.body, self.options = target, body, options or {}

    class Closed(Message):
        def __init__(self, draft: str):
            super().__init__()
            self.draft = draft

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.targets: list[Target] = []
        self.index = 0
        self.others_note = ""
        self.wa_template: str | None = None  # an approved WhatsApp template: the lines fill {{1}}, {{2}}...
        self.human_agent = False  # Meta: a HUMAN_AGENT-tagged reply, allowed up to 7 days after the customer wrote  # "ana is replying too", from the app's presence polling
        self.status = Static(id="composer-status")
        self.editor = TextArea(id="composer-text", soft_wrap=True, show_line_numbers=False)

    def compose(self):
        yield self.status
        yield self.editor

    @property
    def target(self) -> Target | None:
        return self.targets[self.index] if self.targets else None

    def open(self, targets: list[Target], draft: str = "", index: int = 0) -> None:
        self.human_agent = False
        self.wa_template = None
        self.targets, self.index = targets, min(index, max(0, len(targets) - 1))
        self.editor.load_text(draft)
        self.display = True
        self.editor.focus()
        self.editor.move_cursor(self.editor.document.end)
        self.update_status()

    def update_status(self) -> None:
        target = self.target
        if target is None:
            self.status.update(Text("This customer has no channel we can reply on.", style="bold red"))
            return
        text = Text("reply on ")
        text.append_text(target.label())
        if len(self.targets) > 1:
            text.append(f"  ({self.index + 1}/{len(self.targets)}, ctrl+o: other)", style="dim")
        if target.opted_out:
            text.append("  opted out: nothing can be sent here", style="bold red")
        elif self.wa_template:
            text.append(f"\napproved template '{self.wa_template}': line 1 fills {{{{1}}}}, line 2 fills {{{{2}}}}…",
                        style="bold green")
        else:
            note, ok = limit_note(target.channel, self.editor.text)
            if note:
                text.append(f"  {note}", style="dim" if ok else "bold red")
            if target.window_note:
                text.append(f"\n{target.window_note}", style="yellow" if target.window_closed else "dim")
                if target.window_closed and target.channel == "whatsapp":
                    text.append(" (ctrl+t)", style="yellow")
            if target.window_closed and target.channel in HUMAN_AGENT_CHANNELS:
                if target.human_agent_open:
                    text.append("\nctrl+g: send as a human agent (HUMAN_AGENT tag, allowed for 7 days) "
                                + ("[on]" if self.human_agent else "[off]"),
                                style="bold green" if self.human_agent else "yellow")
                else:
                    text.append("\nmore than 7 days since the customer wrote: Meta allows no reply until they write again",
                                style="bold red")
            missing = unfilled(self.editor.text)
            if missing:
                text.append(f"\nfill in {', '.join('{' + m + '}' for m in missing)} before sending", style="bold yellow")
        if self.others_note:
            text.append(f"\n{self.others_note}", style="bold magenta")
        self.status.update(text)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.update_status()

    def action_next_target(self) -> None:
        if self.targets:
            self.index = (self.index + 1) % len(self.targets)
            self.update_status()

    def action_send(self) -> None:
        target = self.target
        body = self.editor.text
        if target is None:
            self.app.bell()
            return
        if target.opted_out:
            self.app.notify("This customer opted out on this channel; pick another with ctrl+o.", severity="error")
            return
        note, ok = limit_note(target.channel, body)
        if not ok:
            self.app.notify(note or "Type a message first.", severity="warning")
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
            self.app.notify(Text(f"Fill in {', '.join('{' + m + '}' for m in missing)} first: the template left it open."),
                            severity="warning")
            return
        options = {"tag": "HUMAN_AGENT"} if self.human_agent and target.window_closed else {}
        self.post_message(self.Send(target, body, options))

    def action_human_agent(self) -> None:
        target = self.target
        if target is None or target.channel not in HUMAN_AGENT_CHANNELS or not target.window_closed:
            self.app.notify("The human-agent tag is for Messenger and Instagram replies after the 24-hour window.")
            return
        if not target.human_agent_open:
            self.app.notify("More than 7 days since the customer wrote: Meta allows no reply now.", severity="error")
            return
        self.human_agent = not self.human_agent
        self.update_status()

    def action_template(self) -> None:
        self.app.action_insert_template()

    def insert(self, text: str) -> None:
        self.editor.insert(text)
        self.editor.focus()

    def action_external_editor(self) -> None:
        """Suspend the app, edit the draft in $VISUAL/$EDITOR, and bring the text back."""
        import os
        import shlex
        import subprocess
        import tempfile

        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.NamedTemporaryFile("w+", suffix=".txt", prefix="console-reply-", delete=False) as handle:
            handle.write(self.editor.text)
            path = handle.name
        try:
            with self.app.suspend():
                done = subprocess.run([*shlex.split(editor), path], check=False)
            if done.returncode != 0:
                self.app.notify(Text(f"{editor} exited with status {done.returncode}; the draft is unchanged."),
                                severity="warning")
                return
            with open(path, encoding="utf-8", errors="replace") as handle:
                self.editor.load_text(handle.read().rstrip("\n"))
            self.editor.move_cursor(self.editor.document.end)
        except OSError as exc:
            self.app.notify(Text(f"Cannot run {editor}: {exc.strerror}. Set $EDITOR to your editor."),
                            severity="error")
        except SuspendNotSupported:
            self.app.notify("This terminal cannot hand over to an editor.", severity="warning")
        finally:
            os.unlink(path)

    def action_close(self) -> None:
        self.post_message(self.Closed(self.editor.text))
