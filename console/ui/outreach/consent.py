"""Consent on the customer (`o` in the inbox): every identity on every channel it can be reached
on, for service and for marketing, with its state, source and date; `g` records a consent (what
they agreed to, and where: kept as the proof), `w` a withdrawal (why). Every change is kept with
the agent's name and the reason (`console consent export` shows them)."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from console.outreach.consent import consent_rows
from console.ui.outreach.base import MOVES, OutreachModal, guarded
from console.ui.outreach.rows import RowList
from console.ui.render import channel_name, identity_label, safe_line, when

STATES = {"granted": "yes", "withdrawn": "no, withdrawn", "": "—"}


def consent_line(row) -> Text:
    text = identity_label(row.kind, row.address, "", 24)
    text.pad_right(26 - text.cell_len)
    text.append(f"{channel_name(row.channel):<10}{row.purpose:<10}")
    if row.state == "granted":
        text.append("yes", style="bold")
        text.append(f" · {when(row.granted_at) if row.granted_at else ''} ", style="dim")
        text.append_text(safe_line(row.source, 40, style="dim"))
    elif row.state == "withdrawn":
        text.append("withdrawn", style="bold")
        text.append(f" · {when(row.withdrawn_at) if row.withdrawn_at else ''} ", style="dim")
        text.append_text(safe_line(row.withdrawn_source, 40, style="dim"))
    else:
        text.append("implied (they write to us)" if row.purpose == "service" else "not asked", style="dim")
    return text


class ConsentScreen(OutreachModal):
    BINDINGS = [
        *MOVES,
        Binding("g", "grant", "Record a consent", id="consent.grant"),
        Binding("w", "withdraw", "Record a withdrawal", id="consent.withdraw"),
    ]

    def __init__(self, customer_id: int, name: str):
        super().__init__()
        self.customer_id, self.customer_name = customer_id, name  # `name` is the DOM node's
        self.consents = []

    def compose(self):
        with Vertical(id="consent"):
            yield Static(id="outreach-title")
            yield RowList(id="outreach-rows", placeholder="Reading…")
            yield Static(id="outreach-note")

    def on_mount(self) -> None:
        self.title_line(Text.assemble(("Consent of ", "bold"), safe_line(self.customer_name, 40, style="bold")))
        self.note("g: they agreed (write what and where) · w: they withdrew (write why) · esc: back")
        self.rows.focus()
        self.reload()

    def reload(self) -> None:
        customer = self.customer_id
        self.run(lambda store: consent_rows(store, customer), self._show, what="read the consent", key="consent")

    def _show(self, rows) -> None:
        self.consents = rows
        self.rows.show([consent_line(r) for r in rows])

    @property
    def selected(self):
        index = self.rows.index
        return self.consents[index] if index is not None and index < len(self.consents) else None

    def _record(self, state: str, title: str, placeholder: str) -> None:
        from console.ui.screens import PickScreen

        row = self.selected
        if row is None:
            self.app.bell()
            return
        agent = self.workspace.agent

        def chosen(answer) -> None:
            if not answer or not answer[0].strip():
                return
            said = answer[0].strip()

            def job(store):
                if state == "granted":
                    return store.set_consent(row.identity_id, row.channel, row.purpose, "granted",
                                             f"recorded by {agent}: {said}", said, reason=said, agent=agent)
                return store.set_consent(row.identity_id, row.channel, row.purpose, "withdrawn",
                                         f"recorded by {agent}: {said}", reason=said, agent=agent)

            def done(result) -> None:
                if isinstance(result, Exception):
                    self.refused(result)
                    return
                self.app.notify(f"{channel_name(row.channel)} {row.purpose}: "
                                f"{'consent' if state == 'granted' else 'withdrawal'} recorded.", timeout=3)
                self.reload()

            self.run(guarded(job), done, what="record the consent", lane="write")

        self.app.push_screen(PickScreen(Text.assemble(title, f" ({channel_name(row.channel)}, {row.purpose})"),
                                        lambda store, text: [], placeholder=placeholder), chosen)

    def action_grant(self) -> None:
        self._record("granted", "What did they agree to, and where? (kept as the proof)",
                     "e.g. weekly news by SMS, signed the list in the shop")

    def action_withdraw(self) -> None:
        self._record("withdrawn", "Why? (kept with the withdrawal)", "e.g. asked on the phone to stop the news")

    def action_back(self) -> None:
        self.dismiss(None)
