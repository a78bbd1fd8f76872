"""Sentence-aware chunking with overlap, for Latin and CJK text alike.

Sentences end at paragraph and line breaks, at Latin `. ! ?` followed by
whitespace (not after abbreviations such as "e.g." or "Dr.", and never inside
a decimal like "3.5"), and at CJK `。！？；`, which have no space after them:
nothing here depends on spaces, so Chinese chunks as well as English.

Sentences are packed into chunks of at most `size` characters. A sentence
longer than that is cut at the last comma (`,，、;；：`) of the window, else at
the last space, else at `size`. A chunk never ends on a heading (a short line
without final punctuation before a blank line). Each chunk after the first
starts with the previous chunk's trailing sentences totalling at most
`overlap` characters, as many as still let the next sentence fit (or, after a
cut inside a sentence, with the last `overlap` characters of the piece).

Offsets refer to the normalized text (`normalize`), so
`normalize(text)[chunk.start:chunk.end] == chunk.text`.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass

__all__ = ["Chunk", "chunk_text", "content_hash", "normalize", "sentence_spans"]

MIN_SIZE = 100

# Closing quotes and brackets that belong to the sentence they end.
_CLOSERS = "\"'”’」』）〕】》)]"
_CLOSING = f"[{re.escape(_CLOSERS)}]*"
_BOUNDARY = re.compile(
    rf"[。！？；｡．…]+{_CLOSING}"  # CJK: no space follows
    rf"|[.!?]+{_CLOSING}(?=\s|$)"  # Latin: only before whitespace, so "3.5" never splits
    r"|\n"
)
# Lowercase tokens before a "." that do not end a sentence.
# Company suffixes (Inc., Ltd.) are left out: they often end a sentence.
ABBREVIATIONS = frozenset(
    {
        "al",
        "approx",
        "ca",
        "cf",
        "dept",
        "dr",
        "e.g",
        "eg",
        "fig",
        "i.e",
        "ie",
        "jr",
        "mr",
        "mrs",
        "ms",
        "mt",
        "prof",
        "rev",
        "sr",
        "st",
        "vol",
        "vs",
    }
)
_DOTTED_ABBREVIATION = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]$")  # e.g, i.e, U.S, a.m
_FINAL_PUNCTUATION = frozenset(".!?;:。！？；：…" + _CLOSERS)
HEADING_MAX = 100
TOKEN_WINDOW = 64
_SOFT_BREAK = re.compile(r"[,，、;；:：]")
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace but newlines, incl. no-break and ideographic spaces


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    text: str
    start: int
    end: int


def content_hash(text: str) -> str:
    """sha256 hex of the chunk text (UTF-8): the chunk's identity across re-ingestion."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize(text: str) -> str:
    """Unix newlines, runs of spaces folded to one, no spaces at line edges, at most one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = re.sub(r" ?\n ?", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of normalized `text`, in order, without surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if not _ends_sentence(text, match):
            continue
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    return [span for span in (_strip(text, s, e) for s, e in spans) if span[0] < span[1]]


def chunk_text(text: str, *, size: int = 800, overlap: int = 120) -> list[Chunk]:
    """Split `text` into chunks of at most `size` characters; deterministic."""
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} characters, got {size}")
    if not 0 <= overlap < size / 2:
        raise ValueError(f"overlap must be at least 0 and less than size/2 ({size / 2:g}), got {overlap}")
    text = normalize(text)
    spans = sentence_spans(text)
    starts = [s for s, _ in spans]
    ends = [e for s, e in spans if not _is_heading(text, s, e)]  # a chunk never ends on a heading
    chunks: list[Chunk] = []
    start, floor = 0, 0
    while start < len(text):
        end = _chunk_end(text, ends, start, floor, size)
        end = max(_strip(text, start, end)[1], floor + 1)  # a cut never leaves trailing spaces
        chunks.append(Chunk(len(chunks), text[start:end], start, end))
        if end >= len(text):
            break
        start, floor = _next_start(text, starts, ends, start, end, size, overlap), end
    return chunks


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    mark = match.group()
    if mark == "\n" or not mark.startswith("."):
        return True
    if mark.startswith("..") or mark.rstrip(_CLOSERS) != ".":
        return True  # an ellipsis or "?!" ends a sentence; a lone "." needs a closer look
    # The token before the ".": looked for within TOKEN_WINDOW characters only (an unbounded search back
    # made text without spaces quadratic); a longer token is no abbreviation, initial or list number anyway.
    lowest = max(0, match.start() - TOKEN_WINDOW)
    space = max(text.rfind(" ", lowest, match.start()), text.rfind("\n", lowest, match.start()))
    token_start = space + 1 if space != -1 else lowest
    token = text[token_start : match.start()].lstrip("([{\"'“‘")
    if token.lower() in ABBREVIATIONS or _DOTTED_ABBREVIATION.match(token):
        return False
    if len(token) == 1 and token.isalpha():
        return False  # an initial: "J. Smith"
    if token.isdigit() and (token_start == 0 or text[token_start - 1] == "\n"):
        return False  # an ordered-list marker: "2. Install the unit"
    following = text[match.end() : match.end() + 2].lstrip()
    return not (following[:1].isascii() and following[:1].islower())  # "approx. five" continues


def _is_heading(text: str, start: int, end: int) -> bool:
    """A short line without final punctuation before a blank line: it belongs to what follows."""
    return end - start <= HEADING_MAX and text.startswith("\n\n", end) and text[end - 1] not in _FINAL_PUNCTUATION


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _chunk_end(text: str, ends: list[int], start: int, floor: int, size: int) -> int:
    """Where the chunk starting at `start` ends: past `floor` (the previous chunk's end), ≤ start + size."""
    limit = min(start + size, len(text))
    last = bisect.bisect_right(ends, limit) - 1
    if last >= 0 and ends[last] > floor:
        return ends[last]  # whole sentences fit
    return _cut(text, max(start + size // 2, floor + 1), limit)


def _cut(text: str, lowest: int, limit: int) -> int:
    """Inside a sentence longer than the window: after a comma, else at a space, else at the limit."""
    window = text[lowest:limit]
    commas = [m.end() for m in _SOFT_BREAK.finditer(window)]
    if commas:
        return lowest + commas[-1]
    space = window.rfind(" ")
    if space > 0:
        return lowest + space
    return limit


def _next_start(text: str, starts: list[int], ends: list[int], start: int, end: int, size: int, overlap: int) -> int:
    """Start of the chunk after [start, end): the overlap it repeats, or the next content."""
    following = _skip_spaces(text, end)
    if overlap == 0:
        return following
    sentence_end = bisect.bisect_left(ends, end)
    if sentence_end == len(ends) or ends[sentence_end] != end:  # the chunk was cut inside a sentence
        return _tail_start(text, max(start + 1, end - overlap), end)
    next_end = ends[sentence_end + 1] if sentence_end + 1 < len(ends) else len(text)
    # Trailing sentences, longest overlap first; keep the most that still lets the next sentence fit.
    trailing = starts[bisect.bisect_left(starts, end - overlap) : bisect.bisect_left(starts, end)]
    candidates = [s for s in trailing if s > start]
    for candidate in candidates:
        if next_end - candidate <= size:
            return candidate
    if next_end - following > size and candidates:
        return candidates[0]  # the next sentence is cut anyway: keep the full overlap
    return following


def _tail_start(text: str, position: int, end: int) -> int:
    """The overlap after a cut: begin at a word start when the text has spaces, never on whitespace."""
    if 0 < position < end and not text[position - 1].isspace() and text[position - 1].isascii():
        space = text.find(" ", position, end)
        if space != -1 and space + 1 < end:
            position = space + 1
    return _skip_spaces(text, position)


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position
