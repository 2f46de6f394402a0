"""Writing one step's text for one channel: in the screen, or in `$EDITOR` (ctrl+e).

Email has a subject line above the body; a WhatsApp template's variables are written one per
line ({{1}} on the first...). While one types, the note says what the channel will make of it
for a sample customer: SMS segments and their cost, a length that does not fit, a placeholder
that is not one (the placeholders of templates: {first_name}, {name}, {agent}, {business}, the
customer's attributes, and `{first_name|there}` with a fallback). `ctrl+s` and `esc` keep the
text; nothing is lost by leaving.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static, TextArea

from console.outreach.campaign import ChannelText
from console.outreach.messages import render
from console.ui.editor import edit_in_editor
from console.ui.outreach.base import OutreachModal
from console.ui.render import channel_name

SAMPLE = ("Maria Lopez", {"city": "Berlin"})


class TextScreen(OutreachModal):
    BINDINGS = [
        Binding("ctrl+s", "save", "Keep the text", id="text.save", priority=True),
        Binding("ctrl+e", "editor", "Edit in $EDITOR", id="text.editor", priority=True),
        Binding("escape", "back", "Back (keeps the text)", id="outreach.back"),
    ]

    def __init__(self, channel: str, text: ChannelText):
        super().__init__()
        self.channel, self.text = channel, text
        self.template = channel == "whatsapp" and bool(text.template)

    def compose(self):
        with Vertical(id="text-form"):
            what = f"template {self.text.template}: one line per variable" if self.template else "text"
            yield Static(Text(f"{channel_name(self.channel)} {what}", style="bold"))
            subject = Input(value=self.text.subject, placeholder="Subject", id="text-subject")
            subject.display = self.channel == "email"
            yield subject
            body = "\n".join(self.text.variables) if self.template else self.text.body
            yield TextArea(body, id="text-body", soft_wrap=True, show_line_numbers=False)
            yield Static(id="text-note")

    def on_mount(self) -> None:
        self.query_one("#text-subject" if self.channel == "email" and not self.text.subject else "#text-body").focus()
        self._measure()

    def on_text_area_changed(self, event) -> None:
        self._measure()

    def on_input_changed(self, event) -> None:
        self._measure()

    def value(self) -> ChannelText:
        body = self.query_one("#text-body", TextArea).text
        if self.template:
            variables = tuple(line.strip() for line in body.splitlines() if line.strip())
            return ChannelText(template=self.text.template, variables=variables)
        return ChannelText(self.query_one("#text-subject", Input).value.strip() if self.channel == "email" else "",
                           body.strip("\n"))

    def _measure(self) -> None:
        settings = self.app.workspace.outreach
        value = self.value()
        note = Text(style="dim")
        if not value.empty:
            sample = render(value, self.channel, SAMPLE[0], SAMPLE[1], self.app.workspace.agent, settings,
                            token="12-0123456789abcdef", mailto=settings.unsubscribe_address or "you@shop.example")
            note.append("As Maria Lopez gets it: ")
            if self.channel == "sms":
                note.append(f"{sample.segments} SMS segment{'s' if sample.segments != 1 else ''}, about "
                            f"{settings.currency} {sample.cost:.4f} each time. ")
            if sample.problem:
                note.append(sample.problem, style="bold")
            else:
                note.append(" ".join(sample.body.split())[:150])
        note.append("\n{first_name} {name} {agent} {business}, attributes, {first_name|there} · ctrl+s keeps · "
                    "ctrl+e $EDITOR · esc back")
        self.query_one("#text-note", Static).update(note)

    def action_save(self) -> None:
        # The value is read in the TextArea's queue, after the keys still waiting there; the form
        # closes from its own queue (closed from the TextArea's, the app would wait for that very
        # widget to go and answer no key again).
        def close(value: ChannelText) -> None:
            self.dismiss(value)  # not awaited: a screen's own queue may not wait for its dismissal

        self.query_one("#text-body", TextArea).call_later(lambda: self.call_later(close, self.value()))

    def action_back(self) -> None:
        self.action_save()

    def action_editor(self) -> None:
        area = self.query_one("#text-body", TextArea)

        def edit() -> None:
            edited = edit_in_editor(self.app, area.text, prefix=f"console-{self.channel}-")
            if edited is not None:
                area.load_text(edited.rstrip("\n"))
                area.move_cursor(area.document.end)
            area.focus()

        area.call_later(edit)

