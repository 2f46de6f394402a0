"""The sync engine: the only code that calls channel adapters.

For each account it runs a pull loop (cursor in, messages + cursor out, applied in one
transaction) and a delivery loop (outbox rows claimed, sent, recorded). Transient errors back off
exponentially with jitter; an auth error stops that account and says so in its status; a failing
account never stops the others.

Where the engine runs: on SQLite exactly one process per workspace runs it, holding
console/synclock.py's lock. On PostgreSQL any number run, one per machine (the same lock file
in each machine's data dir), and share the work (console/store/leases.py): every engine delivers
the outbox of every account it has (claims never overlap), and each account's pull loop runs
only in the engine holding that account's lease; the others wait, trying every LEAD_EVERY
seconds, and one of them takes over within seconds of the holder's end. Snoozes, closing and
the duties run in the one engine holding the duties' lease. An engine that cannot reach the
store waits and goes on where it was; a send whose outcome it knows is recorded once the store is
back, never sent again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from console.channels import open_channel
from console.channels.base import Channel
from console.config import ConfigError, WorkspaceConfig
from console.model import AuthError, ChannelError, InDoubtError, Outgoing, PermanentError, TransientError
from console.outreach import keywords
from console.outreach.pacing import Pacer
from console.sanitize import one_line
from console.store import Store, StoreUnavailable
from console.store.leases import DUTIES

log = logging.getLogger("console.sync")

MAX_SEND_ATTEMPTS = 8
SEND_TIMEOUT = 120.0
OUTBOX_POLL = 0.25
LEAD_EVERY = 1.0  # seconds between an engine's looks at its leases (takeover is this quick)
STORE_RETRY = 1.0  # seconds between tries while the store cannot be reached


def backoff(failures: int, retry_after: float | None = None, base: float = 2.0, cap: float = 300.0) -> float:
    """Seconds to wait after `failures` consecutive failures: exponential, capped, full jitter,
    never less than what the server asked for."""
    ceiling = min(cap, base * (2 ** max(0, failures - 1)))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


@dataclass
class AccountRun:
    channel: Channel
    failures: int = 0
    error: str = ""
    stopped: bool = False
    # A credential the service refused when sending (e.g. SMTP login while IMAP works): the
    # account shows it until a send succeeds, whatever the pulls say.
    send_problem: tuple[str, str] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    state_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pulled: int = 0  # new messages stored by this run
    sent: int = 0  # replies delivered by this run
    leading: bool = False  # this engine holds the account's lease: its pull loop runs here
    led_elsewhere: bool = False  # another engine held the lease the whole run
    pacer: Pacer | None = None  # campaign sends of this account (replies are never paced)


class Engine:
    """Runs every configured account against one store."""

    def __init__(self, workspace: WorkspaceConfig, store: Store, channels: dict[str, Channel] | None = None,
                 clock: Callable[[], float] = time.time):
        self.workspace = workspace
        self.store = store
        # What "now" is for the outbox's due times, quiet hours and the duties (tests use a fake).
        self.clock = clock
        self.runs: dict[str, AccountRun] = {}
        self.errors: dict[str, str] = {}  # account -> why it could not even start
        self._stop = asyncio.Event()
        self._drain_until: float | None = None  # draining: no more pulls, the outbox until then
        self._drainer: asyncio.Task | None = None
        self.leases = None  # console/store/leases.py, taken when the engine runs
        self.claimer: int | None = None  # this engine's mark on the outbox rows it claims
        self._duties_led = False
        if channels is not None:
            self.runs = {name: AccountRun(ch) for name, ch in channels.items()}
            self._pace()
            return
        for account in workspace.accounts:
            try:
                self.runs[account.name] = AccountRun(open_channel(account, workspace))
            except ConfigError as exc:
                self.errors[account.name] = str(exc)
                store.set_account_state(account.name, account.kind, "error", exc.detail)
            except Exception as exc:  # an adapter that cannot even start must not stop the others
                log.exception("%s: cannot start", account.name)
                self.errors[account.name] = f"cannot start: {type(exc).__name__}: {exc}"
                store.set_account_state(account.name, account.kind, "error", self.errors[account.name])
        self._pace()

    def _pace(self) -> None:
        for name, run in self.runs.items():
            run.pacer = Pacer(self.store.outreach.pace(name, run.channel.kind))

    def stop(self) -> None:
        self._stop.set()
        for run in self.runs.values():
            run.wake.set()
            interrupt = getattr(run.channel, "interrupt", None)
            if interrupt is not None:
                interrupt()  # end a long poll (IMAP IDLE) now rather than at its timeout

    def summary(self) -> list[str]:
        """One line per account: what this run did, or why the account failed."""
        lines = []
        for name, reason in self.errors.items():
            lines.append(f"{name}: failed: {one_line(reason, 200)}")
        for name, run in self.runs.items():
            if run.error:
                lines.append(f"{name}: failed: {one_line(run.error, 200)}")
                continue
            new = f"{run.pulled:,} new message{'s' if run.pulled != 1 else ''}"
            sent = f", {run.sent} sent" if run.sent else ""
            if run.led_elsewhere:
                new = "pulled by another engine"
            lines.append(f"{name}: ok, {new}{sent}")
        return lines

    def drain(self, within: float) -> None:
        """Stop pulling; deliver what the outbox holds due within `within` seconds; then stop."""
        if self._drain_until is not None:
            return
        self._drain_until = time.time() + within
        for run in self.runs.values():
            run.wake.set()
            interrupt = getattr(run.channel, "interrupt", None)
            if interrupt is not None:
                interrupt()
        self._drainer = asyncio.get_running_loop().create_task(self._drain_watch(), name="drain")

    async def _drain_watch(self) -> None:
        names = set(self.runs)
        while not self._stop.is_set():
            waiting = await asyncio.to_thread(self.store.outbox_waiting)
            if not [w for w in waiting if w["account"] in names and w["next_try_at"] <= self._drain_until]:
                log.info("the app is gone and the outbox is delivered: stopping")
                self.stop()
                return
            await asyncio.sleep(0.5)

    async def _state(self, name: str, state: str, detail: str = "", progress: tuple[int, int] | None = None) -> None:
        # One write at a time per account, deciding under the lock: the pull loop and the delivery
        # loop both report, and a state decided before the other loop's news must not land after it.
        run = self.runs[name]
        async with run.state_lock:
            problem = run.send_problem
            if problem is not None and state in ("ok", "syncing"):
                state, detail = problem
            await asyncio.to_thread(self.store.set_account_state, name, run.channel.kind, state,
                                    one_line(detail, 300), progress)

    async def _sleep(self, run: AccountRun, seconds: float) -> None:
        try:
            await asyncio.wait_for(run.wake.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
        run.wake.clear()

    # ---- who leads what -------------------------------------------------------------------------
    async def take_leases(self) -> None:
        """This engine's token and the leases it can take, before any loop runs (so who pulls
        what is known from the start; a test that runs one loop alone calls this first)."""
        self.leases = await asyncio.to_thread(self.store.leases)
        self.claimer = self.leases.token
        await self.lead(once=True)

    async def lead(self, once: bool = False) -> None:
        """Keep this engine's leases: take the free ones it can use, notice the ones it lost (the
        store's server restarted) and stop those pull loops at once (an IMAP IDLE)."""
        while not self._stop.is_set():
            wanted = {name for name, run in self.runs.items() if not run.stopped and self._drain_until is None}
            wanted.add(DUTIES)
            try:
                held = await asyncio.to_thread(self.leases.refresh, wanted)
            except StoreUnavailable as exc:
                log.warning("leases: %s", exc)
                held = set()
            self._duties_led = DUTIES in held
            for name, run in self.runs.items():
                was, run.leading = run.leading, name in held
                if run.leading and not was:
                    log.info("%s: this engine pulls it now", name)
                    run.wake.set()
                elif was and not run.leading:
                    log.warning("%s: another engine pulls it now (this one lost its lease)", name)
                    interrupt = getattr(run.channel, "interrupt", None)
                    if interrupt is not None:
                        interrupt()
            if once:
                return
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=LEAD_EVERY)
            except asyncio.TimeoutError:
                pass

    async def _store_back(self) -> None:
        """Wait a moment: the store could not be reached (the next try may work)."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=STORE_RETRY)
        except asyncio.TimeoutError:
            pass

    # ---- pulling --------------------------------------------------------------------------------
    async def pull_loop(self, name: str, once: bool = False) -> None:
        run = self.runs[name]
        if once and not run.leading:
            run.led_elsewhere = True
            return
        announced = False
        while not self._stop.is_set() and not run.stopped and self._drain_until is None:
            if not run.leading:  # another engine pulls this account; take over when it goes
                announced = False
                await self._sleep(run, LEAD_EVERY)
                continue
            try:
                if not announced:
                    await self._state(name, "syncing")
                    announced = True
                cursor = await asyncio.to_thread(self.store.cursor, name)
                result = await run.channel.pull(cursor)
                # What customers wrote to stop or restart us, on every channel, applied with the pull.
                result.opt_outs.extend(keywords.read(result, run.channel.kind, self.store.outreach, self.clock()))
                run.pulled += await asyncio.to_thread(self.store.apply_pull, name, result)
                run.failures, run.error = 0, ""
                if result.more:
                    await self._state(name, "syncing", result.notice, result.progress)
                    continue
                await self._state(name, "ok", result.notice)
                if once:
                    return
                await self._sleep(run, run.channel.poll_interval)
            except AuthError as exc:
                run.error, run.stopped = str(exc), True
                log.warning("%s: %s", name, exc)
                await self._state(name, "auth", str(exc))
                return
            except ConfigError as exc:  # e.g. a password_cmd that fails: the user must fix it
                run.error, run.stopped = str(exc), True
                log.warning("%s: %s", name, exc)
                await self._state(name, "error", str(exc))
                return
            except StoreUnavailable as exc:  # what was pulled is pulled again: every step repeats safely
                log.warning("%s: %s", name, exc)
                if once:
                    run.error = str(exc)
                    return
                announced = False
                await self._store_back()
            except (TransientError, PermanentError, ChannelError) as exc:
                run.failures += 1
                run.error = str(exc)
                delay = backoff(run.failures, getattr(exc, "retry_after", None))
                log.warning("%s: %s (retry in %.0fs)", name, exc, delay)
                await self._state(name, "retrying", f"{exc} (retrying in {delay:.0f}s)")
                if once:
                    return
                await self._sleep(run, delay)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in an adapter must not take the engine down
                run.failures += 1
                run.error = f"internal error: {type(exc).__name__}: {exc}"
                log.exception("%s: pull failed", name)
                await self._state(name, "error", run.error)
                if once:
                    return
                await self._sleep(run, backoff(run.failures, cap=600))

    # ---- sending --------------------------------------------------------------------------------
    # A send's outcome is recorded whatever goes wrong: an adapter bug or a store error while
    # recording marks that one send for a person and the engine goes on with the next.
    async def reconcile_in_doubt(self, name: str) -> None:
        run = self.runs[name]
        for listed in await asyncio.to_thread(self.store.in_doubt, [name], self.claimer):
            # Read again: reconciling the ones before may have taken external ids this one must
            # skip; and take it over, so no other engine checks it at the same time.
            out = await asyncio.to_thread(self.store.still_in_doubt, listed.outbox_id, self.claimer)
            if out is None:
                continue
            try:
                await self._reconcile(name, run, out)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("%s: reconciling outbox %s failed", name, out.outbox_id)
                await self._leave_to_a_person(name, out, f"console could not check whether this was sent "
                                                         f"(internal error: {type(exc).__name__})")

    async def _reconcile(self, name: str, run: AccountRun, out: Outgoing) -> None:
        try:
            found = await run.channel.reconcile(out)
        except NotImplementedError:
            await asyncio.to_thread(
                self.store.record_failed, out,
                "console stopped while sending this; check whether it arrived before sending it again",
                False, "unknown")
            return
        except ChannelError as exc:
            log.warning("%s: cannot reconcile outbox %s yet: %s", name, out.outbox_id, exc)
            # Still in doubt: it stays 'sending' and is asked about again; 'pending' would make
            # the next claim send it a second time.
            await asyncio.to_thread(self.store.record_checking, out, f"checking: {exc}", time.time() + 30)
            return
        if found is not None:
            await self._record_sent(name, out, found)
        else:
            await asyncio.to_thread(self.store.record_retry, out, "interrupted before sending", time.time())

    async def _record_sent(self, name: str, out: Outgoing, result) -> bool:
        while True:  # the outcome is known: it is recorded once the store is back, never forgotten
            try:
                recorded = await asyncio.to_thread(self.store.record_sent, out, result)
                break
            except StoreUnavailable as exc:
                log.warning("%s: recording the send of outbox %s waits for the store: %s", name, out.outbox_id, exc)
                if self._stop.is_set():
                    raise
                await self._store_back()
        if recorded:
            self.runs[name].sent += 1
        if not recorded:
            log.warning("%s: outbox %s was answered with %s, another reply's message; left to a person",
                        name, out.outbox_id, result.external_id)
        return recorded

    async def _leave_to_a_person(self, name: str, out: Outgoing, why: str) -> None:
        """Mark one send 'unknown' with a sentence; never raises (the engine must go on)."""
        try:
            await asyncio.to_thread(self.store.record_failed, out,
                                    f"{why}; check whether it arrived before sending it again", False, "unknown")
            await self._state(name, "error", why)
        except asyncio.CancelledError:
            raise
        except Exception:  # the store itself is failing: the row stays 'sending' and is checked later
            log.exception("%s: could not record the outcome of outbox %s", name, out.outbox_id)

    async def deliver(self, name: str, out: Outgoing) -> None:
        try:
            await self._deliver(name, out)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store error while recording, or a bug here
            log.exception("%s: recording the send of outbox %s failed", name, out.outbox_id)
            await self._leave_to_a_person(name, out, f"console hit an internal error while recording this send "
                                                     f"({type(exc).__name__})")

    async def _deliver(self, name: str, out: Outgoing) -> None:
        run = self.runs[name]
        try:
            result = await asyncio.wait_for(run.channel.send(out), timeout=SEND_TIMEOUT)
        except InDoubtError as exc:
            await asyncio.to_thread(self.store.record_checking, out, str(exc), time.time() + 30)
        except PermanentError as exc:
            await asyncio.to_thread(self.store.record_failed, out, str(exc), exc.opted_out)
        except (AuthError, ConfigError) as exc:
            await asyncio.to_thread(self.store.record_retry, out, str(exc), time.time() + 300)
            run.send_problem = ("auth" if isinstance(exc, AuthError) else "error", f"sending: {exc}")
            await self._state(name, *run.send_problem)
        except TransientError as exc:
            if out.attempt >= MAX_SEND_ATTEMPTS:
                await asyncio.to_thread(self.store.record_failed, out, f"gave up after {out.attempt} tries: {exc}")
            else:
                delay = backoff(out.attempt, exc.retry_after)
                await asyncio.to_thread(self.store.record_retry, out, str(exc), time.time() + delay)
        except asyncio.TimeoutError:  # no answer in time: it may have left, so ask the service
            log.warning("%s: no answer to the send of outbox %s within %.0fs", name, out.outbox_id, SEND_TIMEOUT)
            await asyncio.to_thread(self.store.record_checking, out, "no answer in time", time.time())
            await self.reconcile_in_doubt(name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an adapter bug: it may have left before the bug, only a person can tell
            log.exception("%s: send of outbox %s failed", name, out.outbox_id)
            await self._leave_to_a_person(name, out, f"console hit an internal error while sending this "
                                                     f"({type(exc).__name__})")
        else:
            await self._record_sent(name, out, result)
            if run.send_problem is not None:
                run.send_problem = None
                await self._state(name, "ok")

    async def deliver_loop(self, name: str, once: bool = False) -> None:
        run = self.runs[name]
        waiting_for_gone: float | None = None  # once: until when to wait for a dead engine's sends
        while not self._stop.is_set():
            try:
                # Sends of one account are awaited one by one here, so every 'sending' row of this
                # engine whose next check is due really is in doubt (a cheap query when there is none).
                await self.reconcile_in_doubt(name)
                # Replies first, then campaign messages as fast as the account's pace allows.
                claimed = await asyncio.to_thread(self.store.claim_due, [name], 20, run.pacer.allowance(),
                                                  self.clock(), self.claimer)
                run.pacer.spend(sum(1 for out in claimed if out.purpose == "marketing"))
                for out in claimed:
                    await self.deliver(name, out)
                await self.fetch_downloads(name)
                if claimed:
                    continue
                due = await asyncio.to_thread(self.store.next_due_at, [name])
            except StoreUnavailable as exc:  # claimed sends stay 'sending': checked, never resent blindly
                log.warning("%s: outbox: %s", name, exc)
                if once:
                    return
                await self._store_back()
                continue
            if once and (due is None or due > self.clock()):
                # Sends a dead engine left mid-send become ours to check after a short grace
                # (PostgreSQL): a single run waits for them rather than leave them to the next one.
                if waiting_for_gone is None:
                    waiting_for_gone = time.monotonic() + self.store.db.claim_grace + 5
                if self.store.db.claim_grace and time.monotonic() < waiting_for_gone and await asyncio.to_thread(
                        self.store.left_by_a_gone_engine, [name], self.claimer):
                    await asyncio.sleep(0.5)
                    continue
                return  # nothing due now (held campaign messages wait for the next run)
            wait = OUTBOX_POLL if due is None or due > self.clock() else max(0.01, min(OUTBOX_POLL, run.pacer.wait()))
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    async def fetch_downloads(self, name: str) -> None:
        """Attachments the UI asked for: fetched from the service, saved under a safe name in the
        folder the request names (never a path the sender chose), recorded done or failed."""
        from console.attachments import save

        run = self.runs[name]
        fetch = getattr(run.channel, "fetch_attachment", None)
        for item in await asyncio.to_thread(self.store.pending_downloads, name):
            raw = await asyncio.to_thread(self.store.message_raw, item["message_id"])
            if raw is not None and not _takes_raw(fetch):
                fetch = _from_raw  # the attachment is in the kept message: no network
            if fetch is None or not item["ref"]:
                await asyncio.to_thread(self.store.record_download, item["id"], "",
                                        f"{run.channel.kind} attachments cannot be downloaded")
                continue
            try:
                if raw is not None:
                    data = await asyncio.wait_for(fetch(item["external_id"], item["ref"], raw=raw), timeout=SEND_TIMEOUT)
                else:
                    data = await asyncio.wait_for(fetch(item["external_id"], item["ref"]), timeout=SEND_TIMEOUT)
                path = await asyncio.to_thread(save, data, item["name"], Path(item["folder"]))
            except TransientError as exc:
                log.info("%s: attachment not fetched yet: %s", name, exc)
                return  # asked again on the next pass
            except (ChannelError, ConfigError, OSError, asyncio.TimeoutError) as exc:
                await asyncio.to_thread(self.store.record_download, item["id"], "",
                                        one_line(str(exc) or type(exc).__name__, 300))
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an adapter bug fails this download, not the engine
                log.exception("%s: fetching an attachment failed", name)
                await asyncio.to_thread(self.store.record_download, item["id"], "",
                                        f"console hit an internal error while fetching it ({type(exc).__name__})")
                continue
            await asyncio.to_thread(self.store.record_download, item["id"], str(path))

    async def tidy(self) -> None:
        """Snoozed conversations whose time came back to open; long-quiet waiting ones to done."""
        await asyncio.to_thread(self.store.wake_snoozed)
        days = self.workspace.close_waiting_after_days
        if days:
            await asyncio.to_thread(self.store.close_waiting, time.time() - days * 86400)

    async def housekeeping(self) -> None:
        while not self._stop.is_set():
            try:
                if self._duties_led:
                    await self.tidy()
            except StoreUnavailable as exc:
                log.warning("housekeeping: %s", exc)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=15)
            except asyncio.TimeoutError:
                pass

    async def run_duty(self, duty, once: bool = False) -> None:
        """One of the engine's duties (console/duties.py), every `duty.every` seconds; a failure is
        logged and the duty runs again next time, never taking the engine down."""
        while not self._stop.is_set():
            try:
                if self._duties_led:
                    await duty.run(self)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a duty's bug must not stop the sync
                log.exception("the duty %r failed; it runs again in %.0f s", duty.name, duty.every)
            if once:
                return
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=duty.every)
            except asyncio.TimeoutError:
                pass

    # ---- running --------------------------------------------------------------------------------
    async def run(self, once: bool = False) -> dict[str, str]:
        """Run until stopped (or, with `once`, one pull per account and an empty outbox).

        Returns {account: reason} for the accounts that failed."""
        tasks = []
        for account in self.runs.values():  # asyncio's primitives belong to one loop: this run's
            account.wake, account.state_lock = asyncio.Event(), asyncio.Lock()
        self.store.db.checkpoint_in_background()
        await self.take_leases()
        if not once:
            tasks.append(asyncio.create_task(self.lead(), name="leases"))
        for name in self.runs:
            tasks.append(asyncio.create_task(self.pull_loop(name, once), name=f"pull:{name}"))
            tasks.append(asyncio.create_task(self.deliver_loop(name, once), name=f"send:{name}"))
        if not once:
            tasks.append(asyncio.create_task(self.housekeeping(), name="housekeeping"))
        from console.duties import duties_for

        self.duties = duties_for(self.workspace, self.store)
        for duty in self.duties:
            tasks.append(asyncio.create_task(self.run_duty(duty, once), name=f"duty:{duty.name}"))
        try:
            await asyncio.gather(*tasks)
            if once and self._duties_led:
                await self.tidy()
        finally:
            if self._drainer is not None:
                tasks.append(self._drainer)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for run in self.runs.values():
                try:
                    await run.channel.close()
                except Exception:
                    log.exception("closing a channel failed")
            await asyncio.to_thread(self.store.db.stop_background_checkpoints)
            await asyncio.to_thread(self.leases.close)
        failed = dict(self.errors)
        failed.update({name: run.error for name, run in self.runs.items() if run.error})
        return failed


def _takes_raw(fetch) -> bool:
    """Whether an adapter's fetch_attachment reads a part out of the kept bytes itself (email)."""
    import inspect

    return fetch is not None and "raw" in inspect.signature(fetch).parameters


async def _from_raw(external_id: str, ref: str, raw: bytes) -> bytes:
    """An attachment out of a message's kept MIME bytes, for an adapter that cannot read them."""
    from console.channels.email.mailparse import part_bytes

    data = part_bytes(raw, ref)
    if data is None:
        raise PermanentError("the attachment is not in the kept message")
    return data
