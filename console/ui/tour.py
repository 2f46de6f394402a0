"""The demo tour: the demo workspace made ready for pictures, and the app driven through the
screens the README shows, with a picture of each.

scripts/screenshots.py saves the pictures as the README's screenshots; tests/ui/test_snapshots.py
compares them with the stored snapshots. One path through the app for both, so a screenshot and
the layout test it stands for show the same state. No test framework here: `pilot` is Textual's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from console.config import WorkspaceConfig

Save = Callable[[str], None]


def still(ws: WorkspaceConfig) -> WorkspaceConfig:
    """A still picture: the demo's made-up customers write nothing new while it is taken."""
    for account in ws.accounts:
        account.raw["chatter"] = False
    return ws


async def furnish(ws: WorkspaceConfig, store) -> None:
    """Fill `store` with the demo: six weeks of messages through the real engine, the triage a
    shop would have done, the SLA badges as the app's engine keeps them, the search index built.

    The same seed must give the same picture, so nothing here may depend on which thread ran
    first: the engine pulls one account at a time (pulled together, the three demo accounts left
    2963 to 2970 messages from one seed, by the order their batches landed), with no rules and no
    satisfaction question (duties that run beside the pulls); and the search index, built in the
    background, is waited for before the triage searches it."""
    from console.demo_workspace import furnish as furnish_triage
    from console.sla_duty import SlaDuty
    from console.sync import Engine

    for account in ws.accounts:
        await Engine(replace(ws, accounts=[account], rules=[], csat=None), store).run(once=True)
    store.index.settle(30)  # the triage finds whom to tag by searching
    furnish_triage(store, ws.agent)
    SlaDuty(ws, store).step()
    store.index.settle(30)


def hold_cursors(app) -> None:
    """No blinking: every text cursor on screen stays drawn, so two pictures of one state agree."""
    for widget in app.screen.query("Input, TextArea"):
        widget.cursor_blink = False


async def until(pilot, condition, pause: float = 0.2) -> None:
    """Wait (at most 10 s) for `condition`, then for the screen to finish drawing it."""
    for _ in range(200):
        await pilot.pause(0.05)
        if condition():
            break
    await pilot.pause(pause)


async def paste(pilot, app, text: str) -> None:
    """`text` pasted where the cursor is: what typing it does, in one event instead of a tenth of a second a key."""
    from textual.events import Paste

    app.post_message(Paste(text))  # as the terminal sends it: the app hands it to the focused widget
    await pilot.pause(0.2)


def showing(app) -> bool:
    return app.conversations.selected is not None and bool(app.timeline.entries)


STOPS = ("main", "reply", "help", "snooze", "card", "search", "waiting", "palette", "reports", "reports-plots",
         "status", "campaigns", "campaign-preview", "campaign-report")


async def tour(pilot, app, store, save: Save, stops: tuple[str, ...] = STOPS) -> None:
    """Drive the app from the inbox through `stops` (in STOPS' order; the others are passed by),
    calling `save(name)` at each."""

    def at(name: str) -> bool:
        return name in stops

    async def glance(keys: tuple[str, ...], name: str, pause: float = 0.2) -> None:
        """A screen that `keys` open and escape closes."""
        await pilot.press(*keys)
        await pilot.pause(pause)
        save(name)
        await pilot.press("escape")

    await until(pilot, lambda: showing(app))
    if at("main"):
        save("main")
    await pilot.press("j", "j")
    await until(pilot, lambda: showing(app) and app.conversations.cursor == 2)
    if at("reply"):
        await pilot.press("r")
        await paste(pilot, app, "Hi! Yes, the sourdough is ready for pickup after 4pm today.")
        save("reply")
        await pilot.press("escape")
    if at("help"):
        await glance(("question_mark",), "help")
    if at("snooze"):
        await glance(("s",), "snooze")
    if at("card"):
        store.add_tag(app.current.customer_id, "regular")
        store.add_note(app.current.customer_id, app.workspace.agent, "Picks up on Saturdays; allergic to nuts.")
        await pilot.press("i")
        await until(pilot, lambda: showing(app), pause=0.3)
        save("card")
        await pilot.press("i")
    if at("search"):
        await glance(("slash", *"sourdough"), "search", pause=0.6)
    if at("waiting"):
        await pilot.press("W")
        await until(pilot, lambda: showing(app))
        save("waiting")
    if at("palette"):
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"done")
        await pilot.pause(0.3)
        save("palette")
        await pilot.press("escape")
    if at("reports") or at("reports-plots") or at("status"):
        await pilot.press("O")
        await until(pilot, lambda: showing(app))
        await pilot.press("ctrl+r")
        await until(pilot, lambda: getattr(app.screen, "report", None) is not None, pause=0.3)
        if at("reports"):
            save("reports")
        if at("reports-plots"):
            await pilot.press(*"jjjjjjjjjjjjjjj")
            await pilot.pause(0.3)
            save("reports-plots")
        await pilot.press("escape")
    if at("status"):
        await glance(("H",), "status", pause=0.6)
    if any(at(name) for name in ("campaigns", "campaign-preview", "campaign-report")):
        await outreach(pilot, app, save, at)


async def outreach(pilot, app, save: Save, at: Callable[[str], bool]) -> None:
    """The Campaigns screen, the draft's dry run, the finished campaign's report."""
    from console.ui.outreach.campaigns import CampaignsScreen
    from console.ui.outreach.preview import PreviewScreen
    from console.ui.outreach.report import ReportScreen

    await pilot.press("C")
    await until(pilot, lambda: isinstance(app.screen, CampaignsScreen) and app.screen.campaigns, pause=0.3)
    if at("campaigns"):
        save("campaigns")
    if at("campaign-preview"):
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PreviewScreen) and app.screen.plan is not None)
        await pilot.press("j", "j")
        await pilot.pause(0.3)
        save("campaign-preview")
        await pilot.press("escape")
    if at("campaign-report"):
        await pilot.press("j", "R")
        await until(pilot, lambda: isinstance(app.screen, ReportScreen) and app.screen.rows.index is not None,
                    pause=0.3)
        save("campaign-report")
