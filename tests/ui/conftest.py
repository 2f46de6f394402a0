"""Every test here runs on each of the store's backends (tests/backends.py)."""

import pytest


@pytest.fixture(autouse=True)
def _on_every_backend(backend):
    """The test's store is made by `backend` (SQLite, then PostgreSQL)."""
