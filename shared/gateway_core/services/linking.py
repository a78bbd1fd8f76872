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

Dense linking, for paraphrases and translations no alias names (`北風熱能` for
`Northwind Thermal`), only when no key matched at all: the pieces of the
question that look like names (runs of capitalized words; CJK runs cut at
common function characters) are embedded as names and looked up in the
tenant's entity name index (`<QDRANT_COLLECTION>_entities`, filled at write time by `resolution`).
The nearest entity becomes a seed when the cosine is at least
`DENSE_LINK_MIN_SIMILARITY` (0.87); its score is that similarity's share above the
threshold times its specificity, times `DENSE_LINK_WEIGHT`, so a dense seed
counts less than a name the question writes out. Off by default (`DENSE_LINKING`):
with multilingual-e5-small no threshold separates right translations from wrong names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .. import dependencies
from ..clients.embeddings import get_embedder
from ..observability import logger
from ..settings import get_settings
from ..stores.graph.base import GraphStore, LinkedName
from ..stores.graph.names import CJK, Span, name_key, question_spans, surface_words
from .resolution import collections

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
    seeds = seeds_from(spans, found, surface_words(question))
    if seeds or not get_settings().dense_linking:
        return seeds
    try:
        return await dense_seeds(graph, tenant, name_pieces(question), set(), timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - a question that links nothing is answered by dense retrieval
        logger.warning("dense linking failed", extra={"reason": str(exc)[:300]})
        return []


DENSE_LINK_WEIGHT = 0.5
MAX_PIECES = 6
# Characters that join words in Chinese questions rather than belong to names (particles, question words).
CJK_FUNCTION_CHARS = re.compile(r"[的是在和與与了嗎吗誰谁哪裡里什麼么為为何有於于及或被把從从到由對对之]+")
NAME_WORD = re.compile(r"[\w'’]*[A-Z0-9][\w'’]*")


def name_pieces(question: str) -> list[str]:
    """Pieces of the question that may be names: runs of capitalized words, CJK runs cut at function characters."""
    pieces: list[str] = []
    run: list[str] = []
    words = re.findall(r"[^\W_]+(?:['’][^\W_]+)?", CJK.sub(" ", question))
    for position, word in enumerate([*words, ""]):
        if word and NAME_WORD.fullmatch(word):
            run.append(word)
            continue
        # A lone first word is capitalized as the sentence's start ("What", "Who"); digits alone are no name.
        lone_first = len(run) == 1 and position == 1
        if run and not lone_first and any(ch.isalpha() for ch in "".join(run)):
            pieces.append(" ".join(run))
        run = []
    for chars in CJK.findall(question):
        pieces += [piece for piece in CJK_FUNCTION_CHARS.split(chars) if len(piece) >= MIN_KEY_CHARS]
    return list(dict.fromkeys(pieces))[:MAX_PIECES]


async def dense_seeds(
    graph: GraphStore, tenant: str, pieces: Sequence[str], known: set[str], *, timeout: float | None = None
) -> list[Seed]:
    """The nearest stored entity name of each piece, when close enough (see the module's docstring)."""
    if not pieces:
        return []
    vectors = await get_embedder().embed_passages(list(pieces))
    store, index = dependencies.vector_store(), collections()[0]
    threshold = get_settings().dense_link_min_similarity  # e5-small: 北風熱能 / Northwind Thermal 0.879
    best: dict[str, tuple[float, str, str]] = {}  # entity id -> (similarity, name, piece)
    for piece, vector in zip(pieces, vectors, strict=True):
        hits = await store.search(index, vector, tenant=tenant, top_k=1, timeout=timeout)
        for hit in hits:
            entity = str(hit.payload.get("entity_id") or "")
            close = hit.score >= threshold and entity and entity not in known
            if close and (entity not in best or best[entity][0] < hit.score):
                best[entity] = (hit.score, str(hit.payload.get("name") or entity), piece)
    if not best:
        return []
    found = await graph.link(tenant, [name_key(name) for _, name, _ in best.values()], timeout=timeout)
    mentions = {name.id: name.mentions for name in found}
    share = 1.0 - threshold
    return [
        Seed(entity, name, name_key(piece), DENSE_LINK_WEIGHT * (score - threshold + 0.01) / share
             * specificity(mentions.get(entity, 1)))
        for entity, (score, name, piece) in best.items()
        if entity in mentions
    ]  # fmt: skip
