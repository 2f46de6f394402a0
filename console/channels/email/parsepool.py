"""Parsing fetched mail in worker processes, so a first sync uses the second core.

Parsing 20,000 messages is seconds of CPU; under the GIL a thread would gain nothing, so large
fetches are parsed by `workers` spawned processes (default: one per core beyond the first, at
most 2; 0 parses in the calling thread). They start for the first large batch and stop once the
sync has caught up, so an idle account keeps no processes. A pool that breaks (a worker killed)
is never restarted: from then on mail is parsed in the calling thread, with the same result.
A worker whose parent dies, even by SIGKILL, exits within a second (`_watch_parent`): the
engine's processes never outlive it.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time

from console.channels.email.mailparse import ParsedMail, parse

THRESHOLD = 200  # parse in worker processes only when a pull fetches at least this many


def parse_many(raws: list[bytes]) -> list[ParsedMail]:
    """Parse a list of messages for the sync (runs in a worker process). An HTML alternative is
    left out: the store keeps the raw mail instead, and not decoding it (nor sending it back to
    this process) saved a tenth of the parsing."""
    return [parse(raw, keep_html=False) for raw in raws]


def _watch_parent() -> None:
    """In a worker: exit once the process that started it is gone. Polling the parent's pid is
    portable, and unlike PR_SET_PDEATHSIG it does not fire when the thread that happened to
    spawn the worker ends while the engine lives on."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_EVERY)
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


WATCH_EVERY = 0.5  # seconds between a worker's looks at its parent


class ParsePool:
    def __init__(self, workers: int = -1):
        self.wanted = workers
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._broken = False

    @property
    def workers(self) -> int:
        wanted = self.wanted
        if wanted < 0:
            wanted = min(2, (os.cpu_count() or 1) - 1)
        return wanted

    @property
    def running(self) -> bool:
        return self._pool is not None

    def start(self) -> None:
        workers = self.workers
        if self._pool is None and workers > 0 and not self._broken:
            try:
                # spawn, not fork: this process has threads (and a SQLite connection) of its own.
                self._pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                                 initializer=_watch_parent)
            except Exception:
                self._broken = True

    def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def submit(self, raws: list[bytes]) -> "concurrent.futures.Future | list[ParsedMail]":
        """Parse in the worker processes (a future of the list) or, without them, right here."""
        pool = self._pool
        if pool is not None:
            try:
                return pool.submit(parse_many, raws)
            except Exception:  # a broken pool (a worker died): parse here from now on
                self._broken = True
                self.stop()
        return parse_many(raws)

    def result(self, job, raws: list[bytes]) -> list[ParsedMail]:
        """What `submit` returned, as the parsed list (parsed here if the worker failed)."""
        if isinstance(job, list):
            return job
        try:
            return job.result()
        except Exception:
            self._broken = True
            self.stop()
            return parse_many(raws)
