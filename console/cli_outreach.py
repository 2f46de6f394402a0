"""The outreach commands: `console consent ...`, `console segment ...` and `console campaign ...`.

They work on the store like the screens do (console/store/ consent, segments, campaigns and
measure) and print what a person or a script needs: the dry run with every exclusion and the
names behind it, a progress bar, the report as a table, JSON or CSV, the consent history as
JSON lines. Errors are one sentence on stderr and a non-zero status (console/cli.py `fail`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    consent = sub.add_parser("consent", parents=[common], help="consent records: export, import from CSV, unsubscribe")
    what = consent.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = what.add_parser("export", parents=[common], help="every consent change as JSON lines (or --csv)")
    export.add_argument("--customer", metavar="TEXT", help="only the customer whose name, email or phone matches")
    export.add_argument("--csv", action="store_true", help="CSV instead of JSON lines")
    imp = what.add_parser("import", parents=[common], help="customers with consent from a CSV file")
    imp.add_argument("file", type=Path, help="the CSV file (name, email, phone, consent_<channel>, ...)")
    imp.add_argument("--dry-run", action="store_true", help="check every row and report, write nothing")
    unsub = what.add_parser("unsubscribe", parents=[common],
                            help="honour an unsubscribe token (what an HTTPS One-Click endpoint passes on)")
    unsub.add_argument("token")

    segment = sub.add_parser("segment", parents=[common], help="saved segments: list, count")
    what = segment.add_subparsers(dest="action", metavar="ACTION", required=True)
    what.add_parser("list", parents=[common], help="the saved segments and how many each holds now")
    count = what.add_parser("count", parents=[common], help="how many customers a query (or a saved segment) holds")
    count.add_argument("query", help='a segment query, e.g. "tag:regular last_inbound<30d", or a segment name')

    campaign = sub.add_parser("campaign", parents=[common],
                              help="campaigns: list, preview, launch, pause, resume, cancel, progress, report, test")
    what = campaign.add_subparsers(dest="action", metavar="ACTION", required=True)
    what.add_parser("list", parents=[common], help="every campaign with its state and progress")
    preview = what.add_parser("preview", parents=[common], help="the dry run: who gets what, when, and who not and why")
    preview.add_argument("name")
    preview.add_argument("--step", type=int, default=1, help="the step to preview (default 1)")
    preview.add_argument("--json", action="store_true", help="every recipient with the exact text, as JSON")
    launch = what.add_parser("launch", parents=[common], help="launch a draft campaign (after its dry run)")
    launch.add_argument("name")
    launch.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for action in ("pause", "resume", "cancel"):
        control = what.add_parser(action, parents=[common], help=f"{action} a campaign")
        control.add_argument("name")
    progress = what.add_parser("progress", parents=[common], help="a progress bar of the campaign's sends")
    progress.add_argument("name")
    progress.add_argument("--watch", action="store_true", help="keep the bar up to date until nothing is left to send")
    report = what.add_parser("report", parents=[common], help="the funnel per step and channel")
    report.add_argument("name")
    form = report.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true")
    form.add_argument("--csv", action="store_true")
    test = what.add_parser("test", parents=[common], help="send a step to [outreach] test_addresses only")
    test.add_argument("name")
    test.add_argument("--step", type=int, default=1)
    test.add_argument("--as", dest="as_customer", metavar="TEXT", help="fill the text as for this customer")


def _fail(message: str, status: int = 2) -> int:
    from console.cli import fail

    return fail(message, status)


def _customer(store, text: str) -> int | None:
    found = store.find_customers(text, limit=2)
    return found[0][0] if found else None


# ---- consent --------------------------------------------------------------------------------------
def cmd_consent(ws, args) -> int:
    from console.cli import open_store

    store = open_store(ws)
    try:
        if args.action == "export":
            return _consent_export(store, args)
        if args.action == "import":
            return _consent_import(store, ws, args)
        address = store.unsubscribe(args.token)
        if address is None:
            return _fail("that is not an unsubscribe token of this workspace; nothing changed")
        print(f"{address} will get no more marketing email")
        return 0
    finally:
        store.close()


def _consent_export(store, args) -> int:
    customer = None
    if args.customer:
        customer = _customer(store, args.customer)
        if customer is None:
            return _fail(f"no customer matches {args.customer!r}")
    rows = store.consent_history(customer)
    fields = ["customer", "kind", "address", "channel", "purpose", "state", "source", "agreed_text", "reason",
              "agent", "at", "recorded_at", "message_body"]
    try:
        if args.csv:
            import csv

            writer = csv.writer(sys.stdout)
            writer.writerow(fields)
            for row in rows:
                writer.writerow([_iso(row[f]) if f in ("at", "recorded_at") else row[f] for f in fields])
        else:
            for row in rows:
                out = {f: (_iso(row[f]) if f in ("at", "recorded_at") else row[f]) for f in fields}
                print(json.dumps(out, ensure_ascii=False))
        sys.stdout.flush()
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _iso(at) -> str:
    import datetime as dt

    return "" if at is None else dt.datetime.fromtimestamp(at, dt.timezone.utc).isoformat(timespec="seconds")


def _consent_import(store, ws, args) -> int:
    from console.outreach import csvimport

    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror}")
    except UnicodeDecodeError:
        return _fail(f"{args.file} is not UTF-8 text; save it as CSV UTF-8")
    rows, refused = csvimport.parse(text, args.file.name, ws.default_region, time.time())
    report = store.import_contacts(rows, refused, dry_run=args.dry_run, agent=ws.agent)
    for line in report.lines():
        print(line)
    return 1 if report.refused and not rows else 0


# ---- segments -------------------------------------------------------------------------------------
def cmd_segment(ws, args) -> int:
    from console.cli import open_store
    from console.outreach.segments import SegmentSyntaxError

    store = open_store(ws)
    try:
        if args.action == "list":
            for segment in store.segments():
                count = store.count_segment(segment.query, segment.exclude)
                print(f"{segment.name}: {count} customer(s)  [{segment.query}]"
                      + (f", {len(segment.exclude)} excluded by hand" if segment.exclude else ""))
            return 0
        saved = store.segment(args.query)
        query, exclude = (saved.query, saved.exclude) if saved else (args.query, [])
        try:
            print(store.count_segment(query, exclude))
        except SegmentSyntaxError as exc:
            return _fail(str(exc))
        return 0
    finally:
        store.close()


# ---- campaigns ------------------------------------------------------------------------------------
def cmd_campaign(ws, args) -> int:
    from console.cli import open_store
    from console.outreach import planner
    from console.outreach import report as layout
    from console.outreach.settings import senders_for
    from console.store import CampaignError

    store = open_store(ws)
    senders = senders_for(ws)
    try:
        if args.action == "list":
            for campaign in store.campaigns():
                progress = store.campaign_progress(campaign.id)
                print(f"{campaign.name}: {campaign.state}, {len(campaign.steps)} step(s), segment "
                      f"{campaign.segment_name or '-'}" + (f", {layout.progress_bar(progress, 20)}"
                                                          if campaign.state != "draft" else ""))
            return 0
        if args.action == "preview":
            plan = planner.preview(store, args.name, senders, ws.agent, position=args.step)
            print(layout.plan_json(plan) if args.json else "\n".join(layout.plan_lines(plan, ws.outreach)))
            return 0
        if args.action == "launch":
            return _launch(store, ws, senders, args, layout)
        if args.action in ("pause", "resume", "cancel"):
            state = store.set_campaign_state(args.name, args.action)
            print(f"{args.name}: {state}")
            return 0
        if args.action == "progress":
            return _progress(store, args, layout)
        if args.action == "report":
            report = store.campaign_report(args.name)
            if args.json:
                print(layout.report_json(report))
            elif args.csv:
                sys.stdout.write(layout.report_csv(report))
            else:
                print("\n".join(layout.report_lines(report, ws.outreach.timezone)))
            return 0
        customer = _customer(store, args.as_customer) if args.as_customer else None
        if customer is None:
            plan = planner.preview(store, args.name, senders, ws.agent, position=args.step)
            customer = next((p.customer_id for p in plan.rows if p.rendered is not None), None)
            if customer is None:
                return _fail("nobody in the segment could get this step; name a customer with --as")
        for line in planner.test_send(store, args.name, args.step, customer, senders, ws.agent):
            print(f"test queued: {line}")
        return 0
    except CampaignError as exc:
        return _fail(str(exc))
    except ValueError as exc:  # a segment that cannot be read (SegmentSyntaxError)
        return _fail(str(exc))
    finally:
        store.close()


def _launch(store, ws, senders, args, layout) -> int:
    from console.outreach import planner

    plan = planner.preview(store, args.name, senders, ws.agent)
    print("\n".join(layout.plan_lines(plan, ws.outreach, limit=10)))
    if not args.yes:
        if not sys.stdin.isatty():
            return _fail("launching needs a yes: run it in a terminal, or add --yes")
        answer = input(f"Launch {plan.campaign.name!r} to {len(plan.now) + len(plan.held)} customer(s)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not launched")
            return 1
    plan = planner.launch(store, args.name, senders, ws.agent)
    print(f"launched: {len(plan.now)} queued now, {len(plan.held)} held; the sync engine sends them "
          "(console sync, or the app's own engine)")
    return 0


def _progress(store, args, layout) -> int:
    while True:
        campaign = store.campaign(args.name)
        if campaign is None:
            return _fail(f"no campaign named {args.name!r}")
        progress = store.campaign_progress(campaign.id)
        line = f"{campaign.name} ({campaign.state}) {layout.progress_bar(progress)}"
        busy = progress.waiting + progress.sending + progress.held
        if not args.watch:
            print(line)
            return 0
        end = "\n" if not busy or campaign.state in ("cancelled", "finished") else ""
        print("\r" + line, end=end, flush=True)
        if end:
            return 0
        time.sleep(1)


COMMANDS = {"consent": cmd_consent, "segment": cmd_segment, "campaign": cmd_campaign}
