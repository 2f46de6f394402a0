"""Store calls off the UI thread: the only way the UI reaches the store.

A key press must never wait for SQLite (a search over a million messages, a write queued behind
the sync engine's transaction). Every store call is a *job* run on one of three lanes, each a
single thread so that jobs of a lane run in the order they were asked:

- `write`: intents (reply, done, tag, note...), in order, never dropped;
- `read`: what the screen shows (list pages, timelines, the card), a newer job with the same
  `key` supersedes an older one that has not reported yet (moving the selection fast loads only
  the customer it stops on);
- `search`: full-text searches, cancellable mid-query, so typing never waits for them.

A job gets the store and returns a value; `done(value)` then runs on the UI thread. A job that
raises reaches `on_error` (the app's one error handler: a line for the user, the traceback in
the log) with what the user was doing, never silence.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("console.ui")

LANES = ("write", "read", "search")


class Cancelled(Exception):
    """Raised inside a job that noticed it was superseded (searches check `ticket.cancelled`)."""


@dataclass(eq=False)
class Ticket:
    """One job: cancel() drops its result (and stops a search that checks it)."""

    what: str
    key: str | None = None
    _cancelled: threading.Event = field(default_factory=threading.Event)
    done_event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


class Background:
    """The UI's lanes to the store. `post(callback)` must hand a callable to the UI thread."""

    def __init__(self, store, post: Callable[[Callable[[], None]], None],
                 on_error: Callable[[BaseException, str], None]):
        self.store = store
        self._post = post
        self._on_error = on_error
        self._lanes = {name: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"store-{name}")
                       for name in LANES}
        self._latest: dict[str, Ticket] = {}
        self._pending: set[Ticket] = set()
        self._lock = threading.Lock()
        self._closed = False

    def run(self, job: Callable[..., Any], done: Callable[[Any], None] | None = None, *, what: str,
            lane: str = "read", key: str | None = None, pass_ticket: bool = False) -> Ticket:
        """Run `job(store)` (or `job(store, ticket)`) on `lane`; `done(result)` on the UI thread.

        With `key`, a newer job of the same key cancels this one's result."""
        ticket = Ticket(what, key)
        with self._lock:
            if self._closed:
                ticket.cancel()
                return ticket
            if key is not None:
                older = self._latest.get(key)
                if older is not None:
                    older.cancel()
                self._latest[key] = ticket
            self._pending.add(ticket)
        self._lanes[lane].submit(self._work, job, done, ticket, pass_ticket)
        return ticket

    def _work(self, job, done, ticket: Ticket, pass_ticket: bool) -> None:
        try:
            if ticket.cancelled:
                return
            try:
                result = job(self.store, ticket) if pass_ticket else job(self.store)
            except Cancelled:
                return
            except Exception as error:  # noqa: BLE001 - every failure reaches the one handler
                if not ticket.cancelled:
                    # Bound now: Python unbinds `error` when the except block ends.
                    self._post(lambda failure=error: self._on_error(failure, ticket.what))
                return
            if done is not None and not ticket.cancelled:
                self._post(lambda: self._deliver(done, result, ticket))
        finally:
            with self._lock:
                self._pending.discard(ticket)
                if ticket.key is not None and self._latest.get(ticket.key) is ticket:
                    del self._latest[ticket.key]
            ticket.done_event.set()

    def _deliver(self, done, result, ticket: Ticket) -> None:
        if ticket.cancelled:
            return
        try:
            done(result)
        except Exception as error:  # noqa: BLE001
            self._on_error(error, ticket.what)

    @property
    def busy(self) -> bool:
        """Whether any job has not finished yet (tests and shutdown wait on this)."""
        with self._lock:
            return bool(self._pending)

    def pending_writes(self) -> int:
        with self._lock:
            return sum(1 for t in self._pending if not t.cancelled)

    def close(self, wait: float = 5.0) -> None:
        """Stop taking jobs; let queued writes finish (up to `wait` seconds); drop the reads."""
        with self._lock:
            self._closed = True
            for ticket in self._latest.values():
                ticket.cancel()
        for name, lane in self._lanes.items():
            lane.shutdown(wait=False, cancel_futures=name != "write")
        writes = self._lanes["write"]
        done = threading.Event()
        threading.Thread(target=lambda: (writes.shutdown(wait=True), done.set()), daemon=True).start()
        if not done.wait(wait):
            log.warning("store writes still running after %.0f s at exit", wait)
