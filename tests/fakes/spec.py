"""Where the fakes find the official API descriptions they check themselves against."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SPECS = Path(__file__).resolve().parent.parent / "specs"


def spec_path(name: str) -> Path:
    """An API description: tests/specs/ (see its README), or $CONSOLE_SPECS_DIR when set."""
    folder = Path(os.environ.get("CONSOLE_SPECS_DIR") or SPECS)
    path = folder / name
    if path.exists():
        return path
    message = f"the API description {path} is missing; set CONSOLE_SPECS_DIR to the folder holding {name}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
