"""Read a document's text: plain text, Markdown, HTML, JSON lines and PDF.

CPU-bound and synchronous on purpose: callers run it with asyncio.to_thread.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from pathlib import PurePosixPath

from ..errors import Unprocessable

FORMATS = {".txt": "text", ".text": "text", ".log": "text", ".md": "markdown", ".markdown": "markdown",
           ".html": "html", ".htm": "html", ".jsonl": "jsonl", ".ndjson": "jsonl", ".pdf": "pdf"}
CONTENT_TYPES = {"text/plain": "text", "text/markdown": "markdown", "text/x-markdown": "markdown",
                 "text/html": "html", "application/xhtml+xml": "html", "application/x-ndjson": "jsonl",
                 "application/jsonl": "jsonl", "application/json-lines": "jsonl", "application/pdf": "pdf"}


class UnsupportedDocument(Unprocessable):
    code = "unsupported_document"


class UndecodableDocument(Unprocessable):
    code = "undecodable_document"


@dataclass(frozen=True)
class ParsedDocument:
    text: str
    format: str
    pages: int | None = None


def detect_format(filename: str, content_type: str | None) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    media = (content_type or "").split(";")[0].strip().lower()
    if media in CONTENT_TYPES:
        return CONTENT_TYPES[media]
    if media.startswith("text/"):
        return "text"
    raise UnsupportedDocument(f"Unsupported document type for {filename!r} ({media or 'no content type'}): "
                              "expected .txt, .md, .html, .jsonl or .pdf.")


def decode(data: bytes, filename: str) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UndecodableDocument(f"{filename!r} is not UTF-8 text (byte {exc.start} is invalid).") from None
    if "\x00" in text:
        raise UndecodableDocument(f"{filename!r} contains NUL bytes: it is binary, not text.")
    return text


def parse_document(data: bytes, *, filename: str, content_type: str | None = None) -> ParsedDocument:
    kind = detect_format(filename, content_type)
    if kind == "pdf":
        return _pdf(data, filename)
    text = decode(data, filename)
    if kind == "markdown":
        text = _markdown(text)
    elif kind == "html":
        text = _html(text)
    elif kind == "jsonl":
        text = _jsonl(text, filename)
    return ParsedDocument(text=text, format=kind)


def _markdown(text: str) -> str:
    text = re.sub(r"^```.*$", "", text, flags=re.MULTILINE)            # code fences
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)             # images -> alt text
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)               # links -> their text
    text = re.sub(r"^\s{0,3}#{1,6}\s*", "", text, flags=re.MULTILINE)  # headings
    text = re.sub(r"^\s{0,3}>\s?", "", text, flags=re.MULTILINE)       # quotes
    text = re.sub(r"^\s*[-*+]\s+", "", text, flags=re.MULTILINE)       # bullets
    text = re.sub(r"(\*\*|__|`)", "", text)                            # emphasis, inline code
    # Single-asterisk/underscore emphasis around words only, so snake_case and 3*4 survive.
    return re.sub(r"(?<![\w*])[*_](\S[^*_\n]*?\S|\S)[*_](?![\w*])", r"\1", text)


class _TextExtractor(HTMLParser):
    SKIP = {"script", "style", "nav", "noscript", "template", "head"}
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
              "header", "footer", "table", "ul", "ol", "blockquote", "pre", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _html(text: str) -> str:
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    joined = unescape("".join(parser.parts))
    return re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t]+", " ", joined)).strip()


def _jsonl(text: str, filename: str) -> str:
    parts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UndecodableDocument(f"{filename!r} line {number} is not JSON: {exc.msg}.") from None
        if isinstance(item, dict):
            field = next((item[k] for k in ("text", "content", "body") if isinstance(item.get(k), str)), None)
            parts.append(field if field is not None else " ".join(v for v in item.values() if isinstance(v, str)))
        elif isinstance(item, str):
            parts.append(item)
    return "\n\n".join(part for part in parts if part.strip())


def _pdf(data: bytes, filename: str) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UndecodableDocument(f"{filename!r} is an encrypted PDF.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise UndecodableDocument(f"{filename!r} is not a readable PDF: {exc}.") from None
    return ParsedDocument(text="\n\n".join(p.strip() for p in pages if p.strip()), format="pdf", pages=len(pages))
