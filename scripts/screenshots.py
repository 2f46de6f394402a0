"""Render the README's screenshots from the demo workspace into screenshots/*.svg.

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--size 100x30]

The demo workspace is built in a temporary directory (never the user's), through the demo
adapter and the real sync engine, then the app is driven with Textual's Pilot.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.config import demo_config  # noqa: E402
from console.demo_workspace import furnish  # noqa: E402
from console.sla_duty import SlaDuty  # noqa: E402
from console.store import Store  # noqa: E402
from console.sync import Engine  # noqa: E402
from console.ui.app import ConsoleApp  # noqa: E402


async def settle(pilot, app) -> None:
    for _ in range(100):
        await pilot.pause(0.05)
        if app.conversations.selected is not None and app.timeline.entries:
            break
    await pilot.pause(0.2)


async def shoot(out: Path, width: int, height: int) -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = demo_config(Path(tmp))
        for account in ws.accounts:
            account.raw["chatter"] = False  # a still picture: no new messages while shooting
        store = Store(ws.store_path, ws.default_region)
        await Engine(ws, store).run(once=True)
        furnish(store, ws.agent)
        SlaDuty(ws, store).step()  # the badges, as the app's engine keeps them
        app = ConsoleApp(ws, store, engine_args=None)
        written = []

        def save(name: str) -> None:
            path = out / f"{name}.svg"
            app.save_screenshot(str(path))
            written.append(path)

        async with app.run_test(size=(width, height)) as pilot:
            await settle(pilot, app)
            save("main")
            await pilot.press("j", "j")
            await settle(pilot, app)
            await pilot.press("r")
            await pilot.press(*"Hi! Yes, the sourdough is ready for pickup after 4pm today.")
            await pilot.pause(0.2)
            save("reply")
            await pilot.press("escape")
            await pilot.press("question_mark")
            await pilot.pause(0.2)
            save("help")
            await pilot.press("escape")
            await pilot.press("s")
            await pilot.pause(0.2)
            save("snooze")
            await pilot.press("escape")
            store.add_tag(app.current.customer_id, "regular")
            store.add_note(app.current.customer_id, ws.agent, "Picks up on Saturdays; allergic to nuts.")
            await pilot.press("i")
            await settle(pilot, app)
            await pilot.pause(0.3)
            save("card")
            await pilot.press("i")
            await pilot.press("slash", *"sourdough")
            await pilot.pause(0.6)
            save("search")
            await pilot.press("escape")
            await pilot.press("W")
            await settle(pilot, app)
            save("waiting")
            await pilot.press("ctrl+p")
            await pilot.pause(0.3)
            await pilot.press(*"done")
            await pilot.pause(0.3)
            save("palette")
            await pilot.press("escape")
            await pilot.press("O")
            await settle(pilot, app)
            await pilot.press("ctrl+r")
            for _ in range(100):
                await pilot.pause(0.05)
                if getattr(app.screen, "report", None) is not None:
                    break
            await pilot.pause(0.3)
            save("reports")
            await pilot.press(*"jjjjjjjjjjjjjjj")
            await pilot.pause(0.3)
            save("reports-plots")
            await pilot.press("escape", "H")
            await pilot.pause(0.6)
            save("status")
            await outreach(pilot, app, save)
        store.close()
        return written


async def outreach(pilot, app, save) -> None:
    """The Campaigns screen, the draft's dry run, the finished campaign's report."""
    from console.ui.outreach.campaigns import CampaignsScreen
    from console.ui.outreach.preview import PreviewScreen
    from console.ui.outreach.report import ReportScreen

    async def until(condition) -> None:
        for _ in range(200):
            await pilot.pause(0.05)
            if condition():
                break
        await pilot.pause(0.3)

    await pilot.press("escape", "C")
    await until(lambda: isinstance(app.screen, CampaignsScreen) and app.screen.campaigns)
    save("campaigns")
    await pilot.press("p")
    await until(lambda: isinstance(app.screen, PreviewScreen) and app.screen.plan is not None)
    await pilot.press("j", "j")
    await pilot.pause(0.3)
    save("campaign-preview")
    await pilot.press("escape", "j", "R")
    await until(lambda: isinstance(app.screen, ReportScreen) and app.screen.rows.index is not None)
    save("campaign-report")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--size", default="100x30", help="terminal size, columns x rows")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(shoot(args.out, width, height)):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
