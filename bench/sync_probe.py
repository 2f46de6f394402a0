"""Where a sync's time goes: CPU per thread of this process, its worker processes and Dovecot.

Used by `bench/email_sync.py --cpu`. Linux only (reads /proc). CPU times are utime + stime from
/proc, sampled every 0.2 s so threads and processes that end before the sync does are counted
too; the store's and the adapter's calls are also timed around each call (wall and thread CPU),
which says which of them is the critical path.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from contextlib import contextmanager

TICK = os.sysconf("SC_CLK_TCK")


def _stat(path: str) -> list[str] | None:
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields after the command name


def _cpu(fields: list[str], children: bool = False) -> float:
    # fields[11], fields[12]: utime, stime; [13], [14]: cutime, cstime (waited-for children)
    total = int(fields[11]) + int(fields[12])
    if children:
        total += int(fields[13]) + int(fields[14])
    return total / TICK


def _descendants(root: int, skip: int | None = None) -> list[int]:
    parents: dict[int, list[int]] = defaultdict(list)
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(f"/proc/{name}/stat")
            if fields:
                parents[int(fields[1])].append(int(name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in parents.get(pid, []):
            if child == skip:
                continue  # the mail server, started by this process, is counted on its own
            found.append(child)
            todo.append(child)
    return found


class Probe:
    def __init__(self, server_pid: int | None):
        self.server_pid = server_pid
        self.threads: dict[int, float] = {}  # native id -> CPU seconds, last sample
        self.names: dict[int, str] = {}
        self.children: dict[int, float] = {}
        self.calls: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])  # wall, cpu, count
        self._stop = threading.Event()
        self._server_before = self._server_cpu()

    def _server_cpu(self) -> float:
        if self.server_pid is None:
            return 0.0
        total = 0.0
        for pid in [self.server_pid, *_descendants(self.server_pid)]:
            fields = _stat(f"/proc/{pid}/stat")
            if fields:
                total += _cpu(fields, children=True)
        return total

    def _sample(self) -> None:
        me = os.getpid()
        for thread in threading.enumerate():
            if thread.native_id is not None:
                self.names[thread.native_id] = thread.name
        for name in os.listdir(f"/proc/{me}/task"):
            fields = _stat(f"/proc/{me}/task/{name}/stat")
            if fields:
                self.threads[int(name)] = _cpu(fields)
        for pid in _descendants(me, skip=self.server_pid):
            fields = _stat(f"/proc/{pid}/stat")
            if fields:
                self.children[pid] = _cpu(fields, children=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def start(self) -> "Probe":
        self._sampler = threading.Thread(target=self._run, name="probe", daemon=True)
        self._sampler.start()
        return self

    @contextmanager
    def call(self, what: str):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            entry = self.calls[what]
            entry[0] += time.perf_counter() - wall
            entry[1] += time.thread_time() - cpu
            entry[2] += 1

    def stop(self) -> None:
        self._sample()
        self._stop.set()
        self._sampler.join()
        time.sleep(0.5)  # let Dovecot reap the imap process of the connection just closed
        self.server = self._server_cpu() - self._server_before

    def report(self, wall: float) -> str:
        lines = [f"  probe: wall {wall:.2f} s"]
        for what, (w, c, n) in sorted(self.calls.items()):
            lines.append(f"    {what:<28} {n:5} calls  wall {w:6.2f} s  cpu {c:6.2f} s")
        by_name: dict[str, float] = defaultdict(float)
        for tid, cpu in self.threads.items():
            name = self.names.get(tid, f"thread-{tid}")
            by_name[name.rsplit("_", 1)[0] if name[-1:].isdigit() and "_" in name else name] += cpu
        for name, cpu in sorted(by_name.items(), key=lambda item: -item[1]):
            if cpu >= 0.05:
                lines.append(f"    thread {name:<21} cpu {cpu:6.2f} s")
        lines.append(f"    worker processes             cpu {sum(self.children.values()):6.2f} s "
                     f"({len(self.children)} processes)")
        lines.append(f"    dovecot                      cpu {self.server:6.2f} s")
        total = sum(self.threads.values()) + sum(self.children.values()) + self.server
        lines.append(f"    all                          cpu {total:6.2f} s on {os.cpu_count()} cores")
        return "\n".join(lines)
