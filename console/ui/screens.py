"""Modal screens: the key help, the snooze picker, the pick prompt and the confirmation."""

from __future__ import annotations

import datetime as dt
from typing import Callable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from console.ui.guard import Guarded

LOOKUP_DELAY = 0.12  # seconds of quiet typing before the choices are looked up


def scroll_bindings(prefix: str) -> list[Binding]:
    """j/k, g/G (and the arrows, home, end) for a screen that is one long page: `<prefix>.down` ..."""
    return [
        Binding("j,down", "scroll(1)", "Scroll down", id=f"{prefix}.down", show=False),
        Binding("k,up", "scroll(-1)", "Scroll up", id=f"{prefix}.up", show=False),
        Binding("G,end", "scroll_end", "Bottom", id=f"{prefix}.bottom", show=False),
        Binding("g,home", "scroll_home", "Top", id=f"{prefix}.top", show=False),
    ]


class Scrolling:
    """The actions of `scroll_bindings`, on the widget `SCROLLS` selects."""

    SCROLLS = ""

    def action_scroll(self, lines: int) -> None:
        # At once: key presses that come faster than frames would each start from the old place.
        self.query_one(self.SCROLLS).scroll_relative(y=lines, animate=False, immediate=True)

    def action_scroll_end(self) -> None:
        self.query_one(self.SCROLLS).scroll_end(animate=False)

    def action_scroll_home(self) -> None:
        self.query_one(self.SCROLLS).scroll_home(animate=False)


class HelpScreen(Guarded, Scrolling, ModalScreen[None]):
    """Every binding with its keys (as remapped), description and id for `[keymap]`, in the
    order of where they work (everywhere, the inbox, the list, the timeline, the composer...)."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"), *scroll_bindings("help")]
    SCROLLS = "#help"

    def __init__(self, rows: list[tuple[str, str, str]], sections: dict[str, str] | None = None):
        super().__init__()
        self.rows = rows
        self.sections = sections or {}  # binding id -> the heading it starts

    def compose(self) -> ComposeResult:
        table = Table(title=Text("Keys: remap them by id in the [keymap] table of the config"), expand=True,
                      show_edge=False, pad_edge=False, box=None)
        table.add_column("keys", style="bold", no_wrap=True)
        table.add_column("does", ratio=1)
        table.add_column("id", style="dim", no_wrap=True)
        for keys, description, ident in self.rows:
            heading = self.sections.get(ident)
            if heading:
                table.add_row(Text(""), Text(heading, style="bold underline"), Text(""))
            table.add_row(Text(keys), Text(description), Text(ident))
        with VerticalScroll(id="help"):
            yield Static(table)
            yield Static(Text("j/k scroll · g/G top/bottom · esc closes this help", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#help").focus()


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


class SnoozeScreen(Guarded, ModalScreen[float | None]):
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
            self.app.notify("Type a future time like 2h, 3d, 17:30 or 2026-12-01 09:00.", severity="warning")
            return
        self.dismiss(moment.timestamp())

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


Lookup = Callable[..., list[tuple[str, Text | str]]]


class PickScreen(Guarded, ModalScreen[tuple[str, str | None] | None]):
    """A one-line prompt with live choices under it: tags, agents, templates, customers, search.

    `lookup(store, text)` returns [(choice id, label)] for what is typed. It runs off the UI
    thread (on the `lane` given: "search" lookups can be cancelled mid-query), a moment after
    typing pauses, and a newer lookup supersedes an older one, so typing never waits. A lookup
    that raises ValueError shows its message in place of the choices (a search filter that cannot
    be understood). `empty` is what an empty answer says ("No message matches"). `enter` returns
    (typed text, id of the highlighted choice or None); `down`/`up` move among the choices; `esc`
    cancels (None)."""

    COMPONENT_CLASSES = {"pick--problem"}
    DEFAULT_CSS = "PickScreen > .pick--problem { color: $warning; }"
    BINDINGS = [
        Binding("escape", "dismiss_none", "Cancel", id="pick.cancel"),
        Binding("down", "move(1)", "Next choice", id="pick.down", show=False, priority=True),
        Binding("up", "move(-1)", "Previous choice", id="pick.up", show=False, priority=True),
    ]

    def __init__(self, title: str | Text, lookup: Lookup, placeholder: str = "", value: str = "",
                 allow_free_text: bool = True, lane: str = "read", empty: str = "", min_chars: int = 0):
        super().__init__()
        self.title_text = title
        self.lookup = lookup
        self.placeholder = placeholder
        self.value = value
        self.allow_free_text = allow_free_text
        self.lane = lane
        self.empty = empty
        self.min_chars = min_chars
        self.looked_up: str | None = None  # the text the shown choices are for
        self._timer = None
        self._serial = 0

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="pick"):
            title = self.title_text.copy() if isinstance(self.title_text, Text) else Text(self.title_text)
            title.stylize("bold")
            yield Static(title)
            yield Input(value=self.value, placeholder=self.placeholder, id="pick-input")
            yield OptionList(id="pick-options")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._look_up(self.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(LOOKUP_DELAY, lambda: self._look_up(event.value))

    def _look_up(self, text: str) -> None:
        self._serial += 1
        serial = self._serial
        if len(text.strip()) < self.min_chars:
            self._show(serial, text, [])
            return
        lookup = self.lookup
        pass_ticket = self.lane == "search"

        def job(store, ticket=None):
            return lookup(store, text, ticket) if pass_ticket else lookup(store, text)

        def shown(result) -> None:
            self._show(serial, text, result)

        def failed(error: ValueError) -> None:
            self._show(serial, text, error)

        self.app.background.run(lambda *args: _catch_value_error(job, *args), shown,
                                what="look up the choices", lane=self.lane, key=f"pick-{id(self)}",
                                pass_ticket=pass_ticket)

    def _show(self, serial: int, text: str, choices) -> None:
        if serial != self._serial or not self.is_mounted:
            return
        options = self.query_one(OptionList)
        options.clear_options()
        self.looked_up = text
        if isinstance(choices, ValueError):
            options.add_option(Option(Text(str(choices), style=self.get_component_rich_style("pick--problem",
                                                                                               partial=True)),
                                      disabled=True))
            return
        if not choices:
            if self.empty and len(text.strip()) >= max(1, self.min_chars):
                options.add_option(Option(Text(self.empty.format(text=text.strip()), style="dim"), disabled=True))
            return
        options.add_options([Option(label if isinstance(label, Text) else Text(label), id=ident)
                             for ident, label in choices])
        options.highlighted = 0 if (text or not self.allow_free_text) else None

    def action_move(self, delta: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -1
            options.highlighted = min(max(0, current + delta), options.option_count - 1)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.looked_up != event.value and not (self.allow_free_text and event.value.strip()):
            # The choices are for older text: look up now and take the first once it arrives.
            self._timer and self._timer.stop()
            self._look_up(event.value)
            self.set_timer(0.05, lambda: self._submit_when_ready(event.value, 40))
            return
        self._submit(event.value)

    def _submit_when_ready(self, value: str, tries: int) -> None:
        if self.looked_up == value or tries <= 0:
            self._submit(value)
        else:
            self.set_timer(0.05, lambda: self._submit_when_ready(value, tries - 1))

    def _submit(self, value: str) -> None:
        options = self.query_one(OptionList)
        chosen = None
        if options.highlighted is not None and options.option_count and self.looked_up == value:
            option = options.get_option_at_index(options.highlighted)
            chosen = option.id if not option.disabled else None
        if chosen is None and (not self.allow_free_text or not value.strip()):
            self.app.bell()
            return
        self.dismiss((value, chosen))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if not event.option.disabled:
            self.dismiss((self.query_one(Input).value, event.option.id))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def _catch_value_error(job, *args):
    try:
        return job(*args)
    except ValueError as error:
        return error


class ConfirmScreen(Guarded, ModalScreen[bool]):
    """Says what is about to happen and waits for `enter` (or `y`); `esc` (or `n`) cancels."""

    BINDINGS = [
        Binding("enter,y", "answer(True)", "Confirm", id="confirm.yes"),
        Binding("escape,n", "answer(False)", "Cancel", id="confirm.no"),
    ]

    def __init__(self, title: str | Text, details: Text | str, yes: str = "enter confirms"):
        super().__init__()
        self.title_text, self.details, self.yes = title, details, yes

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="confirm"):
            title = self.title_text.copy() if isinstance(self.title_text, Text) else Text(self.title_text)
            title.stylize("bold")
            yield Static(title)
            yield Static(self.details if isinstance(self.details, Text) else Text(self.details))
            yield Static(Text(f"{self.yes} · esc cancels", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#confirm").focus()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
