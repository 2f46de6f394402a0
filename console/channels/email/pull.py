"""Pulling mail: UID sync per folder, a prefetch of the next batch, and waiting in IDLE.

Each watched folder (default INBOX) and the Sent folder are read by UID. The cursor is JSON
`{"folders": {name: {"uidvalidity": V, "last_uid": U}}, "synced": n}` and comes back in the same
PullResult as the messages it covers, so the store advances it in one transaction with them. A
first sync goes in batches (`batch_size`, default 500) with `more=True` and progress. A changed
UIDVALIDITY re-reads that folder from the start: messages are keyed by Message-ID, so the store
keeps what it has and adds nothing twice; nothing is ever deleted locally, and a notice says so.
When caught up and the server has IDLE, a pull waits in IDLE on the first folder for new mail,
and ends within a second of `interrupt()` or of the channel closing.

Speed of a first sync: bodies come from the lean reader of the FETCH answer (imapfetch.py);
while the store applies one batch, the next one is already being fetched (a prefetch for the
cursor just returned, used only if the next pull asks for exactly that cursor); large fetches
are parsed by worker processes (parsepool.py) while the next chunk is fetched.

All of this runs in the pull's worker thread, on a connection of its own.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import time
from typing import Callable

from console.channels.email.connection import Connector, close_imap
from console.channels.email.imapfetch import Fetched, UnexpectedResponse, fetch_bodies
from console.channels.email.inbound import to_inbound
from console.channels.email.journal import SentJournal
from console.channels.email.parsepool import THRESHOLD, ParsePool
from console.model import InboundMessage, PullResult, TransientError

log = logging.getLogger("console.channels.email")

FETCH_CHUNK = 100


class Puller:
    def __init__(self, connector: Connector, journal: SentJournal, step: Callable[[str], None]):
        self.connector = connector
        self.settings = connector.settings
        self.account = connector.account
        self.journal = journal
        self.step = step
        self.pool = ParsePool(self.settings.parse_workers)
        self.closing = threading.Event()
        self.interrupted = threading.Event()
        self.lock = threading.Lock()  # held while a pull runs in its worker thread
        self._imap = None
        self._pulled_once = False
        self._sent_exists: bool | None = None
        self._ahead: tuple[str | None, concurrent.futures.Future] | None = None  # (cursor, prefetch)
        self._ahead_runner: concurrent.futures.ThreadPoolExecutor | None = None

    def pull(self, cursor: str | None) -> PullResult:
        with self.lock:
            try:
                return self._pull_locked(cursor)
            finally:
                self.interrupted.clear()  # consumed by this pull, never by the start of the next one

    def _pull_locked(self, cursor: str | None) -> PullResult:
        ahead = self._take_ahead(cursor)
        if self._imap is None:
            self._imap = self.connector.imap()
        self.step("connected")
        try:
            with self.connector.errors("IMAP"):
                result = ahead.result() if ahead is not None else self._sync(self._imap, cursor)
                if result.more and not self.closing.is_set() and not self.interrupted.is_set():
                    self._start_ahead(result.cursor)
                elif not result.more:
                    self.pool.stop()  # caught up: no idle worker processes while waiting for mail
                first, self._pulled_once = not self._pulled_once, True
                if (result.messages or result.more or first or not self.connector.idle_ok
                        or self.closing.is_set() or self.interrupted.is_set()):
                    return result
                folders = self._watched(self._imap)
                wait = self.settings.idle_timeout if len(folders) == 1 else min(
                    self.settings.idle_timeout, self.settings.poll_interval)
                if self._idle(self._imap, folders[0], wait):
                    return self._sync(self._imap, result.cursor or cursor)
                return result
        except BaseException:
            self._settle_ahead()
            self._drop()
            raise

    def close(self) -> None:
        """Let go of the connection, the prefetch and the workers (call with `closing` set)."""
        self.pool.stop()
        # The pull connection belongs to the pull thread, which notices `closing` within a second
        # and then stops using it; when no pull is running it is closed here.
        if self.lock.acquire(timeout=2):
            try:
                self._settle_ahead()  # a prefetch stops at its next chunk once `closing` is set
                self._drop()
                self.pool.stop()
                if self._ahead_runner is not None:
                    self._ahead_runner.shutdown(wait=False)
                    self._ahead_runner = None
            finally:
                self.lock.release()

    def _drop(self) -> None:
        conn, self._imap = self._imap, None
        close_imap(conn)

    # ---- prefetch -------------------------------------------------------------------------------
    def _start_ahead(self, cursor: str | None) -> None:
        """Fetch the batch after `cursor` in the background while the store applies this one."""
        if self._ahead_runner is None:
            self._ahead_runner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"{self.account}-prefetch")
        self._ahead = (cursor, self._ahead_runner.submit(self._sync, self._imap, cursor, True))

    def _take_ahead(self, cursor: str | None) -> concurrent.futures.Future | None:
        """The prefetch for exactly `cursor`, or None. A prefetch for another cursor (the last batch
        was not stored) is waited for and dropped, with its connection if it failed."""
        if self._ahead is None:
            return None
        wanted, future = self._ahead
        self._ahead = None
        if wanted == cursor:
            return future
        concurrent.futures.wait([future])
        if future.cancelled() or future.exception() is not None:
            self._drop()
        return None

    def _settle_ahead(self) -> None:
        """Wait for a running prefetch to let go of the pull connection; its result is dropped."""
        if self._ahead is not None:
            _, future = self._ahead
            self._ahead = None
            concurrent.futures.wait([future])

    # ---- one pass over the folders --------------------------------------------------------------
    def _watched(self, conn) -> list[str]:
        folders = list(dict.fromkeys(self.settings.folders))
        if self.settings.sent_folder and self.settings.sent_folder not in folders:
            if self._sent_exists is None:
                self._sent_exists = conn.folder_exists(self.settings.sent_folder)
            if self._sent_exists:
                folders.append(self.settings.sent_folder)
        return folders

    def _sync(self, conn, cursor: str | None, ahead: bool = False) -> PullResult:
        state = load_cursor(cursor)
        known = state["folders"]
        budget = self.settings.batch_size
        messages: list[InboundMessage] = []
        notices: list[str] = []
        remaining = 0
        for folder in self._watched(conn):
            try:
                info = conn.select_folder(folder, readonly=True)
            except Exception as exc:
                from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

                if isinstance(exc, IMAPClientError) and not isinstance(exc, IMAPClientAbortError):
                    raise TransientError(f"{self.account}: cannot open folder {folder!r} "
                                         f"({self.connector.server_text(exc)}); check folders") from None
                raise
            self.step("selected")
            uidvalidity = int(info.get(b"UIDVALIDITY", 0))
            uidnext = int(info.get(b"UIDNEXT", 0) or 0)
            mine = known.get(folder)
            if mine is None or mine["uidvalidity"] != uidvalidity:
                if mine is not None:
                    notices.append(f"{folder}: the server renumbered its messages (UIDVALIDITY changed); "
                                   "re-reading it and matching by Message-ID, nothing was deleted")
                mine = known[folder] = {"uidvalidity": uidvalidity, "last_uid": 0}
            if uidnext and uidnext - 1 <= mine["last_uid"]:
                continue
            if int(info.get(b"EXISTS", 1)) == 0:
                if uidnext:
                    mine["last_uid"] = max(mine["last_uid"], uidnext - 1)
                continue
            uids = sorted(u for u in conn.search(["UID", f"{mine['last_uid'] + 1}:*"]) if u > mine["last_uid"])
            self.step("searched")
            take = uids[:budget] if budget > 0 else []
            remaining += len(uids) - len(take)
            if take:
                messages.extend(self._fetch(conn, folder, take, ahead))
                self.step("parsed")
                budget -= len(take)
            if len(take) == len(uids):
                mine["last_uid"] = max([mine["last_uid"], *take, uidnext - 1 if uidnext else 0])
            else:
                mine["last_uid"] = take[-1] if take else mine["last_uid"]
        more = remaining > 0
        done = state["synced"] + len(messages)
        progress = (done, done + remaining) if more or state["synced"] else None
        state["synced"] = done if more else 0
        return PullResult(messages=messages, cursor=json.dumps(state, sort_keys=True), more=more,
                          progress=progress, notice="; ".join(notices))

    def _fetch(self, conn, folder: str, uids: list[int], ahead: bool = False) -> list[InboundMessage]:
        found: list[InboundMessage] = []
        sent = folder == self.settings.sent_folder
        if len(uids) >= THRESHOLD:
            self.pool.start()
        # While the workers parse one chunk, the next one is fetched: (jobs, raws, dates) per chunk.
        waiting: list[tuple[list, list[bytes], list[float | None]]] = []

        def collect(upto: int) -> None:
            while len(waiting) > upto:
                jobs, raws, dates = waiting.pop(0)
                parsed = [mail for job, part in jobs for mail in self.pool.result(job, part)]
                for mail, raw, internal in zip(parsed, raws, dates):
                    found.append(to_inbound(self.settings, mail, raw, sent, internal))

        for start in range(0, len(uids), FETCH_CHUNK):
            if ahead and self.closing.is_set():
                raise TransientError(f"{self.account}: stopped")  # a prefetch nobody will use
            chunk = uids[start:start + FETCH_CHUNK]
            data = self._fetch_chunk(conn, chunk)
            self.step("fetched")
            raws: list[bytes] = []
            dates: list[float | None] = []
            for uid in chunk:
                item = data.get(uid)
                if item is None:
                    continue  # expunged between SEARCH and FETCH: it is gone from the server
                if sent and self.journal.is_pending(item.flags):
                    continue  # our own send in progress: the outbox owns it until it is settled
                raws.append(item.body)
                dates.append(item.internal)
            del data
            workers = max(1, self.pool.workers) if self.pool.running else 1
            step = max(1, -(-len(raws) // workers))
            jobs = [(self.pool.submit(raws[i:i + step]), raws[i:i + step]) for i in range(0, len(raws), step)]
            waiting.append((jobs, raws, dates))
            collect(1)
        collect(0)
        return found

    def _fetch_chunk(self, conn, uids: list[int]) -> dict[int, Fetched]:
        """Bodies, flags and dates by UID: the lean reader, or imapclient when it cannot read the answer."""
        try:
            return fetch_bodies(conn, uids)
        except UnexpectedResponse as exc:
            log.info("%s: reading FETCH the slow way (%s)", self.account, exc)
        found = {}
        for uid, item in conn.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE", "FLAGS"]).items():
            body = item.get(b"BODY[]")
            if isinstance(body, bytes):
                internal = item.get(b"INTERNALDATE")
                found[uid] = Fetched(body, tuple(item.get(b"FLAGS", ())), internal.timestamp() if internal else None)
        return found

    def _idle(self, conn, folder: str, seconds: float) -> bool:
        """Wait in IDLE on `folder` until something arrives (True) or `seconds` pass (False)."""
        conn.select_folder(folder, readonly=True)
        conn.idle()
        woke = False
        try:
            deadline = time.monotonic() + seconds
            while not self.closing.is_set() and not self.interrupted.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                responses = conn.idle_check(timeout=min(1.0, left))
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    woke = True
                    break
        finally:
            conn.idle_done()
        return woke


def load_cursor(cursor: str | None) -> dict:
    try:
        state = json.loads(cursor) if cursor else {}
    except ValueError:
        state = {}
    if not isinstance(state, dict) or not isinstance(state.get("folders"), dict):
        state = {"folders": {}}
    clean = {}
    for name, value in state["folders"].items():
        if isinstance(value, dict) and isinstance(value.get("uidvalidity"), int) and isinstance(value.get("last_uid"), int):
            clean[name] = {"uidvalidity": value["uidvalidity"], "last_uid": value["last_uid"]}
    return {"folders": clean, "synced": int(state.get("synced", 0) or 0)}
