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
