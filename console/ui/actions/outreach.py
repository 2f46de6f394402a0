"""Outreach from the inbox: the Campaigns screen, and the selected customer's consent."""

from __future__ import annotations

from textual.binding import Binding


class OutreachActions:
    KEYS = [
        Binding("C", "campaigns", "Campaigns", id="outreach.campaigns", show=False),
        Binding("o", "consent", "Consent (opt-in/out)", id="customer.consent", show=False),
    ]
    PALETTE_ONLY = [("Segments: who campaigns are for", "segments")]

    def action_campaigns(self) -> None:
        from console.ui.outreach.campaigns import CampaignsScreen

        self.app.push_screen(CampaignsScreen())

    def action_segments(self) -> None:
        from console.ui.outreach.segments import SegmentsScreen

        self.app.push_screen(SegmentsScreen())

    def action_consent(self) -> None:
        from console.ui.outreach.consent import ConsentScreen

        row = self.need_customer()
        if row is None:
            return

        def closed(_result) -> None:
            self.refresh_all()  # the card, the header and the composer's targets follow

        self.app.push_screen(ConsentScreen(row.customer_id, row.name), closed)
