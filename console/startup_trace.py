"""Marks on the way to the first screen, for bench/startup.py (CONSOLE_TRACE_STARTUP=<file>).

Off unless the variable is set; then each mark is (what, seconds since CONSOLE_BENCH_T0 or since
this module was imported), written to the file when the first screen is painted.
"""

from __future__ import annotations

import os
import time

_FILE = os.environ.get("CONSOLE_TRACE_STARTUP")
_T0 = float(os.environ.get("CONSOLE_BENCH_T0") or 0) or time.time()
_MARKS: list[tuple[str, float]] = []


def mark(what: str) -> None:
    if _FILE:
        _MARKS.append((what, time.time() - _T0))


def dump() -> None:
    if _FILE:
        with open(_FILE, "w") as out:
            out.write("\n".join(f"{at * 1000:8.1f} ms  {what}" for what, at in _MARKS) + "\n")
