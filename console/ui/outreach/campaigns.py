"""The Campaigns screen (`C` from the inbox, or the palette): every campaign, its state and
progress, and what to do with one: edit, dry run, launch, pause, cancel, report; segments.

The progress bars follow the sync engine's sends (another process) by polling the store's
data version once a second, off the UI thread like every store call.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from console.outreach import planner
from console.outreach import report as layout
from console.outreach.campaign import Campaign, Step
from console.ui.outreach.base import DELETE, MOVES, NEW, OPEN, OutreachScreen, guarded
from console.ui.render import safe_line

STATE_WORDS = {"draft": "draft", "running": "sending", "paused": "paused", "cancelled": "cancelled",
               "finished": "finished"}
POLL = 1.0


class CampaignsScreen(OutreachScreen):
    BINDINGS = [
        *MOVES, NEW, OPEN,
        Binding("p", "preview", "Dry run", id="campaigns.preview"),
        Binding("L", "launch", "Launch", id="campaigns.launch"),
        Binding("space", "pause", "Pause/resume", id="campaigns.pause"),
        Binding("X", "cancel", "Cancel", id="campaigns.cancel", show=False),
        Binding("R", "report", "Report", id="campaigns.report"),
        Binding("S", "segments", "Segments", id="campaigns.segments"),
        DELETE,
    ]

    def __init__(self):
        super().__init__()
        self.campaigns: list[Campaign] = []
        self.progress: dict[int, object] = {}
        self._version = None

    def on_mount(self) -> None:
        super().on_mount()
        self.title_line(Text.assemble(("Campaigns", "bold"), " ─ ", safe_line(self.workspace.name, 40)))
        self.set_interval(POLL, self._poll)

    def _poll(self) -> None:
        self.run(lambda store: store.data_version(), self._polled, what="watch the campaigns", key="campaigns-poll")

    def _polled(self, version: int) -> None:
        if self._version is not None and version != self._version:
            self.reload()
        self._version = version

    def reload(self) -> None:
        def job(store):
            campaigns = store.campaigns()
            return campaigns, {c.id: store.campaign_progress(c.id) for c in campaigns if c.state != "draft"}

        self.run(job, self._show, what="read the campaigns", key="campaigns")

    def _show(self, result) -> None:
        self.campaigns, self.progress = result
        rows = []
        for campaign in self.campaigns:
            text = safe_line(campaign.name, 22, style="bold")
            text.pad_right(23 - text.cell_len)
            text.append(f"{STATE_WORDS.get(campaign.state, campaign.state):<10}")
            steps = len(campaign.steps)
            text.append(f"{steps} step{'s' if steps != 1 else ''}  ", style="dim")
            text.append_text(safe_line(campaign.segment_name or "no segment", 16, style="dim"))
            progress = self.progress.get(campaign.id)
            if progress is not None:
                text.append("  ")
                text.append(layout.progress_bar(progress, 10))
            rows.append(text)
        self.rows.placeholder = "No campaign yet: n makes one."
        self.rows.show(rows)
        self._describe()

    def on_row_list_moved(self, message) -> None:
        self._describe()

    def _describe(self) -> None:
        campaign = self.selected
        if campaign is None:
            self.note("n: a new campaign · S: segments · esc: back to the inbox")
            return
        said = {"draft": "a draft: enter edits, p shows the dry run, L launches",
                "running": "sending: space pauses, X cancels what has not gone, R reports",
                "paused": "paused: space resumes, X cancels",
                "cancelled": "cancelled: R reports what went",
                "finished": "finished: R reports"}.get(campaign.state, "")
        self.note(Text.assemble(safe_line(campaign.name, 30, style="bold"), f" is {said}", style="dim"))

    @property
    def selected(self) -> Campaign | None:
        index = self.rows.index
        return self.campaigns[index] if index is not None and index < len(self.campaigns) else None

    def _need(self) -> Campaign | None:
        campaign = self.selected
        if campaign is None:
            self.app.bell()
        return campaign

    # ---- actions ------------------------------------------------------------------------------
    def action_new(self) -> None:
        from console.ui.screens import PickScreen

        def chosen(answer) -> None:
            if not answer or not answer[0].strip():
                return
            name = answer[0].strip()
            self.run(guarded(lambda store: store.save_campaign(Campaign(None, name, steps=[Step(1)]))),
                     self._made, what="make the campaign", lane="write")

        self.app.push_screen(PickScreen("Name of the new campaign", lambda store, text: [],
                                        placeholder="e.g. Spring menu"), chosen)

    def _made(self, result) -> None:
        if isinstance(result, Exception):
            self.refused(result)
            return
        from console.ui.outreach.editor import CampaignEditorScreen

        self.app.push_screen(CampaignEditorScreen(result))

    def action_open(self) -> None:
        campaign = self._need()
        if campaign is not None:
            from console.ui.outreach.editor import CampaignEditorScreen

            self.app.push_screen(CampaignEditorScreen(campaign.id))

    def action_preview(self) -> None:
        campaign = self._need()
        if campaign is not None:
            from console.ui.outreach.preview import PreviewScreen

            self.app.push_screen(PreviewScreen(campaign.id))

    def action_launch(self) -> None:
        campaign = self._need()
        if campaign is not None:
            launch(self, campaign.id, self.reload)

    def action_pause(self) -> None:
        campaign = self._need()
        if campaign is None:
            return
        action = {"running": "pause", "paused": "resume"}.get(campaign.state)
        if action is None:
            self.app.notify(f"{campaign.name} is {campaign.state}: only a sending campaign can be paused.")
            return
        self.run(guarded(lambda store: store.set_campaign_state(campaign.id, action)), self._changed(campaign),
                 what=f"{action} the campaign", lane="write")

    def action_cancel(self) -> None:
        from console.ui.screens import ConfirmScreen

        campaign = self._need()
        if campaign is None:
            return

        def answered(yes: bool) -> None:
            if yes:
                self.run(guarded(lambda store: store.set_campaign_state(campaign.id, "cancel")),
                         self._changed(campaign), what="cancel the campaign", lane="write")

        self.app.push_screen(ConfirmScreen(Text.assemble("Cancel ", safe_line(campaign.name, 40), "?"),
                                           "What has not gone yet will not go; what went stays in the report.",
                                           "enter cancels it"), answered)

    def _changed(self, campaign: Campaign):
        def done(result) -> None:
            if isinstance(result, Exception):
                self.refused(result)
                return
            self.app.notify(f"{safe_line(campaign.name, 40).plain}: {STATE_WORDS.get(result, result)}", timeout=3)
            self.reload()
        return done

    def action_report(self) -> None:
        campaign = self._need()
        if campaign is not None:
            from console.ui.outreach.report import ReportScreen

            self.app.push_screen(ReportScreen(campaign.id))

    def action_segments(self) -> None:
        from console.ui.outreach.segments import SegmentsScreen

        self.app.push_screen(SegmentsScreen())

    def action_delete(self) -> None:
        from console.ui.screens import ConfirmScreen

        campaign = self._need()
        if campaign is None:
            return

        def answered(yes: bool) -> None:
            if yes:
                self.run(guarded(lambda store: store.delete_campaign(campaign.id)), self._deleted,
                         what="delete the campaign", lane="write")

        self.app.push_screen(ConfirmScreen(Text.assemble("Delete the draft ", safe_line(campaign.name, 40), "?"),
                                           "Only a draft can be deleted.", "enter deletes it"), answered)

    def _deleted(self, result) -> None:
        if isinstance(result, Exception):
            self.refused(result)
        self.reload()


def launch(screen: OutreachScreen, campaign_id: int, then) -> None:
    """The dry run in a confirmation, then the launch (the same plan, written in one transaction)."""
    from console.ui.screens import ConfirmScreen

    senders, agent, settings = screen.senders, screen.workspace.agent, screen.workspace.outreach

    def answered(plan):
        def confirmed(yes: bool) -> None:
            if not yes:
                return
            screen.run(guarded(lambda store: planner.launch(store, campaign_id, senders, agent)), launched,
                       what="launch the campaign", lane="write")
        return confirmed

    def shown(plan) -> None:
        if isinstance(plan, Exception):
            screen.refused(plan)
            return
        if plan.campaign.state != "draft":
            screen.app.notify(f"{plan.campaign.name} is {plan.campaign.state}: it was launched already.")
            return
        details = Text("\n".join(layout.plan_lines(plan, settings, limit=3)[1:]))
        details.append("\n\nThe sync engine sends them at each account's pace; held ones go when quiet hours end.",
                       style="dim")
        count = len(plan.now) + len(plan.held)
        screen.app.push_screen(ConfirmScreen(Text.assemble("Launch ", safe_line(plan.campaign.name, 40),
                                                           f" to {count} customer{'s' if count != 1 else ''}?"),
                                             details, "enter launches"), answered(plan))

    def launched(plan) -> None:
        if isinstance(plan, Exception):
            screen.refused(plan)
            return
        screen.app.notify(f"Launched: {len(plan.now)} going now, {len(plan.held)} held for quiet hours.", timeout=5)
        then()

    screen.run(guarded(lambda store: planner.preview(store, campaign_id, senders, agent)), shown,
               what="prepare the dry run")
