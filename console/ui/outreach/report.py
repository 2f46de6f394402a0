"""A campaign's report (`R`): the funnel per step and channel, what was left out and why, and
the lift against the holdout. The same numbers as `console campaign report NAME`."""

from __future__ import annotations

from rich.text import Text

from console.outreach import report as layout
from console.ui.outreach.base import MOVES, OutreachScreen, guarded
from console.ui.render import safe_line


class ReportScreen(OutreachScreen):
    BINDINGS = [*MOVES]

    def __init__(self, campaign_id: int):
        super().__init__()
        self.campaign_id = campaign_id

    def reload(self) -> None:
        campaign_id = self.campaign_id
        self.run(guarded(lambda store: store.campaign_report(campaign_id)), self._show, what="measure the campaign",
                 key=f"report-{campaign_id}")

    def _show(self, report) -> None:
        if isinstance(report, Exception):
            self.refused(report)
            return
        self.title_line(Text.assemble(("Report ", "bold"), safe_line(report.campaign, 40, style="bold"),
                                      f" · {report.state} · launched {layout.moment(report.launched_at, self.workspace.outreach.timezone)}"))
        style = {"heading": "bold", "stage": "", "note": "dim"}
        self.rows.show([Text(line, style=style[kind]) for kind, line in layout.funnel_lines(report)])
        measured = f"replies on any channel within {report.reply_days} days"
        if report.convert_on:
            measured += f" · converted = {report.convert_on} within {report.convert_days} days"
        self.note(f"{measured} · console campaign report NAME --json / --csv · esc back")
