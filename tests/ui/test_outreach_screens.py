"""The outreach screens in the app (Pilot, 80x24, the demo workspace): moving between them,
and what they show fitting in 80 columns."""

from __future__ import annotations

import asyncio

from console.ui.app import ConsoleApp
from console.ui.outreach.campaigns import CampaignsScreen
from console.ui.outreach.editor import CampaignEditorScreen, StepScreen
from conftest import ready, until

SIZE = (80, 24)


async def open_step(pilot, app):
    await pilot.press("C")
    await until(pilot, lambda: isinstance(app.screen, CampaignsScreen) and app.screen.campaigns, "the campaigns")
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, CampaignEditorScreen) and app.screen.campaign, "the editor")
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, StepScreen) and app.screen.campaign, "the step")


async def test_esc_goes_back_from_a_step_to_its_campaign(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await open_step(pilot, app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, CampaignEditorScreen), "back on the campaign")


async def test_a_step_text_kept_with_ctrl_s_leaves_the_app_answering_keys(demo):
    """The text form closed itself from inside its TextArea's message queue: the app then waited
    on the removal of the very widget that was running, and answered no key again."""
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.wait_for(keep_a_text(pilot, app), 30)  # it hung for good


async def keep_a_text(pilot, app):
    from console.ui.outreach.texts import TextScreen

    await ready(pilot, app)
    await open_step(pilot, app)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, TextScreen), "the text form")
    await pilot.press("end", "!", "ctrl+s")
    await until(pilot, lambda: isinstance(app.screen, StepScreen), "the step again")
    await until(pilot, lambda: "!" in app.screen.step.texts["email"].body, "the text kept")
    await pilot.press("escape")
    await until(pilot, lambda: isinstance(app.screen, CampaignEditorScreen), "back on the campaign")


async def test_o_shows_the_selected_customers_consent(demo):
    """The consent screen kept the customer's name in `name`, a DOM node's own read-only
    property: `o` raised instead of opening."""
    from console.ui.outreach.consent import ConsentScreen

    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        name = app.conversations.selected.name
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, ConsentScreen) and app.screen.consents, "the consent")
        assert app.screen.customer_name == name


async def test_a_new_segment_is_typed_in_its_fields_with_any_letter(demo):
    """The list below the fields had the focus (the base screen's mount gave it), so the name
    was typed nowhere and its first `n` opened "Exclude a customer"; j, k and delete moved and
    removed in the list while one typed in a field."""
    from textual.widgets import Input

    from console.ui.outreach.segments import SegmentEditScreen, SegmentsScreen
    from console.ui.screens import PickScreen

    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        app.push_screen(SegmentsScreen())
        await until(pilot, lambda: isinstance(app.screen, SegmentsScreen), "the segments")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SegmentEditScreen), "a new segment")
        await pilot.pause(0.1)
        await pilot.press(*"Jam and kids", "left", "delete", "tab", *"tag:regular")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, PickScreen)
        assert app.screen.query_one("#segment-name", Input).value == "Jam and kid"
        assert app.screen.query_one("#segment-query", Input).value == "tag:regular"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: store.segment("Jam and kid") is not None, "the segment saved")


async def test_a_step_reads_whole_at_80_columns(demo):
    """At 80x24 the title lost the rule's end, the SMS row its segment count and cost, and the
    note wrapped onto a second line under the list."""
    from textual.widgets import Static

    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await open_step(pilot, app)
        await pilot.pause(0.2)
        screen = app.screen
        title = screen.query_one("#outreach-title", Static).render().plain
        assert title.endswith("then this order") and len(title) <= 79, title
        sms = next(row for row in screen.rows.rows if "SMS" in row.plain[:12])
        assert "seg. ~USD" in sms.plain[:40], sms.plain
        note = screen.query_one("#outreach-note", Static)
        assert note.size.height == 1 and len(note.render().plain) <= note.size.width, note.render().plain
