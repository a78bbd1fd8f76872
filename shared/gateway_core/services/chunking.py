"""Sentence-aware chunking with overlap that never depends on spaces.

Sentences end at Latin `. ! ?` followed by whitespace (not after common
abbreviations or inside decimals) and at CJK `。！？；`, which have no space
after them, so Chinese text chunks as well as English. Sentences are packed up
to `size` characters; a longer sentence is split at a comma or, failing that,
at `size`. Each chunk after the first starts with the previous chunk's last
sentences, up to `overlap` characters.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=[.!?])(?=\s)|\n{2,}")
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|Mr|Mrs|Ms|Dr|Prof|Inc|Ltd|Co|St|No|approx)|\b[A-Z])\.$")
_SOFT_BREAK = re.compile(r"[，、,;:：]\s*")


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int
    end: int


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences of normalized text, whitespace excluded."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start()
        if end <= start or _ABBREVIATION.search(text[start:end]):
            continue
        spans.append((start, end))
        start = match.end()
    spans.append((start, len(text)))
    return [_strip(text, s, e) for s, e in spans if text[s:e].strip()]


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _pieces(text: str, span: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """A sentence longer than `size`, cut at soft breaks where possible."""
    start, end = span
    pieces = []
    while end - start > size:
        window = text[start:start + size]
        breaks = [m.end() for m in _SOFT_BREAK.finditer(window) if m.end() > size // 2]
        cut = start + (breaks[-1] if breaks else size)
        pieces.append(_strip(text, start, cut))
        start = cut
    pieces.append(_strip(text, start, end))
    return [p for p in pieces if p[1] > p[0]]


def chunk_text(text: str, *, size: int = 800, overlap: int = 120) -> list[Chunk]:
    if size < 100:
        raise ValueError("size must be at least 100 characters")
    if not 0 <= overlap < size / 2:
        raise ValueError("overlap must be between 0 and half the size")
    text = normalize(text)
    units = [piece for span in sentences(text) for piece in _pieces(text, span, size)]
    chunks: list[Chunk] = []
    current: list[tuple[int, int]] = []
    fresh = 0  # units in `current` that no earlier chunk holds

    def emit() -> None:
        start, end = current[0][0], current[-1][1]
        chunks.append(Chunk(len(chunks), text[start:end], start, end))

    for unit in units:
        if current and unit[1] - current[0][0] > size:
            emit()
            carried: list[tuple[int, int]] = []
            for previous in reversed(current):
                if unit[1] - previous[0] > size or current[-1][1] - previous[0] > overlap:
                    break
                carried.insert(0, previous)
            current, fresh = carried, 0
        current.append(unit)
        fresh += 1
    if current and fresh:
        emit()
    return chunks
