"""Fixtures of the real-terminal suite (tests/e2e/harness.py has the workspace and its helpers).

Every test ends by checking the workspace's errors.log: any line in it (an error the app or its
sync engine caught and logged) fails the test, whatever the test itself checked.
"""

from __future__ import annotations

import pytest

from e2e.harness import CONSOLE, Workspace


@pytest.fixture
def workspace(seeded_demo, tmp_path):
    if not CONSOLE.exists():
        pytest.fail(f"{CONSOLE} is missing: the real-terminal suite runs the installed console (scripts/test installs it)")
    ws = Workspace(tmp_path, seeded_demo)
    yield ws
    ws.close()
    errors = ws.errors()
    assert not errors.strip(), f"errors.log is not empty:\n{errors[-4000:]}"
