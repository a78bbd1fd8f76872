"""Name keys: how an entity's names and a question's words are compared, so linking is an index lookup.

A key is a name normalized for comparison: Unicode compatibility form (full-width
letters become plain ones), case-folded, accents dropped (Aschenbrödel, Aschenbrodel),
punctuation and symbols turned into spaces, whitespace collapsed. Nodes store the keys of their name and aliases (`name_keys`,
indexed); a question is cut into the keys it could contain: word n-grams (whole
words only, so "hat" never matches inside "what") and, for runs of CJK characters
(written without spaces), character n-grams.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_WORDS = 8  # longest name, in words, a question is searched for
MAX_CJK_CHARS = 12  # longest name, in characters, inside a CJK run
MIN_CJK_CHARS = 2  # one Chinese character alone is too ambiguous to be a name
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")


def name_key(text: str) -> str:
    """The comparison form of a name: 'Ｎorthwind  Thermal!' and 'northwind thermal' agree."""
    return " ".join(surface_words(text)).casefold()


# In ASCII, the punctuation, symbol, separator and control characters are exactly the non-alphanumeric ones.
_ASCII_NON_WORD = re.compile(r"[^A-Za-z0-9]+")


def surface_words(text: str) -> list[str]:
    """The words of a text as written (case kept), in the same order and number as its key's words."""
    if text.isascii():  # most questions and names: no accents or compatibility forms: one regex
        return _ASCII_NON_WORD.sub(" ", text).split()
    return unicode_words(text)


def unicode_words(text: str) -> list[str]:
    """`surface_words` by the general rules: compatibility form, Latin accents dropped, character categories."""
    decomposed = unicodedata.normalize("NFKD", text)
    # Only the Latin/Greek/Cyrillic accents (U+0300-036F): kana voicing marks change the word.
    unaccented = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not "\u0300" <= ch <= "\u036f"))
    return "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in unaccented).split()


def name_keys(names: Iterable[object]) -> list[str]:
    """Distinct keys of a node's name and aliases (non-strings and empty names are skipped)."""
    keys = (name_key(name) for name in names if isinstance(name, str))
    return list(dict.fromkeys(key for key in keys if key))


@dataclass(frozen=True)
class Span:
    """A piece of the question that may be a name: its key and where it sits (in word/char units)."""

    key: str
    start: int
    end: int
    script: str  # "word" or "cjk": positions count words or characters


def question_spans(text: str, *, max_words: int = MAX_WORDS) -> list[Span]:
    """Every word n-gram, and every character n-gram of each CJK run, as a candidate name key."""
    key = name_key(text)
    return [*_word_spans(key, max_words), *_cjk_spans(key)]


def _word_spans(key: str, max_words: int) -> Iterator[Span]:
    words = key.split()
    for start in range(len(words)):
        for end in range(start + 1, min(len(words), start + max_words) + 1):
            yield Span(" ".join(words[start:end]), start, end, "word")


def _cjk_spans(key: str) -> Iterator[Span]:
    for run in CJK.finditer(key):
        chars = run.group()
        for start in range(len(chars)):
            for end in range(start + MIN_CJK_CHARS, min(len(chars), start + MAX_CJK_CHARS) + 1):
                yield Span(chars[start:end], run.start() + start, run.start() + end, "cjk")
