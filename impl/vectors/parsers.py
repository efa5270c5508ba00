"""Text out of uploaded files, chosen by the file name's extension (as OpenAI does).

Plain text, Markdown, JSON and source code are read as UTF-8; HTML loses its tags, scripts and
styles (block elements become line breaks); PDF text comes from pypdf. Anything else is
`unsupported_file`, and bytes that do not read as their type are `invalid_file`: the file
fails with that reason and the rest of its vector store is unaffected.
"""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from pathlib import PurePath


class ParseError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # `unsupported_file` or `invalid_file`, as `last_error.code`
        self.message = message


TEXT = frozenset(
    [
        ".txt",
        ".md",
        ".markdown",
        ".rst",
        ".csv",
        ".tsv",
        ".log",
        ".tex",
        ".xml",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".py",
        ".js",
        ".mjs",
        ".ts",
        ".tsx",
        ".jsx",
        ".java",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".go",
        ".rs",
        ".rb",
        ".php",
        ".sh",
        ".bash",
        ".css",
        ".scss",
        ".sql",
        ".kt",
        ".swift",
        ".scala",
        ".r",
        ".lua",
        ".pl",
        ".m",
        ".dart",
        ".vue",
        ".svelte",
    ]
)
HTML = frozenset({".html", ".htm", ".xhtml"})


def parse(filename: str, data: bytes) -> str:
    """The file's text; raises ParseError."""
    suffix = PurePath(filename).suffix.lower()
    if suffix in TEXT:
        return _utf8(data, filename)
    if suffix == ".json":
        text = _utf8(data, filename)
        try:
            json.loads(text)
        except ValueError as exc:
            raise ParseError("invalid_file", f"{filename} is not valid JSON: {exc}") from exc
        return text
    if suffix in HTML:
        return _html(_utf8(data, filename))
    if suffix == ".pdf":
        return _pdf(data, filename)
    kind = f"'{suffix}'" if suffix else "without an extension"
    raise ParseError(
        "unsupported_file",
        f"Files of type {kind} are not supported for search: {filename}. Supported: text, "
        "Markdown, HTML, JSON, PDF and source code.",
    )


def _utf8(data: bytes, filename: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError("invalid_file", f"{filename} is not UTF-8 text.") from exc


class _Text(HTMLParser):
    _SKIP = frozenset({"script", "style", "template", "noscript", "head"})
    _BLOCK = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "ul",
            "ol",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "tr",
            "table",
            "section",
            "article",
            "header",
            "footer",
            "pre",
            "blockquote",
            "dt",
            "dd",
        ]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html(text: str) -> str:
    parser = _Text()
    parser.feed(text)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _pdf(data: bytes, filename: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages).strip()
    except (PdfReadError, ValueError, KeyError) as exc:
        raise ParseError("invalid_file", f"{filename} could not be read as a PDF: {exc}") from exc
