"""Lexical (BM25-style) terms of a text, as a sparse vector the vector store scores with IDF.

Tokens: the words of the text's normalized form (the same normalization as entity
name keys: width, case, Latin accents, punctuation) and, for runs of CJK
characters, which have no spaces, overlapping character bigrams (plus the
character itself for a run of one). Each token is hashed to a 31-bit index.

A passage's weight for a term is BM25's saturated term frequency,
tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / AVERAGE_LENGTH)); the store
multiplies by the term's IDF over the collection (Qdrant's `idf` modifier), so
score = BM25. A query's terms weigh 1 each. The average length is a constant,
as in fastembed's BM25, because a collection's own average is not known when a
chunk is written.
"""

from __future__ import annotations

import zlib
from collections import Counter

from ..stores.graph.names import CJK, name_key

K1 = 1.2
B = 0.75
AVERAGE_LENGTH = 120.0  # tokens in a typical chunk (CHUNK_SIZE 800 characters)
VERSION = 1  # stored with each chunk: a change of tokenizer re-indexes unchanged chunks once


def tokens(text: str) -> list[str]:
    words: list[str] = []
    for word in name_key(text).split():
        runs = CJK.findall(word)
        if not runs:
            words.append(word)
            continue
        rest = CJK.sub(" ", word).split()
        words.extend(rest)
        for run in runs:
            words.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
    return words


def term_index(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) & 0x7FFFFFFF


def passage_terms(text: str) -> dict[int, float]:
    counts = Counter(term_index(token) for token in tokens(text))
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / AVERAGE_LENGTH)
    return {index: tf * (K1 + 1) / (tf + norm) for index, tf in counts.items()}


def query_terms(text: str) -> dict[int, float]:
    return dict.fromkeys((term_index(token) for token in tokens(text)), 1.0)
