"""What every outreach screen shares: moving in its list, going back, reaching the store.

The outreach screens (campaigns, a campaign's steps, a step's texts, the dry run, the report,
segments, consent) are full screens pushed over the inbox, each a list of rows (rows.py) with a
few keys of its own. `j`/`k` move and `esc` goes back on all of them under one binding id each
(`outreach.down`, `outreach.up`, `outreach.back`), and `n` / `enter` / `delete` add, open and
remove the list's items wherever the list has such items. Every store call is a job on the app's
lanes (console/ui/background.py), never on the UI thread.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from console.outreach.settings import senders_for
from console.ui.guard import Guarded
from console.ui.outreach.rows import RowList

MOVES = [
    Binding("j,down", "move(1)", "Next", id="outreach.down", show=False),
    Binding("k,up", "move(-1)", "Previous", id="outreach.up", show=False),
    Binding("escape", "back", "Back", id="outreach.back"),
]
NEW = Binding("n", "new", "New", id="outreach.new")
OPEN = Binding("enter", "open", "Open", id="outreach.edit")
DELETE = Binding("delete", "delete", "Delete", id="outreach.delete", show=False)


class OutreachParts:
    """What the outreach screens and forms share (mixed into a Screen or a ModalScreen)."""

    @property
    def rows(self) -> RowList:
        return self.query_one("#outreach-rows", RowList)

    @property
    def workspace(self):
        return self.app.workspace

    @property
    def senders(self):
        return senders_for(self.app.workspace)

    def run(self, job, done=None, *, what: str, lane: str = "read", key: str | None = None, pass_ticket: bool = False):
        return self.app.background.run(job, done, what=what, lane=lane, key=key, pass_ticket=pass_ticket)

    def title_line(self, text: Text) -> None:
        text.no_wrap, text.overflow = True, "ellipsis"
        self.query_one("#outreach-title", Static).update(text)

    def note(self, text: Text | str) -> None:
        self.query_one("#outreach-note", Static).update(text if isinstance(text, Text) else Text(text, style="dim"))

    def reload(self) -> None:
        """Read what the screen shows (a job) and show it."""

    def action_move(self, delta: int) -> None:
        self.rows.move(delta)

    def action_back(self) -> None:
        self.app.pop_screen()

    def refused(self, error: Exception) -> None:
        """A change the store refused, said in a sentence (a campaign launched already...)."""
        self.app.bell()
        self.app.notify(str(error), severity="warning", timeout=6)


class OutreachScreen(Guarded, OutreachParts, Screen):
    """A full screen with a title line, a list and a note line above the footer."""

    def compose(self):
        yield Static(id="outreach-title")
        yield from self.body()
        yield Static(id="outreach-note")
        yield Footer(compact=True)

    def body(self):
        yield RowList(id="outreach-rows")

    def on_mount(self) -> None:
        self.rows.focus()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()  # back from a screen above that changed something


def guarded(job):
    """A job whose ValueError (a refusal of the store, in a sentence) comes back as a value."""
    def run(*args):
        try:
            return job(*args)
        except ValueError as error:
            return error
    return run


class OutreachModal(Guarded, OutreachParts, ModalScreen):
    """A small form over a screen (a text, consent)."""
