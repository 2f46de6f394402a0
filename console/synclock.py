"""Who runs the sync engine of a workspace: an exclusive, crash-safe lock file.

Exactly one process per workspace runs the engine. The lock is `<data_dir>/sync.lock`, held
with `flock`, which the OS releases when the holder dies however it dies; the file holds the
holder's pid for messages. The engine takes it; the app only asks who holds it (to start an
engine when nobody does), without importing the engine.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

# When the app that started an engine goes, the engine delivers what the outbox holds due within
# this many seconds (a reply in its send delay, a retry), then stops; the app says so on leaving.
FINISH_OUTBOX_WITHIN = 600.0


class SyncLock:
    """An exclusive, crash-safe lock on `<data_dir>/sync.lock`: who may run the engine."""

    def __init__(self, data_dir: Path):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "sync.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def holder(self) -> int | None:
        """The pid of the process holding the lock, or None if nobody does."""
        if self._fd is not None:
            return os.getpid()
        probe = SyncLock.__new__(SyncLock)
        probe.path, probe._fd = self.path, None
        if probe.acquire():
            probe.release()
            return None
        try:
            return int(self.path.read_text().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
