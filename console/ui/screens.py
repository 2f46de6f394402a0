"""Modal screens: the key help and the snooze picker."""

from __future__ import annotations

import datetime as dt

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option


class HelpScreen(ModalScreen[None]):
    """Every binding with its keys (as remapped), description and id for `[keymap]`."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, rows: list[tuple[str, str, str]]):
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(title=Text("Keys: remap them by id in the [keymap] table of the config"), expand=True,
                      show_edge=False, pad_edge=False)
        table.add_column("keys", style="bold", no_wrap=True)
        table.add_column("does")
        table.add_column("id", style="dim", no_wrap=True)
        for keys, description, ident in self.rows:
            table.add_row(Text(keys), Text(description), Text(ident))
        with VerticalScroll(id="help"):
            yield Static(table)
            yield Static(Text("esc closes this help", style="dim"))


def snooze_choices(now: dt.datetime) -> list[tuple[str, dt.datetime]]:
    """The quick choices, as (label, local time). 'This evening' is offered before 18:00."""
    today = now.replace(second=0, microsecond=0)
    choices = [("In 1 hour", today + dt.timedelta(hours=1))]
    evening = today.replace(hour=18, minute=0)
    if now < evening:
        choices.append(("This evening (18:00)", evening))
    tomorrow = (today + dt.timedelta(days=1)).replace(hour=9, minute=0)
    choices.append(("Tomorrow morning (09:00)", tomorrow))
    monday = (today + dt.timedelta(days=7 - today.weekday())).replace(hour=9, minute=0)
    choices.append(("Next week (Monday 09:00)", monday))
    return choices


def parse_when(text: str, now: dt.datetime) -> dt.datetime | None:
    """'2h', '30m', '3d', '17:30', '2026-12-01 09:00' -> a local datetime, or None."""
    text = text.strip().lower()
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if text[:-1].isdigit() and text[-1:] in units:
        return now + dt.timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        clock = dt.datetime.strptime(text, "%H:%M")
        moment = now.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
        return moment if moment > now else moment + dt.timedelta(days=1)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            moment = dt.datetime.strptime(text, fmt)
            return moment if fmt.endswith("%M") else moment.replace(hour=9)
        except ValueError:
            continue
    return None


class SnoozeScreen(ModalScreen[float | None]):
    """Pick when a conversation comes back: quick choices or a typed time."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="snooze.cancel")]

    def compose(self) -> ComposeResult:
        now = dt.datetime.now()
        self.choices = snooze_choices(now)
        options = [Option(Text(f"{label}  ·  {when:%a %d %b %H:%M}"), id=str(n))
                   for n, (label, when) in enumerate(self.choices)]
        with VerticalScroll(id="snooze"):
            yield Static(Text("Snooze until…", style="bold"))
            yield OptionList(*options, id="snooze-options")
            yield Input(placeholder="or type: 2h, 3d, 17:30, 2026-12-01 09:00", id="snooze-input")

    def on_mount(self) -> None:
        options = self.query_one("#snooze-options", OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[int(event.option.id)][1].timestamp())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        moment = parse_when(event.value, dt.datetime.now())
        if moment is None or moment <= dt.datetime.now():
            self.notify("Type a future time like 2h, 3d, 17:30 or 2026-12-01 09:00.", severity="warning")
            return
        self.dismiss(moment.timestamp())

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class PickScreen(ModalScreen[tuple[str, str | None] | None]):
    """A one-line prompt with live choices under it: tags, agents, templates, customers, search.

    `lookup(text)` returns [(choice id, label)] for what is typed (it runs on each keystroke, so
    it must be a quick store query). `enter` returns (typed text, id of the highlighted choice or
    None); `down`/`up` move among the choices; `esc` cancels (None)."""

    BINDINGS = [
        Binding("escape", "dismiss_none", "Cancel", id="pick.cancel"),
        Binding("down", "move(1)", "Next choice", id="pick.down", show=False, priority=True),
        Binding("up", "move(-1)", "Previous choice", id="pick.up", show=False, priority=True),
    ]

    def __init__(self, title: str, lookup, placeholder: str = "", value: str = "", allow_free_text: bool = True):
        super().__init__()
        self.title_text = title
        self.lookup = lookup
        self.placeholder = placeholder
        self.value = value
        self.allow_free_text = allow_free_text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="pick"):
            title = self.title_text if isinstance(self.title_text, Text) else Text(self.title_text)
            title.stylize("bold")
            yield Static(title)
            yield Input(value=self.value, placeholder=self.placeholder, id="pick-input")
            yield OptionList(id="pick-options")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._refresh_choices(self.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._refresh_choices(event.value)

    def _refresh_choices(self, text: str) -> None:
        options = self.query_one(OptionList)
        try:
            choices = self.lookup(text)
        except ValueError as exc:  # e.g. a search filter that cannot be understood
            options.clear_options()
            options.add_option(Option(Text(str(exc), style="yellow"), disabled=True))
            return
        options.clear_options()
        options.add_options([Option(label if isinstance(label, Text) else Text(label), id=ident)
                             for ident, label in choices])
        options.highlighted = 0 if choices and (text or not self.allow_free_text) else None

    def action_move(self, delta: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -1
            options.highlighted = min(max(0, current + delta), options.option_count - 1)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        options = self.query_one(OptionList)
        chosen = None
        if options.highlighted is not None and options.option_count:
            option = options.get_option_at_index(options.highlighted)
            chosen = option.id if not option.disabled else None
        if chosen is None and (not self.allow_free_text or not event.value.strip()):
            self.bell()
            return
        self.dismiss((event.value, chosen))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss((self.query_one(Input).value, event.option.id))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
