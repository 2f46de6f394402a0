"""Handing a text to the user's `$VISUAL` / `$EDITOR` and taking it back: the composer's ctrl+e and
the campaign texts' (console/ui/outreach/texts.py) use this one way.

The app is suspended while the editor runs (Textual's `App.suspend`), so the editor has the
terminal; the text comes back as the editor saved it, line breaks included, or None when the
editor failed (said in a notice) or the terminal cannot hand over.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile

from textual.app import SuspendNotSupported


def edit_in_editor(app, text: str, prefix: str = "console-") -> str | None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix=prefix, delete=False, encoding="utf-8") as handle:
        handle.write(text)
        path = handle.name
    try:
        with app.suspend():
            done = subprocess.run([*shlex.split(editor), path], check=False)
        if done.returncode != 0:
            app.notify(f"{editor} exited with status {done.returncode}; the text is unchanged.", severity="warning")
            return None
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError as exc:
        app.notify(f"Cannot run {editor}: {exc.strerror}. Set $EDITOR to your editor.", severity="error")
    except SuspendNotSupported:
        app.notify("This terminal cannot hand over to an editor.", severity="warning")
    finally:
        os.unlink(path)
    return None
