"""Greedy word wrapping by terminal cells, as character offsets.

The timeline lays out every loaded message to know its height (for the scrollbar and to scroll to
a message), but draws only the lines on screen. Rich's wrapping builds styled lines for the whole
text, which cost 1.3-3 s for 300 messages; this computes only where each line starts and ends,
and the same offsets then cut the styled text of the few messages being drawn, so the heights
and the drawing always agree.
"""

from __future__ import annotations

import re

from rich.cells import cell_len

_TOKEN = re.compile(r"\S+\s*|\s+")


def wrap_offsets(text: str, width: int) -> list[tuple[int, int]]:
    """(start, end) offsets of each line of `text` wrapped at `width` cells. A newline ends a
    line; a line breaks before a word that would not fit; a word longer than a line is cut.
    Spaces at the end of a line may run past `width` (drawing crops them)."""
    width = max(1, width)
    lines: list[tuple[int, int]] = []
    start = 0
    size = len(text)
    while True:
        end = text.find("\n", start)
        if end < 0:
            end = size
        if end - start <= width and text.isascii():
            lines.append((start, end))  # the common case: a short ASCII line, one cell a character
        else:
            _wrap_paragraph(text, start, end, width, lines)
        if end >= size:
            return lines
        start = end + 1


def _wrap_paragraph(text: str, start: int, end: int, width: int, lines: list[tuple[int, int]]) -> None:
    line_start, used = start, 0
    for match in _TOKEN.finditer(text, start, end):
        token = match.group()
        word = token.rstrip()
        word_cells = cell_len(word)
        token_start = match.start()
        if used and used + word_cells > width:
            lines.append((line_start, token_start))
            line_start, used = token_start, 0
        if word_cells > width:
            position = token_start
            for char in word:
                cells = cell_len(char)
                if used and used + cells > width:
                    lines.append((line_start, position))
                    line_start, used = position, 0
                used += cells
                position += 1
            used += cell_len(token) - word_cells
        else:
            used += cell_len(token)
    lines.append((line_start, end))
