"""Document bytes -> plain text: text, Markdown, HTML, JSON lines and PDF.

The format comes from the content type when it is specific, else from the file
name's extension (S3 often labels uploads `application/octet-stream`). Text is
decoded as UTF-8 (a BOM is honoured), as UTF-16/32 when a BOM says so, or in
the charset the content type declares; anything else is refused with a clear
error rather than silently garbled.

Parsing is CPU-bound and synchronous: callers run it in `asyncio.to_thread`.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any

from ..errors import Unprocessable

__all__ = [
    "ParsedDocument",
    "UndecodableDocument",
    "UnsupportedDocument",
    "decode_text",
    "detect_format",
    "parse_document",
]


class UnsupportedDocument(Unprocessable):
    code = "unsupported_document"


class UndecodableDocument(Unprocessable):
    """Bytes that cannot be read as their format: bad encoding, a bad JSON line, a broken or encrypted PDF."""

    code = "undecodable_document"


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    text: str
    format: str
    pages: int | None = None


CONTENT_TYPES = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/jsonlines": "jsonl",
    "application/pdf": "pdf",
}
EXTENSIONS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".pdf": "pdf",
}
# Labels that say nothing about the format: the extension decides.
GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream", "text/plain"}


def parse_document(data: bytes, *, filename: str, content_type: str | None = None) -> ParsedDocument:
    """Extract the text of a document; raises an `Unprocessable` subclass when it cannot."""
    media_type, charset = _split_content_type(content_type)
    fmt = detect_format(data, filename=filename, media_type=media_type)
    if fmt == "pdf":
        return _parse_pdf(data)
    text = decode_text(data, charset=charset)
    return ParsedDocument(text=_PARSERS[fmt](text), format=fmt)


def detect_format(data: bytes, *, filename: str, media_type: str = "") -> str:
    """One of text, markdown, html, jsonl, pdf; `UnsupportedDocument` for anything else."""
    if media_type not in GENERIC_TYPES and media_type in CONTENT_TYPES:
        return CONTENT_TYPES[media_type]
    extension = PurePosixPath(filename).suffix.lower()
    if extension in EXTENSIONS:
        return EXTENSIONS[extension]
    if media_type in CONTENT_TYPES:  # text/plain
        return CONTENT_TYPES[media_type]
    if media_type.startswith("text/"):
        return "text"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if media_type in GENERIC_TYPES and not extension and _looks_like_text(data):
        return "text"  # e.g. a README without extension or type
    raise UnsupportedDocument(
        f"Unsupported document type {media_type or extension or 'unknown'!r} for {filename!r}: "
        "expected text, Markdown, HTML, JSON lines or PDF."
    )


def decode_text(data: bytes, *, charset: str | None = None) -> str:
    """Bytes -> str with newlines normalized; `UndecodableDocument` rather than a guess."""
    encoding, body = _encoding_by_bom(data)
    if encoding is None:
        encoding = charset or "utf-8"
    try:
        text = codecs.decode(body, encoding, errors="strict")
    except LookupError:
        raise UndecodableDocument(f"Unknown charset {encoding!r}.") from None
    except UnicodeDecodeError as exc:
        raise UndecodableDocument(
            f"The document is not valid {encoding} (byte {exc.start}); "
            "send UTF-8, UTF-16 with a byte order mark, or declare the charset."
        ) from None
    if "\x00" in text:  # UTF-16 without a BOM, or binary data, decodes "fine" as UTF-8
        raise UndecodableDocument(
            "The document contains NUL characters: UTF-16 without a byte order mark, or binary data."
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _encoding_by_bom(data: bytes) -> tuple[str | None, bytes]:
    # UTF-32 first: its little-endian BOM starts with UTF-16's.
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            return encoding, data[len(bom) :]
    return None, data


def _split_content_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    media_type, _, params = content_type.partition(";")
    match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", params, re.IGNORECASE)
    return media_type.strip().lower(), match.group(1) if match else None


def _looks_like_text(data: bytes) -> bool:
    try:
        decode_text(data[:4096].rsplit(b"\n", 1)[0] if len(data) > 4096 else data)
    except UndecodableDocument:
        return False
    return True


# --- plain text ----------------------------------------------------------------------------------


def _parse_text(text: str) -> str:
    return _tidy(text)


def _tidy(text: str) -> str:
    """Trailing spaces off, at most one blank line in a row, no blank edges."""
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


# --- Markdown ------------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s+|$)(.*)$")
_RULE = re.compile(r"^\s{0,3}(?:[-*_]\s*){3,}$|^\s{0,3}=+\s*$")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$")
_SEPARATOR_CELL = re.compile(r"\s*:?-{2,}:?\s*")
_QUOTE = re.compile(r"^\s{0,3}(?:>\s?)+")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?:\[[ xX]\]\s+)?")
# Linear on any line: a span's content never runs past the next candidate delimiter of its own kind, so a
# failed opener scans only up to the next opener (an unbounded `.+?` made "*a *a *a ..." quadratic).
_URL = r"[^()\n]*(?:\([^()\n]*\)[^()\n]*)*"  # one level of balanced parentheses: /wiki/Foo_(bar)
_INLINE = [
    (re.compile(rf"!\[([^\[\]]*)\]\({_URL}\)"), r"\1"),  # image -> alt text
    (re.compile(rf"\[([^\[\]]+)\]\({_URL}\)"), r"\1"),  # link -> its text
    (re.compile(r"\[([^\[\]]+)\]\[[^\[\]]*\]"), r"\1"),  # reference link
    (re.compile(r"<(https?://[^<>\s]+)>"), r"\1"),  # autolink: the URL is the content
    (re.compile(r"`+([^`]+?)`+"), r"\1"),  # inline code
    (re.compile(r"\*\*(?=\S)((?:[^*]|\*(?!\*))+?)(?<=\S)\*\*"), r"\1"),  # strong
    (re.compile(r"__(?=\S)((?:[^_]|_(?!_))+?)(?<=\S)__"), r"\1"),  # strong
    (re.compile(r"(?<![\w*])\*(?=\S)((?:[^*]|(?<=\w)\*(?=\w))+?)(?<=\S)\*(?![\w*])"), r"\1"),  # emphasis
    (re.compile(r"(?<![\w])_(?=\S)((?:[^_]|(?<=\w)_(?=\w))+?)(?<=\S)_(?![\w])"), r"\1"),  # not snake_case
    (re.compile(r"~~(?=\S)((?:[^~]|~(?!~))+?)(?<=\S)~~"), r"\1"),  # strikethrough
    (re.compile(r"<[A-Za-z/][^<>]*>"), ""),  # inline HTML tags
]
# Escaped punctuation hides in the private use area while the rules run, then comes back bare.
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_HIDDEN = re.compile("[\ue000-\ue07f]")


def _parse_markdown(text: str) -> str:
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            else:
                out.append(line)  # code is content: keep it verbatim
            continue
        if opening:
            fence = opening.group(1)
            continue
        if not (_RULE.match(line) or _REFERENCE.match(line) or _is_table_separator(line)):
            out.append(_markdown_line(line))
    return _tidy("\n".join(out))


def _markdown_line(line: str) -> str:
    line = _QUOTE.sub("", line)
    heading = _HEADING.match(line)
    if heading:
        line = _without_closing_hashes(heading.group(1))
    line = _BULLET.sub(r"\1", line)
    if line.lstrip().startswith("|"):
        line = " | ".join(cell.strip() for cell in line.strip().strip("|").split("|"))
    line = _ESCAPED.sub(lambda m: chr(0xE000 + ord(m.group(1))), line)
    for pattern, replacement in _INLINE:
        line = pattern.sub(replacement, line)
    return _HIDDEN.sub(lambda m: chr(ord(m.group()) - 0xE000), line)


def _without_closing_hashes(title: str) -> str:
    """`Title ##` -> `Title`; `C#` and a title of only hashes stay (string operations: no backtracking)."""
    stripped = title.rstrip()
    body = stripped.rstrip("#")
    if body != stripped and body and body[-1].isspace():
        return body.rstrip()
    return stripped


def _is_table_separator(line: str) -> bool:
    """`| --- | :-: |`: cells of at least two dashes, optionally aligned with colons."""
    cells = line.strip()
    cells = cells.removeprefix("|").removesuffix("|")
    return all(_SEPARATOR_CELL.fullmatch(cell) for cell in cells.split("|"))


# --- HTML ----------------------------------------------------------------------------------------

_SKIPPED = frozenset({"script", "style", "nav", "noscript", "template", "svg", "head"})
_BLOCKS = frozenset(
    {  # paragraphs: a blank line before and after
        "address",
        "article",
        "aside",
        "blockquote",
        "caption",
        "details",
        "dialog",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "main",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "ul",
    }
)
_LINES = frozenset({"br", "dd", "dt", "li", "tr"})  # one line each
_CELLS = frozenset({"td", "th"})


class _TextExtractor(HTMLParser):
    """Collects visible text; blocks become paragraphs, skipped elements vanish."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive unescaped
        self.parts: list[str] = []
        self.skipping: list[str] = []
        self.in_title = False
        self.pre_depth = 0
        self.breaks = 0  # newlines owed before the next text: adjacent blocks share one break

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self.skipping in ([], ["head"]):  # the title is text, the rest of <head> is not
            self.in_title = True
        elif tag in _SKIPPED:
            self.skipping.append(tag)
        elif not self.skipping:
            self._boundary(tag)
            if tag == "pre":
                self.pre_depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.skipping:
            self._boundary(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.in_title:
            self.in_title = False
            self.breaks = 2
        elif self.skipping:
            if tag in self.skipping:  # tolerate unclosed children of the skipped element
                del self.skipping[self.skipping.index(tag) :]
        elif tag != "br":
            if tag == "pre" and self.pre_depth:
                self.pre_depth -= 1
            self._boundary(tag)

    def handle_data(self, data: str) -> None:
        if self.skipping and not self.in_title:
            return
        if not self.pre_depth:
            data = re.sub(r"\s+", " ", data)
        if data.strip() and self.breaks:
            self.parts.append("\n" * self.breaks)
            self.breaks = 0
        self.parts.append(data)

    def _boundary(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.breaks = 2
        elif tag == "br":
            self.breaks = min(self.breaks + 1, 2)  # <br><br> is a blank line
        elif tag in _LINES:
            self.breaks = max(self.breaks, 1)
        elif tag in _CELLS:
            self.parts.append(" ")

    def text(self) -> str:
        lines = (re.sub(r"[ \t]+", " ", line).strip() for line in "".join(self.parts).split("\n"))
        return _tidy("\n".join(lines))


def _parse_html(text: str) -> str:
    parser = _TextExtractor()
    parser.feed(_defuse_markup(text))
    parser.close()
    return parser.text()


def _defuse_markup(text: str) -> str:
    """Escape every `<` that does not open a complete tag (`>` before the next `<`) or comment (`-->`).

    The standard parser rescans the rest of the document for each such `<` (`<a<a<a...`, `<?<?...`,
    `</</...`: quadratic); escaped, they are the text they would have become anyway. One pass, and each
    `find` result is reused until passed, so the whole is linear.
    """
    out: list[str] = []
    position, gt, comment_end = 0, -1, -1
    while (lt := text.find("<", position)) != -1:
        out.append(text[position:lt])
        if text.startswith("<!--", lt):
            if comment_end != len(text) and comment_end < lt + 4:
                comment_end = text.find("-->", lt + 4)
                comment_end = len(text) if comment_end == -1 else comment_end
            if comment_end < len(text):
                out.append(text[lt : comment_end + 3])
                position = comment_end + 3
                continue
        if gt != len(text) and gt <= lt:
            gt = text.find(">", lt)
            gt = len(text) if gt == -1 else gt
        following = text.find("<", lt + 1, gt)
        if gt < len(text) and following == -1:
            out.append(text[lt : gt + 1])
            position = gt + 1
        else:
            out.append("&lt;")
            position = lt + 1
    out.append(text[position:])
    return "".join(out)


# --- JSON lines ----------------------------------------------------------------------------------

TEXT_FIELDS = ("text", "content", "body")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _parse_jsonl(text: str) -> str:
    records: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UndecodableDocument(
                f"JSON lines: line {number} is not valid JSON ({exc.msg}).", details={"line": number}
            ) from None
        except (RecursionError, ValueError) as exc:  # nested too deeply, a number too long to convert
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:100]
            raise UndecodableDocument(
                f"JSON lines: line {number} cannot be read ({reason}).", details={"line": number}
            ) from None
        record = _record_text(value).strip()
        if _UNSTORABLE.search(record):  # escaped in the JSON (`\u0000`, `\ud800`): no store takes them
            raise UndecodableDocument(
                f"JSON lines: line {number} contains a NUL character or a lone surrogate.", details={"line": number}
            )
        if record:
            records.append(record)
    return _tidy("\n\n".join(records))


def _record_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for name in TEXT_FIELDS:
            if isinstance(value.get(name), str):
                return str(value[name])
        return "\n".join(v for v in value.values() if isinstance(v, str))
    if isinstance(value, list):
        return "\n".join(v for v in value if isinstance(v, str))
    return ""


# --- PDF -----------------------------------------------------------------------------------------


def _parse_pdf(data: bytes) -> ParsedDocument:
    from pypdf import PdfReader  # only the functions that parse documents pay for the import

    # pypdf raises many exception types on hostile or damaged input; every one
    # of them means "this PDF cannot be read", which the caller must see as a 422.
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UndecodableDocument("The PDF is encrypted with a password; upload an unencrypted copy.")
        texts = [(page.extract_text() or "").strip() for page in reader.pages]
    except UndecodableDocument:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on broken files
        raise UndecodableDocument(f"The PDF cannot be read: {type(exc).__name__}: {exc}"[:300]) from None
    text = _tidy(_UNSTORABLE.sub("", "\n\n".join(t for t in texts if t)))  # NULs from broken font maps: noise
    return ParsedDocument(text=text, format="pdf", pages=len(texts))


_PARSERS: dict[str, Callable[[str], str]] = {
    "text": _parse_text,
    "markdown": _parse_markdown,
    "html": _parse_html,
    "jsonl": _parse_jsonl,
}
