"""The `console` command: the TUI by default, plus `sync`, `check`, `export`, `import`, `migrate`...

Every failure a user can cause (bad config, unreadable workspace, bad date) ends in one sentence
on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import signal
import sys
from pathlib import Path

from console import __version__
from console.config import ConfigError, WorkspaceConfig, default_config_path, demo_config, load
from console.sanitize import one_line

HOW_TO_START = """\
console has no configuration yet (looked for {path}).
To look around first, run `console --demo`: it opens a demo bakery's inbox with made-up customers,
kept apart from any real workspace. To work your own inbox, copy config.example.toml to {path},
fill in your accounts (passwords come from a command or an environment variable, never the file),
run `console check` to test them, then `console`. `console --help` lists every command."""


def _common(defaults: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after the command name.

    Sub-commands get them with SUPPRESS defaults, so `console --config X check` keeps X (argparse
    would otherwise let the sub-command's default overwrite it)."""
    common = argparse.ArgumentParser(add_help=False)
    default = {} if defaults else {"default": argparse.SUPPRESS}
    common.add_argument("--config", metavar="PATH", type=Path,
                        help="configuration file (default: $CONSOLE_CONFIG or the user config dir)", **default)
    common.add_argument("--demo", action="store_true", help="use the demo workspace (no accounts, no network)",
                        **default)
    common.add_argument("--data-dir", metavar="DIR", type=Path, help=argparse.SUPPRESS, **default)
    return common


def _where() -> str:
    """Where console reads its configuration and keeps its data and logs, for --help."""
    from console.config import default_data_dir

    return (f"configuration: {default_config_path()} (or $CONSOLE_CONFIG, or --config PATH)\n"
            f"data and logs: {default_data_dir('<workspace>')}/ ([workspace] data_dir changes it): the store,\n"
            "  ui.log and sync.log, and errors.log, where every error is written with its traceback")


def build_parser() -> argparse.ArgumentParser:
    top, common = _common(True), _common(False)
    parser = argparse.ArgumentParser(
        prog="console", parents=[top],
        description="Answer every customer conversation - email, SMS, chat - from one terminal.",
        epilog=_where(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"console {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sync = sub.add_parser("sync", parents=[common], help="run the sync engine without the UI")
    sync.add_argument("--once", action="store_true",
                      help="pull every account once, deliver the outbox, then exit (non-zero if an account failed)")
    sync.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    sub.add_parser("check", parents=[common], help="validate the config and test each account's connection")
    export = sub.add_parser("export", parents=[common], help="write the workspace as JSON lines to stdout")
    export.add_argument("--since", metavar="DATE", help="only conversations active since DATE (YYYY-MM-DD)")
    imp = sub.add_parser("import", parents=[common], help="read an export (JSON lines) back into the workspace")
    imp.add_argument("file", type=Path, help="the export file, or - for standard input")
    migrate = sub.add_parser("migrate", parents=[common],
                             help="move this SQLite workspace into a PostgreSQL database (resumable)")
    migrate.add_argument("--to", metavar="URL", required=True,
                         help="the database, as the owner's role: postgresql://shop_owner@db.example/shop")
    secret = migrate.add_mutually_exclusive_group()
    secret.add_argument("--password-env", metavar="NAME", help="the role's password is in this environment variable")
    secret.add_argument("--password-cmd", metavar="CMD", help="the role's password is what this command prints")
    migrate.add_argument("--batch-size", type=int, default=1000, help=argparse.SUPPRESS)
    report = sub.add_parser("report", parents=[common], help="the reports' figures for a period (text, JSON or CSV)")
    report.add_argument("--since", metavar="DATE", default="7d",
                        help="first day, YYYY-MM-DD or a number of days back such as 30d (default 7d: the last 7 days)")
    report.add_argument("--until", metavar="DATE", help="last day, YYYY-MM-DD (default: today)")
    form = report.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print JSON")
    form.add_argument("--csv", action="store_true", help="print CSV")
    rules = sub.add_parser("rules", parents=[common], help="the automation rules: list them, or test one on the history")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION")
    rules_sub.add_parser("list", parents=[common], help="every rule, what it does and when it last fired")
    test = rules_sub.add_parser("test", parents=[common],
                                help="what a rule would have done since a date, without doing it")
    test.add_argument("name", help="the rule's name in [[rules]]")
    test.add_argument("--since", metavar="DATE", default="7d", help="YYYY-MM-DD or a number of days back (default 7d)")
    from console.cli_outreach import add_parsers

    add_parsers(sub, common)  # consent, segment, campaign
    return parser


def fail(message: str, status: int = 2) -> int:
    print(f"console: {message}", file=sys.stderr)
    return status


def workspace_for(args: argparse.Namespace) -> WorkspaceConfig | None:
    """The workspace the command works on; None when there is no config (and no --demo)."""
    if args.demo:
        return demo_config(args.data_dir)
    path = args.config or default_config_path()
    if not path.exists() and args.config is None:
        return None
    ws = load(path)
    if args.data_dir:
        ws.data_dir = args.data_dir
    return ws


def _setup_logging(ws: WorkspaceConfig, name: str) -> None:
    """`<data_dir>/<name>.log` gets everything from INFO; `<data_dir>/errors.log` gets the errors,
    with their tracebacks, of every process of the workspace (the app's and the engine's): an
    empty errors.log is a workspace where nothing went wrong."""
    ws.data_dir.mkdir(parents=True, exist_ok=True)
    form = logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    handler = logging.FileHandler(ws.data_dir / f"{name}.log", encoding="utf-8")
    handler.setFormatter(form)
    errors = logging.FileHandler(ws.data_dir / "errors.log", encoding="utf-8", delay=True)
    errors.setLevel(logging.ERROR)
    errors.setFormatter(form)
    root = logging.getLogger()
    root.handlers[:] = [handler, errors]
    root.setLevel(logging.INFO)


def open_store(ws: WorkspaceConfig):
    """The workspace's store: its `[store]` database or its SQLite file. On PostgreSQL the agent
    is the database role the console connects as (unless the config names the same one)."""
    from console.store import Store, StoreError

    store = Store(ws.store_location, ws.default_region, ws.outreach)  # restraint with the workspace's [outreach]
    role = getattr(store.db, "user", None)
    if role is not None and role != ws.agent and not store.db.is_admin:
        if ws.agent_set:
            store.close()
            raise StoreError(f"{ws.path}: [workspace] agent is {ws.agent!r} but [store] url connects as the "
                             f"database role {role!r}; each agent connects as themself (README: Running a team)")
        ws.agent = role
    return store


def main(argv: list[str] | None = None) -> int:
    from console.startup_trace import mark

    mark("console.cli imported")
    args = build_parser().parse_args(argv)
    from console.store import StoreError

    try:
        ws = workspace_for(args)
        if ws is None:
            print(HOW_TO_START.format(path=default_config_path()))
            return 1
        for warning in ws.warnings:
            print(f"console: warning: {warning}", file=sys.stderr)
        command = args.command or "tui"
        return COMMANDS[command](ws, args)
    except ConfigError as exc:
        return fail(str(exc))
    except StoreError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130


# ---- commands --------------------------------------------------------------------------------
def cmd_tui(ws: WorkspaceConfig, args: argparse.Namespace) -> int:
    store = open_store(ws)
    if not ws.accounts and not ws.demo and store.count_messages() == 0:
        store.close()
        return fail(f"{ws.path}: no [[accounts]] configured; add one (see config.example.toml) or run `console --demo`")
    if ws.demo and store.count_messages() == 0:
        print("Preparing the demo workspace...", file=sys.stderr)
        _setup_logging(ws, "sync")
        from console.sync import Engine

        asyncio.run(Engine(ws, store).run(once=True))
        from console.demo_workspace import furnish

        furnish(store, ws.agent)
    _setup_logging(ws, "ui")
    from console.ui import first_screen

    first = first_screen.start(store, ws.agent)  # while Textual and the app are imported
    from console.startup_trace import mark

    mark("store open, first screen being read")
    from console.ui.keys import check_keymap

    keymap_errors, _ = check_keymap(ws) if ws.keymap else ([], [])
    if keymap_errors:
        store.close()
        for error in keymap_errors[1:]:
            print(f"console: {error}", file=sys.stderr)
        raise keymap_errors[0]
    from console.ui.app import ConsoleApp

    mark("the app imported")

    ConsoleApp(ws, store, engine_args=_engine_args(args), first=first).run()
    store.close()
    return 0


def _engine_args(args: argparse.Namespace) -> list[str]:
    """How the TUI starts `console sync` for this same workspace in a separate process."""
    out = ["--demo"] if args.demo else []
    if args.config:
        out += ["--config", str(args.config)]
    if args.data_dir:
        out += ["--data-dir", str(args.data_dir)]
    return out


def cmd_sync(ws: WorkspaceConfig, args: argparse.Namespace) -> int:
    from console.sync import Engine
    from console.synclock import SyncLock

    if not ws.accounts:
        return fail(f"{ws.path}: no [[accounts]] configured; nothing to sync")
    # A stop asked for before the engine's loop listens (opening the store takes a moment) is
    # kept and honoured as soon as it runs: SIGTERM is a clean stop from the first instant.
    early: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, frame: early.append(number))
    lock = SyncLock(ws.data_dir)
    if not lock.acquire():
        holder = lock.holder()
        return fail(f"another process{f' (pid {holder})' if holder else ''} is already syncing {ws.data_dir}", 3)
    _setup_logging(ws, "sync")
    store = open_store(ws)
    engine = Engine(ws, store)

    async def run() -> dict[str, str]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, engine.stop)
        if early:
            engine.stop()
        if args.parent_pid:
            loop.create_task(_stop_with_parent(engine, args.parent_pid))
        return await engine.run(once=args.once)

    try:
        failed = asyncio.run(run())
    finally:
        store.close()
        lock.release()
    if args.once:
        for line in engine.summary():
            print(line)
    if args.once and failed:
        for name, reason in failed.items():
            print(f"console: account '{name}' failed: {one_line(reason, 300)}", file=sys.stderr)
        return 1
    return 0


async def _stop_with_parent(engine, parent_pid: int) -> None:
    """The app started this engine: when it goes (quit, crash, a dropped SSH session), deliver
    what is due in the outbox, then stop, so no orphan keeps the lock."""
    from console.synclock import FINISH_OUTBOX_WITHIN

    while True:
        await asyncio.sleep(0.5)
        if os.getppid() != parent_pid:
            engine.drain(FINISH_OUTBOX_WITHIN)
            return


def cmd_check(ws: WorkspaceConfig, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from console.channels import open_channel
    from console.model import ChannelError

    table = Table("account", "kind", "result", title=f"{ws.name}: {len(ws.accounts)} enabled account(s)")
    failures = 0

    async def probe(account) -> tuple[bool, str]:
        try:
            channel = open_channel(account, ws)
        except ConfigError as exc:
            return False, str(exc)
        try:
            return True, await asyncio.wait_for(channel.check(), timeout=60)
        except (ChannelError, ConfigError) as exc:
            return False, str(exc)
        except asyncio.TimeoutError:
            return False, "no answer within 60 seconds"
        finally:
            await channel.close()

    problems = []
    for account in ws.accounts:
        ok, detail = asyncio.run(probe(account))
        failures += not ok
        table.add_row(Text(account.name), Text(account.kind),
                      Text(("ok: " if ok else "FAILED: ") + one_line(detail, 300), style="green" if ok else "red"))
        if not ok:
            problems.append(f"console: account '{account.name}': {one_line(detail, 500)}")
    for account in ws.disabled_accounts:  # their settings are still validated
        try:
            open_channel(account, ws)
            detail, style = "disabled (enabled = false); settings valid", "dim"
        except ConfigError as exc:
            detail, style = f"disabled (enabled = false); {one_line(str(exc), 300)}", "yellow"
        table.add_row(Text(account.name), Text(account.kind), Text(detail, style=style))
    if not ws.accounts and not ws.disabled_accounts:
        table.add_row(Text("-"), Text("-"), Text("no [[accounts]] configured"))
    if ws.store is not None:  # the team's database: reachable, the login accepted, the schema current
        from console.store import StoreError

        try:
            store = open_store(ws)
        except StoreError as exc:
            failures += 1
            table.add_row(Text("[store]"), Text("postgresql"), Text(f"FAILED: {one_line(str(exc), 300)}", style="red"))
            problems.append(f"console: [store]: {one_line(str(exc), 500)}")
        else:
            who = "the owner" if store.db.is_admin else "an agent"
            table.add_row(Text("[store]"), Text("postgresql"), Text(
                f"ok: {store.db.where}, schema {store.db.schema_version()}, connected as {store.db.user} ({who})",
                style="green"))
            store.close()
    from console.ui.keys import check_keymap

    keymap_errors, keymap_warnings = check_keymap(ws)
    if ws.keymap:
        table.add_row(Text("[keymap]"), Text("keys"),
                      Text(f"FAILED: {len(keymap_errors)} problem(s)" if keymap_errors
                           else f"ok: {len(ws.keymap)} binding(s) remapped", style="red" if keymap_errors else "green"))
    Console().print(table)
    for line in problems:  # unwrapped, one line each, for people who copy them and for scripts
        print(line, file=sys.stderr)
    for error in keymap_errors:
        print(f"console: {error}", file=sys.stderr)
    for warning in keymap_warnings:
        print(f"console: warning: {warning}", file=sys.stderr)
    return 1 if failures or keymap_errors else 0


def cmd_export(ws: WorkspaceConfig, args: argparse.Namespace) -> int:
    since = None
    if args.since:
        try:
            since = dt.datetime.fromisoformat(args.since).replace(tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            return fail(f"--since: expected a date like 2026-11-01, got {args.since!r}")
    store = open_store(ws)
    out = sys.stdout
    try:
        for line in store.export_lines(since):
            out.write(line + "\n")
        out.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): nothing is wrong with the export; say nothing, and keep
        # Python from complaining about the closed pipe when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        store.close()
    return 0


def cmd_import(ws: WorkspaceConfig, args: argparse.Namespace) -> int:
    from console.store.backup import BackupError

    store = open_store(ws)
    try:
        if str(args.file) == "-":
            added = store.import_lines(_text_lines(sys.stdin.buffer))
        else:
            with open(args.file, "rb") as stream:
                added = store.import_lines(_text_lines(stream))
    except OSError as exc:
        return fail(f"cannot read {args.file}: {exc.strerror}")
    except BackupError as exc:
        return fail(f"{args.file}: {exc}; nothing was imported")
    finally:
        store.close()
    print(", ".join(f"{count} {table}" for table, count in added.items()) + " added")
    return 0


_MIGRATE_OPTIONS = {"store.url": "--to", "store.password_env": "--password-env", "store.password_cmd": "--password-cmd"}


def cmd_migrate(ws: WorkspaceConfig, args: argparse.Namespace) -> int:
    """Copy the SQLite workspace into the database of --to (console/store/migrate.py), check the
    counts, and say what to put in the config. Safe to run again: it resumes, or changes nothing."""
    from console.config import store_settings
    from console.store import Store
    from console.store.migrate import Migration

    if ws.store is not None:
        return fail(f"{ws.path}: this workspace is on PostgreSQL already ([store] url = {ws.store.url}); "
                    "migrate moves a SQLite workspace")
    try:
        settings = store_settings(args.to, args.password_env, args.password_cmd)
        target = Store(settings, ws.default_region, ws.outreach)
    except ConfigError as exc:
        return fail(f"{_MIGRATE_OPTIONS.get(exc.key, exc.key)}: {exc.detail}")
    try:
        migration = Migration(ws.store_path, target, args.batch_size, report=lambda line: print(f"copied {line}"))
        try:
            return _migrated(ws, settings, target, migration)
        finally:
            migration.close()
    finally:
        target.close()


def _migrated(ws: WorkspaceConfig, settings, target, migration) -> int:
    """Run the migration and print its counts; non-zero when a table's counts differ."""
    where = target.db.where
    was_done = migration.already_done()
    counts = migration.run()
    wrong = [c for c in counts if not c.matches]
    for count in counts:
        print(f"{count.table:<20} {count.source:>9} in SQLite {count.target:>9} in PostgreSQL"
              + ("" if count.matches else "  DIFFERENT"))
    if wrong:
        return fail(f"the counts differ in {', '.join(c.table for c in wrong)}: the SQLite workspace changed during "
                    "the copy (a console or `console sync` running?); stop them, then migrate into a new, empty "
                    "database", 1)
    if was_done:
        print(f"{ws.store_path} was already migrated to {where}; the counts match and nothing was changed.")
    elif not target.index.settle(30):
        print("The search index is still being filled; the first console to open finishes it.")
    secret = settings.secret
    print(f"Done. To switch over, put this in {ws.path or 'the config'} (the SQLite file is left as it was):")
    print(f'[store]\nurl = "{where}"')
    if secret is not None:
        print(f'password_{secret.source} = "{secret.spec}"')
    return 0


def _text_lines(stream):
    """Lines of an export, each decoded on its own, so that bytes that are not UTF-8 text are
    reported with their line number instead of ending the import with a traceback."""
    from console.store.backup import BackupError

    for number, line in enumerate(stream, 1):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            raise BackupError(f"line {number}: not UTF-8 text, so not an export of console") from None


def _day(text: str, today: dt.date, flag: str) -> dt.date:
    """'2026-11-01' or '30d' (that many days back, today being the last) as a date."""
    text = text.strip()
    if text.endswith("d") and text[:-1].isdigit() and int(text[:-1]) > 0:
        return today - dt.timedelta(days=int(text[:-1]) - 1)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{flag}: expected a date like 2026-11-01 or a number of days like 30d, got {text!r}") from None


def cmd_report(ws: WorkspaceConfig, args: argparse.Namespace) -> int:
    import time

    from console import reports

    hours = ws.business_hours
    now = time.time()
    today = hours.local_date(now)
    try:
        first = _day(args.since, today, "--since")
        last = _day(args.until, today, "--until") if args.until else today
    except ValueError as exc:
        return fail(str(exc))
    if last < first:
        return fail(f"--until {last} is before --since {first}")
    store = open_store(ws)
    try:
        start, end, _ = reports.period(hours, first, last)
        report = reports.build(store.report_data(start, end), hours, ws.policies, first, last, now)
    finally:
        store.close()
    if args.json:
        import json

        text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    elif args.csv:
        text = report.csv_text()
    else:
        text = report.text()
    return _print(text)


def _print(text: str) -> int:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def cmd_rules(ws: WorkspaceConfig, args: argparse.Namespace) -> int:
    import time

    from console.sanitize import one_line as line

    action = getattr(args, "rules_command", None) or "list"
    if not ws.rules:
        return fail(f"{ws.path or 'the config'} has no [[rules]]; config.example.toml shows how to write one", 1)
    now = time.time()
    store = open_store(ws)
    try:
        if action == "list":
            fired = store.rules_fired(now - 7 * 86400)
            out = []
            for rule in ws.rules:
                last, count = fired.get(rule.name, (None, 0))
                when = dt.datetime.fromtimestamp(last).strftime("%Y-%m-%d %H:%M") if last else "never"
                out.append(f"{rule.name}: {rule.describe()}\n    last fired: {when}; {count} time(s) in 7 days")
            return _print("\n".join(out) + "\n")
        rule = next((r for r in ws.rules if r.name == args.name), None)
        if rule is None:
            return fail(f"no rule named {args.name!r}; the rules are: {', '.join(r.name for r in ws.rules)}")
        try:
            first = _day(args.since, ws.business_hours.local_date(now), "--since")
        except ValueError as exc:
            return fail(str(exc))
        from console import reports
        from console.rules.simulate import simulate

        since = reports.period(ws.business_hours, first, first)[0]
        matches = simulate(rule, ws, store, since, now)
    finally:
        store.close()
    from console.channels import catalog

    lines = [f"rule '{rule.name}': {rule.describe()}",
             f"since {first}: it would have matched {len(matches)} conversation(s); nothing was done now."]
    for m in matches:
        when = dt.datetime.fromtimestamp(m.at, ws.business_hours.tz).strftime("%a %d %b %H:%M")
        lines.append(f"  {when}  {line(m.customer, 28):<28} {catalog.channel(m.channel).name:<10} "
                     f"{'; '.join(m.actions)}")
    return _print("\n".join(lines) + "\n")


COMMANDS = {"tui": cmd_tui, "sync": cmd_sync, "check": cmd_check, "export": cmd_export, "import": cmd_import,
            "migrate": cmd_migrate, "report": cmd_report, "rules": cmd_rules}


def _outreach(ws: WorkspaceConfig, args: argparse.Namespace) -> int:
    from console.cli_outreach import COMMANDS as OUTREACH

    try:
        status = OUTREACH[args.command](ws, args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


COMMANDS.update({name: _outreach for name in ("consent", "segment", "campaign")})
