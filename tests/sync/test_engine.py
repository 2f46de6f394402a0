"""The sync engine: cursors, backoff, typed errors, isolation between accounts, the outbox in doubt.

A scripted channel stands in for a service here: these tests are about the engine's rules, and
each real adapter has its own tests against a real server or a faithful fake.
"""

import asyncio
import sqlite3
import subprocess
import sys
import time

import pytest

from console.config import parse
from console.model import (Address, Attachment, AuthError, InboundMessage, PermanentError, PullResult, SendResult,
                           TransientError)
from console.sync import Engine, backoff
from console.synclock import SyncLock

PEER = Address("phone", "+15550100001", "Ann")


class Scripted:
    """A channel whose pulls and sends follow a script of results and exceptions."""

    kind = "demo"
    channels = ("sms",)
    poll_interval = 0.01

    def __init__(self, name, pulls=(), sends=(), reconcile=None):
        self.account = name
        self.pulls, self.sends = list(pulls), list(sends)
        self.cursors_seen, self.sent = [], []
        self._reconcile = reconcile

    async def pull(self, cursor):
        self.cursors_seen.append(cursor)
        step = self.pulls.pop(0) if self.pulls else PullResult()
        if isinstance(step, Exception):
            raise step
        return step

    async def send(self, out):
        step = self.sends.pop(0) if self.sends else SendResult(f"x-{out.idempotency_key}")
        if isinstance(step, Exception):
            raise step
        self.sent.append(out)
        return step

    async def reconcile(self, out):
        if self._reconcile is None:
            raise NotImplementedError
        return self._reconcile(out)

    async def check(self):
        return "scripted"

    async def close(self):
        pass


def run(engine, once=True):
    return asyncio.run(engine.run(once=once))


WS = parse("[workspace]\nname = 't'\n")


def inbound(ext, at=None):
    return InboundMessage(ext, "t", "sms", "in", PEER, at or time.time() - 60, f"body {ext}")


def test_cursor_is_passed_back_and_batches_drain(store):
    ch = Scripted("a", [PullResult([inbound("1")], cursor="c1", more=True, progress=(1, 2)),
                        PullResult([inbound("2")], cursor="c2")])
    assert run(Engine(WS, store, {"a": ch})) == {}
    assert ch.cursors_seen == [None, "c1"]
    assert store.count_messages() == 2 and store.cursor("a") == "c2"
    assert store.account_states()[0].state == "ok"


def test_a_failing_account_does_not_stop_the_others(store):
    bad = Scripted("bad", [AuthError("the password for 'bad' was refused; check password_cmd")])
    good = Scripted("good", [PullResult([inbound("1")])])
    failed = run(Engine(WS, store, {"bad": bad, "good": good}))
    assert list(failed) == ["bad"] and "refused" in failed["bad"]
    assert store.count_messages() == 1
    states = {s.name: s for s in store.account_states()}
    assert states["bad"].state == "auth" and "password" in states["bad"].detail
    assert states["good"].state == "ok"


def test_transient_errors_back_off_then_recover(store, monkeypatch):
    ch = Scripted("a", [TransientError("timed out", retry_after=0.01), PullResult([inbound("1")])])
    engine = Engine(WS, store, {"a": ch})
    engine_backoff_calls = []

    async def go():
        task = asyncio.create_task(engine.run())
        for _ in range(400):
            await asyncio.sleep(0.01)
            if store.count_messages():
                break
        engine.stop()
        await task

    monkeypatch.setattr("console.sync.backoff",
                        lambda failures, retry_after=None, **kw: engine_backoff_calls.append(failures) or 0.01)
    asyncio.run(go())
    assert engine_backoff_calls == [1]
    assert store.count_messages() == 1
@pytest.mark.one_backend
def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    for failures in range(1, 8):
        delay = backoff(failures)
        ceiling = min(300, 2 * 2 ** (failures - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert backoff(1, retry_after=42) == 42
    assert backoff(50) <= 300


def test_outbox_permanent_error_fails_once_and_is_never_retried(store):
    ch = Scripted("a", [PullResult([inbound("1")])],
                  sends=[PermanentError("The customer replied STOP.", "21610", opted_out=True)])
    run(Engine(WS, store, {"a": ch}))
    store.enqueue_reply(1, "a", "sms", "hello")
    run(Engine(WS, store, {"a": ch}))
    run(Engine(WS, store, {"a": ch}))
    entry = store.timeline(1)[-1]
    assert (entry.status, entry.status_detail) == ("failed", "The customer replied STOP.")
    assert ch.sent == [] and store.identities(1)[0].opted_out


def test_transient_send_error_is_retried_later_and_sent_once(store):
    ch = Scripted("a", [PullResult([inbound("1")])], sends=[TransientError("busy"), SendResult("SM1")])
    run(Engine(WS, store, {"a": ch}))
    store.enqueue_reply(1, "a", "sms", "hello")
    run(Engine(WS, store, {"a": ch}))
    assert store.timeline(1)[-1].status == "queued"
    with store.db.write() as conn:
        conn.execute("UPDATE outbox SET next_try_at = 0")
    run(Engine(WS, store, {"a": ch}))
    assert [o.body for o in ch.sent] == ["hello"]
    assert store.timeline(1)[-1].status == "sent"


def test_send_left_in_doubt_is_reconciled_not_resent(store):
    store.apply_pull("a", PullResult([inbound("1")]))
    store.enqueue_reply(1, "a", "sms", "hello")
    [out] = store.claim_due(["a"])  # the engine claimed it, then the process died
    ch = Scripted("a", reconcile=lambda o: SendResult("SM-found", "delivered"))
    run(Engine(WS, store, {"a": ch}))
    assert ch.sent == []
    assert store.timeline(1)[-1].status == "delivered"


def test_send_in_doubt_that_never_left_is_sent_again(store):
    store.apply_pull("a", PullResult([inbound("1")]))
    store.enqueue_reply(1, "a", "sms", "hello")
    store.claim_due(["a"])
    ch = Scripted("a", reconcile=lambda o: None)
    run(Engine(WS, store, {"a": ch}))
    assert [o.body for o in ch.sent] == ["hello"]


def test_send_in_doubt_on_a_channel_that_cannot_tell_is_never_resent(store):
    store.apply_pull("a", PullResult([inbound("1")]))
    store.enqueue_reply(1, "a", "sms", "hello")
    store.claim_due(["a"])
    ch = Scripted("a")
    run(Engine(WS, store, {"a": ch}))
    assert ch.sent == []
    entry = store.timeline(1)[-1]
    assert entry.status == "unknown" and "check whether it arrived" in entry.status_detail


def test_an_adapter_bug_is_reported_not_fatal(store):
    ch = Scripted("a", [ZeroDivisionError("oops")])
    failed = run(Engine(WS, store, {"a": ch}))
    assert "ZeroDivisionError" in failed["a"]
    assert store.account_states()[0].state == "error"


def test_a_send_that_hits_an_adapter_bug_is_marked_unknown_and_never_sent_again(store):
    store.apply_pull("a", PullResult([inbound("1")]))
    store.enqueue_reply(1, "a", "sms", "hello")
    ch = Scripted("a", sends=[ZeroDivisionError("oops")], reconcile=lambda o: None)
    run(Engine(WS, store, {"a": ch}))
    run(Engine(WS, store, {"a": ch}))
    assert ch.sent == []  # it may have left before the bug: only a person can tell
    entry = store.timeline(1)[-1]
    assert entry.status == "unknown"
    assert "internal error" in entry.status_detail and "check whether it arrived" in entry.status_detail


def test_a_reconcile_that_hits_an_adapter_bug_marks_that_send_and_the_other_accounts_go_on(store):
    store.apply_pull("a", PullResult([inbound("1")]))
    store.enqueue_reply(1, "a", "sms", "hello")
    store.claim_due(["a"])  # claimed, then the process died

    def broken(out):
        raise KeyError("SM-other")

    healthy = Scripted("b", [PullResult([InboundMessage("b1", "t", "sms", "in", PEER, time.time(), "still here")])])
    failed = run(Engine(WS, store, {"a": Scripted("a", reconcile=broken), "b": healthy}))
    assert "b" not in failed
    entry = next(e for e in store.timeline(1) if e.direction == "out")
    assert entry.status == "unknown" and "check whether it arrived" in entry.status_detail
    assert "still here" in [e.body for e in store.timeline(1)]


def test_a_store_error_while_recording_a_send_marks_it_and_the_engine_goes_on(store, monkeypatch):
    store.apply_pull("a", PullResult([inbound("1")]))
    store.enqueue_reply(1, "a", "sms", "hello")
    store.enqueue_reply(1, "a", "sms", "and another thing")
    calls = []
    real = store.record_sent

    def flaky(out, result):
        calls.append(out.body)
        if len(calls) == 1:
            raise sqlite3.IntegrityError("FOREIGN KEY constraint failed")
        return real(out, result)

    monkeypatch.setattr(store, "record_sent", flaky)
    ch = Scripted("a")
    run(Engine(WS, store, {"a": ch}))
    assert [o.body for o in ch.sent] == ["hello", "and another thing"]
    statuses = [(e.body, e.status) for e in store.timeline(1) if e.direction == "out"]
    assert statuses == [("hello", "unknown"), ("and another thing", "sent")]
@pytest.mark.sqlite_only
def test_only_one_process_holds_the_sync_lock(tmp_path):
    first = SyncLock(tmp_path)
    assert first.acquire()
    code = ("import sys; from pathlib import Path; from console.synclock import SyncLock;"
            f"l = SyncLock(Path({str(tmp_path)!r})); print(l.acquire(), l.holder())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False" and int(out[1]) == __import__("os").getpid()
    first.release()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "True"
@pytest.mark.sqlite_only
def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys,time; from pathlib import Path; from console.synclock import SyncLock;"
                               f"l=SyncLock(Path({str(tmp_path)!r})); assert l.acquire(); print('held', flush=True);"
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert not SyncLock(tmp_path).acquire()
    holder.kill()
    holder.wait()
    assert SyncLock(tmp_path).acquire()


def test_a_send_refused_for_credentials_stays_the_account_state_until_a_send_succeeds(store):
    store.apply_pull("a", PullResult([inbound("1")]))
    store.enqueue_reply(1, "a", "sms", "hello")
    # Pulls keep working (IMAP fine) while sends are refused (SMTP login wrong).
    ch = Scripted("a", [PullResult([inbound("2")]), PullResult([inbound("3")])], sends=[AuthError("SMTP login refused")])
    engine = Engine(WS, store, {"a": ch})
    run(engine)
    [state] = store.account_states()
    assert (state.state, state.detail) == ("auth", "sending: SMTP login refused")
    with store.db.write() as conn:
        conn.execute("UPDATE outbox SET next_try_at = 0")
    run(engine)  # the same engine, the next pass: the send goes through
    [state] = store.account_states()
    assert state.state == "ok" and [o.body for o in ch.sent] == ["hello"]


def test_a_send_in_doubt_that_cannot_be_checked_yet_is_never_sent_again(store):
    store.apply_pull("a", PullResult([inbound("1")]))
    store.enqueue_reply(1, "a", "sms", "hello")
    store.claim_due(["a"])  # claimed, then the process died

    def unreachable(out):
        raise TransientError("service down")

    ch = Scripted("a", reconcile=unreachable)
    run(Engine(WS, store, {"a": ch}))
    run(Engine(WS, store, {"a": ch}))
    assert ch.sent == []
    entry = store.timeline(1)[-1]
    assert entry.status == "unknown" and "checking whether it was sent" in entry.status_detail
    assert store.db.query_one("SELECT state FROM outbox")[0] == "sending"


def test_a_download_from_a_channel_that_cannot_fetch_fails_with_a_sentence(store, tmp_path):
    message = inbound("1")
    message.attachments = [Attachment("a.jpg", "image/jpeg", 10, "r1")]
    store.apply_pull("a", PullResult([message]))
    folder = tmp_path / "downloads"
    [download] = store.request_downloads(store.timeline(1)[-1].id, str(folder))
    run(Engine(WS, store, {"a": Scripted("a")}))
    [item] = store.downloads([download])
    assert (item["state"], item["error"]) == ("failed", "demo attachments cannot be downloaded")
    assert not folder.exists()
