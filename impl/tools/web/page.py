"""The `open_page` action: fetch a page the model asked for and hand back its readable text.

The URL comes from the model, so it is fetched through the guard (tools.fetch: every hop
checked, connections pinned to public addresses). A page is cut at `max_bytes` (decompressed;
`truncated` says so) and the whole fetch, redirects included, must end within `timeout`.

HTML becomes text with the standard library's tolerant `html.parser`: scripts, styles and
other non-text elements are dropped, block elements end lines, headings and list items keep
a Markdown-like marker. That is all a model needs to read and cite a page, with no dependency
to pin and no native code parsing hostile input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from openresponses.config import Settings
from openresponses.tools.fetch import Fetched, FetchFailed, GuardedFetcher
from openresponses.tools.web.base import WebSearchError

_HTML = ("text/html", "application/xhtml+xml")
_TEXT = ("application/json", "application/xml", "application/javascript")
_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
    "User-Agent": "Mozilla/5.0 (compatible; openresponses web_search)",
}


@dataclass(frozen=True)
class PageText:
    url: str  # after redirects
    title: str
    text: str
    truncated: bool  # the page was longer than max_bytes


class _Readable(HTMLParser):
    """Collects an HTML document's title and visible text, one line per block."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object"})
    _BLOCKS = frozenset({
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "form", "header", "hr", "li", "main", "nav", "ol",
        "p", "pre", "section", "table", "tr", "ul", "h1", "h2", "h3", "h4", "h5", "h6",
    })  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.lines: list[str] = []
        self._line: list[str] = []
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in self._BLOCKS:
            self._end_line()
            if tag == "li":
                self._line.append("- ")
            elif tag[0] == "h" and tag[1:].isdigit():
                self._line.append("#" * int(tag[1:]) + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in self._BLOCKS:
            self._end_line()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data
        else:
            self._line.append(data)

    def _end_line(self) -> None:
        line = " ".join("".join(self._line).split())
        if line and line not in ("-", "#"):
            self.lines.append(line)
        self._line = []

    def text(self) -> str:
        self._end_line()
        return "\n".join(self.lines)


def html_text(html: str) -> tuple[str, str]:
    """The title and readable text of an HTML document."""
    parser = _Readable()
    parser.feed(html)
    parser.close()
    return " ".join(parser.title.split()), parser.text()


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.IGNORECASE)


def _decode(body: bytes, charset: str | None) -> str:
    """Decoded with the header's charset, else a `<meta charset>` near the top, else UTF-8."""
    if charset is None:
        found = _META_CHARSET.search(body[:2048])
        charset = found.group(1).decode("ascii") if found else "utf-8"
    try:
        return body.decode(charset, "replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", "replace")


class PageFetcher:
    """Opens pages for the web_search tool: one per server, made where the event loop runs
    (the app's lifespan), closed with it; it owns a guarded connection pool (tools.fetch)."""

    def __init__(
        self,
        *,
        allow_private: bool,
        max_bytes: int = 2_000_000,
        timeout: float = 20.0,
        max_redirects: int = 5,
    ) -> None:
        self.max_bytes = max_bytes
        self._fetcher = GuardedFetcher(
            allow_private=allow_private,
            headers=_HEADERS,
            timeout=timeout,
            max_redirects=max_redirects,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> PageFetcher:
        return cls(allow_private=settings.allow_private_networks)

    async def close(self) -> None:
        await self._fetcher.close()

    async def fetch_page(self, url: str, *, param: str = "url") -> PageText:
        """The page's text; a refused URL (at any hop) raises the guard's 400 naming `param`,
        a page that cannot be read a WebSearchError."""
        try:
            fetched = await self._fetcher.get(url, param=param, max_bytes=self.max_bytes)
        except FetchFailed as exc:
            status = 504 if exc.reason == "timeout" else 502
            raise WebSearchError(exc.message, code=f"page_{exc.reason}", status=status) from exc
        return _page(fetched)


def _page(fetched: Fetched) -> PageText:
    content = _decode(fetched.body, fetched.charset)
    kind = fetched.content_type
    if kind in _HTML:
        title, text = html_text(content)
        return PageText(fetched.url, title, text, fetched.truncated)
    if kind.startswith("text/") or kind in _TEXT:
        return PageText(fetched.url, "", content.strip(), fetched.truncated)
    raise WebSearchError(
        f"{fetched.url} is {kind}, which cannot be read as text", code="page_unreadable"
    )
