"""HTML mail turned into readable plain text, with nothing fetched from the network.

Built on the standard library's `html.parser`: scripts, styles and the head are dropped, block
elements become line breaks, list items get a dash, links are written as `text (url)` so the URL
is visible as plain text, images become `[image: alt]` and are never loaded. Whitespace is
collapsed as a browser would, except inside `<pre>`. Input is capped so a hostile multi-megabyte
HTML part costs a bounded amount of time.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

MAX_HTML = 2_000_000  # characters converted; the rest is cut (the original is kept with the raw mail)

_BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "fieldset", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol",
    "p", "pre", "section", "table", "tr", "ul", "title",
})
_SKIP = frozenset({"script", "style", "head", "template", "noscript", "object", "iframe", "svg"})
_LINK_SCHEMES = ("http://", "https://", "mailto:", "ftp://", "tel:")
_SPACES = re.compile(r"[ \t\r\f\v\n]+")


class _TextMaker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.pre = 0
        self.links: list[tuple[str, int]] = []  # (href, position in out when the link opened)
        self.quote = 0

    # Output helpers ------------------------------------------------------------------------------
    def _newline(self, count: int = 1) -> None:
        if not self.out:
            return
        tail = "".join(self.out[-4:]).rstrip(" ")
        have = len(tail) - len(tail.rstrip("\n"))
        if count > have:
            self.out.append("\n" * (count - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
            return
        if self.skip:
            return
        values = {k: (v or "") for k, v in attrs}
        if tag == "br":
            self.out.append("\n")
        elif tag == "pre":
            self.pre += 1
            self._newline(1)
        elif tag == "li":
            self._newline(1)
            self.out.append("- ")
        elif tag == "blockquote":
            self._newline(1)
            self.quote += 1
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "img":
            alt = values.get("alt", "").strip()
            if alt:
                self.out.append(f"[image: {alt}]")
        elif tag == "a":
            self.links.append((values.get("href", "").strip(), len(self.out)))
        elif tag in _BLOCK:
            self._newline(2 if tag in ("p", "h1", "h2", "h3", "table", "ul", "ol") else 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in _SKIP:
            self.skip -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            shown = "".join(self.out[start:]).strip()
            target = href[7:] if href.lower().startswith("mailto:") else href
            if href.lower().startswith(_LINK_SCHEMES) and target and target != shown:
                self.out.append(f" ({href})" if shown else href)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self._newline(1)
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self._newline(1)
        elif tag in _BLOCK:
            self._newline(2 if tag in ("p", "h1", "h2", "h3", "table", "ul", "ol") else 1)

    def handle_data(self, data: str) -> None:
        if self.skip or not data:
            return
        if not self.pre:
            data = _SPACES.sub(" ", data)
            last = self.out[-1] if self.out else "\n"
            if last.endswith((" ", "\n")):
                data = data.lstrip(" ")
        if data:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """Readable text for an HTML body. Never raises; never fetches anything."""
    if not html:
        return ""
    parser = _TextMaker()
    try:
        parser.feed(html[:MAX_HTML])
        parser.close()
    except Exception:  # html.parser is lenient, but a converter must never take a sync down
        pass
    text = "".join(parser.out)
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n ")
