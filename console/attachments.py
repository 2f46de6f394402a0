"""Saving attachments under names that cannot escape the download folder or fool the user.

The sender chooses an attachment's name: it may hold `../`, an absolute path, a Windows drive,
control characters, or a right-to-left override that shows `invoice\u202efdp.exe` as
"invoiceexe.pdf". `safe_filename` keeps only a plain file name; `save` never overwrites a file.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

MAX_NAME = 120  # characters; well under the 255-byte limit of common file systems once UTF-8 encoded
FALLBACK = "attachment"
# Controls (C0, DEL, C1), bidi embeddings/overrides/isolates and marks, zero-width characters, and
# characters that are special in file names on some system.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb"
    r'<>:"|?*\\/]'
)
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_filename(name: str) -> str:
    """A plain file name derived from a sender's `name`: no directories, no control or bidi
    characters, no leading dots or spaces, at most MAX_NAME characters, never empty."""
    if not isinstance(name, str):
        name = ""
    name = unicodedata.normalize("NFC", name)
    # Keep only the last path component, whichever separator the sender used.
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    name = re.sub(r"\s+", " ", name).strip().lstrip(". ").rstrip(". ")
    if name.split(".")[0].lower() in _RESERVED:
        name = "_" + name
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10 and stem:
            name = stem[: MAX_NAME - len(ext) - 1].rstrip(". ") + "." + ext
        else:
            name = name[:MAX_NAME].rstrip(". ")
    return name or FALLBACK


def save(data: bytes, name: str, folder: Path) -> Path:
    """Write `data` into `folder` under a safe version of `name`; never overwrites an existing
    file (adds " (2)", " (3)"...). Returns the path written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = safe_filename(name)
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    for number in range(1, 10_000):
        candidate = base if number == 1 else (f"{stem} ({number}).{ext}" if ext else f"{stem} ({number})")
        path = folder / candidate
        try:
            # O_EXCL: atomically refuse an existing file (or a symlink planted under that name).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path
    raise FileExistsError(f"too many files named like {base!r} in {folder}")
