"""The dry run of a campaign (`p`): who gets what, when, and who does not, and why.

N selected -> M now, H held until when, and every exclusion by its reason code with the names
behind each count; then a row per recipient, and under the list the exact text the selected
one gets, on the channel the rule chose. `t` sends that text to the workspace's own test
addresses only; `L` launches (after a confirmation with the same numbers).
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

from console.outreach import planner
from console.outreach import report as layout
from console.outreach.reasons import Reason
from console.ui.outreach.base import MOVES, OutreachScreen, guarded
from console.ui.outreach.rows import RowList
from console.ui.render import channel_icon, channel_name, safe, safe_line


class PreviewScreen(OutreachScreen):
    BINDINGS = [
        *MOVES,
        Binding("t", "test", "Test send to me", id="preview.test"),
        Binding("L", "launch", "Launch", id="campaigns.launch"),
    ]

    def __init__(self, campaign_id: int, position: int = 1):
        super().__init__()
        self.campaign_id, self.position = campaign_id, position
        self.plan = None
        self.order = []

    def body(self):
        yield Static(id="preview-summary")
        yield RowList(id="outreach-rows", placeholder="Working out the dry run…")
        yield Static(id="preview-text")

    def reload(self) -> None:
        senders, agent, campaign_id, position = self.senders, self.workspace.agent, self.campaign_id, self.position
        self.run(guarded(lambda store: planner.preview(store, campaign_id, senders, agent, position=position)),
                 self._show, what="work out the dry run", key=f"preview-{campaign_id}")

    def _show(self, plan) -> None:
        if isinstance(plan, Exception):
            self.rows.placeholder = str(plan)
            self.rows.show([])
            self.note(Text(str(plan), style="bold"))
            return
        self.plan = plan
        settings = self.workspace.outreach
        self.title_line(Text.assemble(("Dry run ", "bold"), safe_line(plan.campaign.name, 40, style="bold"),
                                      f" · step {plan.position} · as if launched now"))
        self.query_one("#preview-summary", Static).update(Text("\n".join(layout.plan_summary(plan, settings))))
        rank = {None: 0, Reason.HELD: 1}
        self.order = sorted(plan.rows, key=lambda p: (rank.get(p.reason, 2), p.reason.value if p.reason else "", p.name))
        self.rows.show([self._row(p) for p in self.order])
        self.note("j/k: whose text is shown · t: test send to your test addresses · L: launch")

    def _row(self, p) -> Text:
        text = safe_line(p.name or f"customer {p.customer_id}", 24, style="bold")
        text.pad_right(25 - text.cell_len)
        if p.channel:
            text.append(f"{channel_icon(p.channel)} {channel_name(p.channel):<9}")
        else:
            text.append(" " * 11)
        if p.reason is None:
            text.append("now")
        elif p.reason is Reason.HELD:
            text.append(f"held until {layout.moment(p.at, self.workspace.outreach.timezone)}")
        else:
            text.append(p.reason.label, style="dim")
        return text

    def on_row_list_moved(self, message) -> None:
        index = message.index
        shown = Text()
        if index is not None and index < len(self.order):
            p = self.order[index]
            if p.rendered is not None:
                if p.rendered.subject:
                    shown.append("Subject: ", style="dim")
                    shown.append_text(safe_line(p.rendered.subject, 100))
                    shown.append("\n")
                shown.append_text(safe(p.rendered.body))
            else:
                shown.append(p.detail or (p.reason.sentence if p.reason else ""), style="dim")
        self.query_one("#preview-text", Static).update(shown)

    def action_test(self) -> None:
        index = self.rows.index
        if self.plan is None or index is None:
            self.app.bell()
            return
        customer = self.order[index].customer_id
        senders, agent, campaign_id, position = self.senders, self.workspace.agent, self.campaign_id, self.position

        def done(result) -> None:
            if isinstance(result, Exception):
                self.refused(result)
            else:
                self.app.notify("Test queued: " + "; ".join(result), timeout=5)

        self.run(guarded(lambda store: planner.test_send(store, campaign_id, position, customer, senders, agent)),
                 done, what="send the test", lane="write")

    def action_launch(self) -> None:
        from console.ui.outreach.campaigns import launch

        launch(self, self.campaign_id, self.reload)
