"""Link a question to the entities it names, through the graph's name-key index (never a scan).

The question is cut into candidate keys (word n-grams on word boundaries, CJK
character n-grams: see `stores.graph.names`), each looked up in the index. Of
overlapping matches only the longest is kept ("new york city", not also "york").
A seed's score is its specificity: an entity mentioned by few passages says
more about where the answer is than one mentioned everywhere (HippoRAG's node
specificity, softened with a logarithm so hubs still count a little), lowered
for a common noun: in cased scripts, a piece of the question written all in
lower case ("the state where", "the director of") names a kind of thing, not
one thing. (HippoRAG asks an LLM for the question's named entities; case is
the signal available without one.) Scripts without case (CJK) are not lowered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..stores.graph.base import GraphStore, LinkedName
from ..stores.graph.names import Span, question_spans, surface_words

MIN_KEY_CHARS = 2  # a one-letter "name" is never worth a seed
COMMON_NOUN_WEIGHT = 0.1  # a lower-case match counts this much of a written-as-a-name one


@dataclass(frozen=True)
class Seed:
    id: str
    name: str
    key: str  # the part of the question it was linked from
    score: float


def specificity(mentions: int) -> float:
    """1 for an entity mentioned once (or never), decreasing slowly with the passages that mention it."""
    return 1.0 / (1.0 + math.log(max(mentions, 1)))


def longest_matches(spans: Sequence[Span], matched: set[str]) -> list[Span]:
    """Matched spans, longest first, dropping any that overlaps one already kept (per script)."""
    kept: list[Span] = []
    for span in sorted(
        (s for s in spans if s.key in matched), key=lambda s: (-(s.end - s.start), -len(s.key), s.start)
    ):
        if not any(k.script == span.script and k.start < span.end and span.start < k.end for k in kept):
            kept.append(span)
    return kept


def written_as_name(span: Span, words: Sequence[str]) -> bool:
    """Whether the question writes this piece like a name: a capital or a digit, or a caseless script."""
    if span.script != "word":
        return True
    written = "".join(words[span.start : span.end])
    return written.lower() == written.upper() or any(ch.isupper() or ch.isdigit() for ch in written)


def seeds_from(spans: Sequence[Span], found: Sequence[LinkedName], words: Sequence[str] = ()) -> list[Seed]:
    by_key: dict[str, list[LinkedName]] = {}
    for name in found:
        by_key.setdefault(name.key, []).append(name)
    seeds: dict[str, Seed] = {}
    for span in longest_matches(spans, set(by_key)):
        weight = 1.0 if not words or written_as_name(span, words) else COMMON_NOUN_WEIGHT
        for name in by_key[span.key]:
            seed = Seed(name.id, name.name, span.key, weight * specificity(name.mentions))
            if name.id not in seeds or seeds[name.id].score < seed.score:
                seeds[name.id] = seed
    return sorted(seeds.values(), key=lambda s: (-s.score, s.id))


async def link(
    graph: GraphStore, tenant: str, question: str, *, limit: int = 500, timeout: float | None = None
) -> list[Seed]:
    """The entities the question names, each with a score in (0, 1]."""
    spans = [span for span in question_spans(question) if len(span.key) >= MIN_KEY_CHARS]
    if not spans:
        return []
    found = await graph.link(tenant, [span.key for span in spans], limit=limit, timeout=timeout)
    return seeds_from(spans, found, surface_words(question))
