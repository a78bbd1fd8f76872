"""Retrieval: dense search and the graph, in parallel, ranked together (the README's "Retrieval quality").

Two branches start at once: (a) embed the query, then dense search for the
candidates; (b) link the question to the entities it names (name-key index) and
read their bounded neighbourhood (facts within `max_hops`, capped per entity and
in total). Branch (b) never waits for the embedding, so the critical path is
max(embed + vector, link + expand). With `expand_hits`, the facts around the
hits' entities are read in the same statement as the seeds' neighbourhood, once
both branches are in (one round trip instead of two): max(embed + vector, link)
+ expand, which is what reading the hits' facts after the hits cost anyway.

Ranking (preset `graph`, the default): Personalized PageRank over the
entity-passage graph of that neighbourhood plus the dense candidates (see
`graph_rank`). Fusion rule, one weighted sum inside the walk: the restart mass
is the seeds' (by link score) plus a share on every candidate passage by its
min-max normalized dense score; a hit's `score` is the walk's mass on it and
`vector_score` its dense similarity. (Measured on the MuSiQue sample:
reciprocal rank fusion of the dense order and the walk order gained 4 points
of recall@5 where the walk alone gained 10.) Each hit lists the signals that
put it there (`dense`: among the dense top-k; `graph`: connected to a linked
entity) and, for `graph`, the path seed -> facts -> passage. When no entity
links (or the graph is down), the hits are exactly the dense top-k. Preset
`dense` skips the graph; preset `hybrid` is dense and lexical (BM25 over sparse
vectors, see `lexical`) fused by reciprocal rank, without the graph.

A failing or slow branch degrades the answer and says so; only when both fail is the
request a 503.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .. import dependencies
from ..clients import reranker
from ..clients.embeddings import get_embedder
from ..deadline import current as current_deadline
from ..errors import ApiError, Unavailable
from ..models.graph import Subgraph, SubgraphEdge
from ..models.search import SearchFilter
from ..observability import Stopwatch, logger
from ..settings import get_settings
from ..stores.graph.base import Expansion
from ..stores.vectors import VectorHit
from . import graph_rank
from .linking import Seed, link
from .search import search, search_lexical

Preset = Literal["dense", "hybrid", "graph"]
PRESETS: tuple[Preset, ...] = ("dense", "hybrid", "graph")
RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al. 2009)
# Presets that add lexical (BM25) candidates. Not `graph`: on the MuSiQue sample, lexical candidates
# cost the graph path a point of recall@5, and dense + lexical fell 1.3 points below dense alone.
LEXICAL_PRESETS: tuple[Preset, ...] = ("hybrid",)
GRAPH_HOPS = 2  # the seeds' facts and their neighbours' facts
# What a branch may not use of the request's budget: time to rank and answer with the other branches.
BRANCH_RESERVE_S = 0.5
T = TypeVar("T")


@dataclass
class RetrieveOptions:
    top_k: int = 5
    max_hops: int | None = None  # None: the preset's own (2 for `graph`)
    include_subgraph: bool = True
    filters: SearchFilter | None = None
    expand_hits: bool = False
    rerank: bool = False
    collection: str | None = None
    preset: Preset = "graph"
    max_facts: int = 30


@dataclass
class RetrieveResult:
    hits: list[dict[str, Any]]
    subgraph: Subgraph
    timings_ms: dict[str, float]
    degraded: list[str] = field(default_factory=list)
    seeds: list[Seed] = field(default_factory=list)


@dataclass
class GraphView:
    """What the graph branch found: the seeds and their bounded neighbourhood."""

    seeds: list[Seed]
    subgraph: Subgraph


def reason(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


async def retrieve(tenant: str, query: str, options: RetrieveOptions) -> RetrieveResult:
    """Dense (and lexical) search and the graph in parallel, then one ranking of the passages."""
    run = _Retrieval(tenant, query, options)
    dense, view = await run.branches()
    rendered, facts = await run.ranked(dense, view)
    return run.result(await run.reranked(rendered), facts, view)


class _Retrieval:
    """One `/retrieve`: its branches, what they found, and what went wrong (`degraded`)."""

    def __init__(self, tenant: str, query: str, options: RetrieveOptions) -> None:
        self.tenant, self.query, self.options = tenant, query, options
        self.graph = dependencies.graph_store() if options.preset == "graph" else None
        self.watch = Stopwatch()
        self.degraded: list[str] = []
        self.extra_subgraphs: list[Subgraph] = []  # the hits' own entities (expand_hits)
        self.vector: list[float] = []
        self.lexical: list[VectorHit] = []
        self.hops = options.max_hops or GRAPH_HOPS
        dense_candidates = get_settings().retrieve_dense_candidates
        self.candidates = max(options.top_k, dense_candidates) if self.graph else options.top_k

    async def branches(self) -> tuple[list[VectorHit], GraphView]:
        """Run the branches at once; a slow one is cut at its budget and reported, the others still answer."""
        branches: list[Awaitable[Any]] = [within(branch_budget(), self.vector_branch())]
        if self.graph is not None:
            branches.append(self.watch.time("graph", within(branch_budget(), self.graph_branch())))
        elif self.options.preset == "graph":
            self.degraded.append("graph: not configured")
        if self.options.preset in LEXICAL_PRESETS:
            branches.append(within(branch_budget(), self.lexical_branch()))
        outcomes = await asyncio.gather(*branches, return_exceptions=True)
        dense = self._outcome("vector", outcomes[0], [])
        view = self._outcome("graph", outcomes[1], GraphView([], Subgraph())) if self.graph is not None else None
        if isinstance(outcomes[0], BaseException) and view is None and not self.lexical:
            raise Unavailable(
                "Neither the vector store nor the graph could answer.", details={"degraded": self.degraded}
            )
        if self.hits_expanded():
            if view is None:  # the hits' facts were to be read with the seeds': missing for the same reason
                self.degraded.append(f"hits_graph: {reason(outcomes[1])}")
            else:
                view = await self.expanded_with_hits(view, dense[: self.options.top_k])
        return dense, view or GraphView([], Subgraph())

    def hits_expanded(self) -> bool:
        """expand_hits, with a graph to read and a subgraph to put the facts in."""
        options = self.options
        return self.graph is not None and options.expand_hits and options.include_subgraph and options.max_facts > 0

    def _outcome(self, branch: str, outcome: Any, fallback: Any) -> Any:
        """A branch's result, or `fallback` with the failure recorded (None for a failed graph branch)."""
        if not isinstance(outcome, BaseException):
            return outcome
        _reraise_cancellation(outcome)
        self.degraded.append(f"{branch}: {reason(outcome)}")
        logger.warning(f"{branch} branch failed", extra={"reason": reason(outcome)})
        return None if branch == "graph" else fallback

    async def vector_branch(self) -> list[VectorHit]:
        """Stages `embed` and `vector`."""
        options = self.options
        self.vector = await self.watch.time("embed", get_embedder().embed_query(self.query))
        return await self.watch.time(
            "vector",
            search(
                self.tenant,
                self.query,
                top_k=self.candidates,
                filters=options.filters,
                collection=options.collection,
                vector=self.vector,
            ),
        )

    async def lexical_branch(self) -> None:
        options = self.options
        try:
            self.lexical = await self.watch.time(
                "lexical",
                search_lexical(
                    self.tenant,
                    self.query,
                    top_k=self.candidates,
                    filters=options.filters,
                    collection=options.collection,
                ),
            )
        except Exception as exc:  # noqa: BLE001 - dense and graph still answer
            self.degraded.append(f"lexical: {reason(exc)}")

    async def graph_branch(self) -> GraphView:
        """Stages `link` and `expand`; `graph` times the whole branch. With expand_hits, `expand` waits for
        the hits instead (`expanded_with_hits`)."""
        assert self.graph is not None
        seeds = await self.watch.time(
            "link", link(self.graph, self.tenant, self.query, timeout=current_deadline().timeout())
        )
        if not seeds or self.hits_expanded():
            return GraphView(seeds, Subgraph())
        settings = get_settings()
        expand = self.graph.expand(
            self.tenant,
            ids=[seed.id for seed in seeds],
            max_hops=self.hops,
            fan_out=settings.retrieve_graph_fan_out,
            limit=settings.retrieve_graph_limit,
            timeout=current_deadline().timeout(),
        )
        return GraphView(seeds, await self.watch.time("expand", expand))

    async def expanded_with_hits(self, view: GraphView, hits: list[VectorHit]) -> GraphView:
        """Stage `expand` (and `hits_graph`, the same statement): the seeds' neighbourhood and the facts nearest
        the entities the hits mention, at most `max_facts` (two hops from a hit's entities reach hundreds).
        One statement once both branches are in, instead of one each: a round trip costs more of the
        gateway's CPU than reading the facts, and the hits' part could not start before the hits anyway."""
        assert self.graph is not None
        settings = get_settings()
        entity_ids = sorted({eid for hit in hits for eid in hit.payload.get("entity_ids") or []})
        if not (view.seeds or entity_ids):
            return view
        expansions = [
            Expansion([seed.id for seed in view.seeds], settings.retrieve_graph_limit),
            Expansion(entity_ids, self.options.max_facts),
        ]
        try:  # the budget is read inside: a spent one degrades the graph's part as any failure does
            budget = branch_budget()
            expand = self.graph.expand_many(
                self.tenant,
                expansions,
                max_hops=self.hops,
                fan_out=settings.retrieve_graph_fan_out,
                timeout=current_deadline().timeout(),
            )
            around_seeds, around_hits = await self.watch.time("expand", within(budget, expand))
        except Exception as exc:  # noqa: BLE001 - dense retrieval still answers
            failed = [name for name, wanted in (("graph", view.seeds), ("hits_graph", entity_ids)) if wanted]
            self.degraded += [f"{name}: {reason(exc)}" for name in failed]
            logger.warning("graph expansion failed", extra={"reason": reason(exc)})
            return GraphView([], Subgraph())
        if entity_ids:
            self.extra_subgraphs.append(around_hits)
            self.watch.timings_ms["hits_graph"] = self.watch.timings_ms["expand"]
        return GraphView(view.seeds, around_seeds)

    async def ranked(self, dense: list[VectorHit], view: GraphView) -> tuple[list[dict[str, Any]], Subgraph]:
        """The graph ranking when an entity linked; otherwise exactly dense (+ lexical) retrieval."""
        if view.seeds and self.vector:
            with self.watch.stage("rank"):
                return await ranked_with_graph(
                    self.tenant, view, dense, self.lexical, self.vector, self.options, self.degraded
                )
        return fused_dense_and_lexical(dense, self.lexical, self.options.top_k), view.subgraph

    async def reranked(self, rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.options.rerank or len(rendered) < 2:
            return rendered
        try:
            return await self.watch.time("rerank", _reranked(self.query, rendered))
        except Exception as exc:  # noqa: BLE001 - keep the fused order
            self.degraded.append(f"rerank: {reason(exc)}")
            return rendered

    def result(self, rendered: list[dict[str, Any]], facts: Subgraph, view: GraphView) -> RetrieveResult:
        subgraph = merge([facts, *self.extra_subgraphs]) if self.options.include_subgraph else Subgraph()
        self.watch.timings_ms["total"] = self.watch.total_ms()
        return RetrieveResult(
            hits=[with_citation_source(hit) for hit in rendered],
            subgraph=subgraph,
            timings_ms=self.watch.timings_ms,
            degraded=self.degraded,
            seeds=view.seeds,
        )


async def within(seconds: float, work: Awaitable[T]) -> T:
    """`asyncio.wait_for` without the task of its own it wraps the work in (Python 3.11): gather's is enough."""
    async with asyncio.timeout(seconds):
        return await work


def branch_budget() -> float:
    """What is left of the request's budget, minus a reserve to answer without the branch."""
    left = current_deadline().timeout()
    return max(0.0, left - min(BRANCH_RESERVE_S, left / 4))


def fused_dense_and_lexical(dense: list[VectorHit], lexical: list[VectorHit], top_k: int) -> list[dict[str, Any]]:
    """Reciprocal rank fusion of the two orders; without lexical hits, exactly the dense top-k."""
    if not lexical:
        return [render_hit(hit, signals=["dense"]) for hit in dense[:top_k]]
    hits = {chunk_id(hit): hit for hit in [*lexical, *dense]}  # dense wins: its score is a similarity
    dense_top = {chunk_id(hit) for hit in dense[:top_k]}
    lexical_top = {chunk_id(hit) for hit in lexical[:top_k]}
    fused = rrf([[chunk_id(hit) for hit in dense], [chunk_id(hit) for hit in lexical]])
    rendered = []
    for cid in list(fused)[:top_k]:
        signals = [s for s, ok in (("dense", cid in dense_top), ("lexical", cid in lexical_top)) if ok]
        rendered.append({**render_hit(hits[cid], signals=signals), "score": round(fused[cid], 6)})
    return rendered


def rrf(rankings: list[list[str]]) -> dict[str, float]:
    """Reciprocal rank fusion, best first: each ranking adds 1 / (RRF_K + rank) to what it ranks."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for position, key in enumerate(ranking):
            fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + position + 1)
    return dict(sorted(fused.items(), key=lambda item: (-item[1], item[0])))


async def ranked_with_graph(
    tenant: str,
    view: GraphView,
    dense: list[VectorHit],
    lexical: list[VectorHit],
    vector: list[float],
    options: RetrieveOptions,
    degraded: list[str],
) -> tuple[list[dict[str, Any]], Subgraph]:
    """The top-k of the walk over the graph and the dense and lexical candidates, and the facts it ranks."""
    entity_graph = graph_rank.build_graph(view.subgraph)
    by_id = {chunk_id(hit): hit for hit in dense}
    neighbourhood = graph_rank.passages(entity_graph) + [chunk_id(hit) for hit in lexical]
    missing = [cid for cid in dict.fromkeys(neighbourhood) if cid not in by_id]
    if missing:
        try:  # the neighbourhood's passages, within the caller's filters, with their dense score
            by_id.update((chunk_id(hit), hit) for hit in await fetch_chunks(tenant, missing, vector, options))
        except Exception as exc:  # noqa: BLE001 - the dense candidates still rank
            degraded.append(f"graph passages: {reason(exc)}")
    entity_graph = graph_rank.restricted(entity_graph, set(by_id))
    similarity = {cid: hit.score for cid, hit in by_id.items()}
    seeds = graph_rank.seed_weights(view.seeds, entity_graph, similarity)
    rank = graph_rank.personalized_pagerank(entity_graph, graph_rank.restart_vector(seeds, similarity))
    walk = graph_rank.passage_scores(rank)
    paths = graph_rank.seed_paths(view.subgraph, [seed for seed in seeds if seeds[seed] > 0])
    dense_ids = {chunk_id(hit) for hit in dense[: options.top_k]}  # what /search would have returned
    lexical_ids = {chunk_id(hit) for hit in lexical[: options.top_k]}
    hits = []
    for cid in ranked(walk)[: options.top_k]:
        signals = [
            s
            for s, ok in (
                ("dense", cid in dense_ids),
                ("lexical", cid in lexical_ids),
                ("graph", ("p", cid) in entity_graph.adjacency),
            )
            if ok
        ]
        hit = render_hit(by_id[cid], signals=signals)
        hit.update(score=round(walk[cid], 6), vector_score=round(by_id[cid].score, 6))
        if "graph" in signals:
            hit["graph_path"] = path_to(cid, entity_graph, paths)
        hits.append(hit)
    return hits, top_facts(view, rank, options.max_facts)


async def fetch_chunks(
    tenant: str, chunk_ids: list[str], vector: list[float], options: RetrieveOptions
) -> list[VectorHit]:
    """These chunks, within the caller's filters, with their dense score for this query."""
    base = options.filters or SearchFilter()
    allowed = chunk_ids if base.chunk_ids is None else [c for c in chunk_ids if c in base.chunk_ids]
    narrowed = base.model_copy(update={"chunk_ids": allowed})
    return await search(tenant, "", top_k=len(allowed), filters=narrowed, collection=options.collection, vector=vector)


def chunk_id(hit: VectorHit) -> str:
    return str(hit.payload.get("chunk_id") or hit.id)


def ranked(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda key: (-scores[key], key))


def path_to(
    passage: str, entity_graph: graph_rank.EntityPassageGraph, paths: dict[str, list[SubgraphEdge]]
) -> list[dict[str, Any]]:
    """Seed -> facts -> this passage: the shortest path through a fact (or an entity) that cites it."""
    options: list[list[dict[str, Any]]] = []
    for fact in entity_graph.facts_of_passage.get(passage, []):
        for end in (fact.src, fact.dst):
            if end in paths:
                known = any(step is fact for step in paths[end])  # the subgraph's own objects: no model __eq__
                steps = paths[end] if known else [*paths[end], fact]
                options.append([_step(edge) for edge in steps])
    if not options:
        for kind, entity in entity_graph.adjacency.get(("p", passage), {}):
            if kind == "e" and entity in paths:
                options.append([*(_step(edge) for edge in paths[entity]), {"mentions": entity}])
    return min(options, key=len) if options else []


def _step(edge: SubgraphEdge) -> dict[str, Any]:
    return {"src": edge.src, "type": edge.type, "dst": edge.dst}


def top_facts(view: GraphView, rank: dict[tuple[str, str], float], cap: int) -> Subgraph:
    """The facts the walk ranks highest, and their entities (seeds always included).

    A fact's weight is the geometric mean of its two entities' mass (a hub's many facts to
    unrelated entities stay low) plus the mass of the best passage it was extracted from.
    """

    def weight(edge: SubgraphEdge) -> float:
        ends = math.sqrt(rank.get(("e", edge.src), 0.0) * rank.get(("e", edge.dst), 0.0))
        cited = max((rank.get(("p", source), 0.0) for source in graph_rank.sources_of(edge.props)), default=0.0)
        return ends + cited

    edges = sorted(view.subgraph.edges, key=lambda e: (-weight(e), e.src, e.type, e.dst))[: max(cap, 0)]
    keep = {seed.id for seed in view.seeds} | {e.src for e in edges} | {e.dst for e in edges}
    return Subgraph(nodes=[n for n in view.subgraph.nodes if n.id in keep], edges=edges)


def _reraise_cancellation(exc: BaseException) -> None:
    if isinstance(exc, asyncio.CancelledError):
        raise exc


def render_hit(hit: VectorHit, *, signals: list[str] | None = None) -> dict[str, Any]:
    payload = hit.payload
    rendered: dict[str, Any] = {
        "id": hit.id,
        "text": payload.get("text", ""),
        "score": round(hit.score, 6),
        "metadata": payload.get("metadata") or {},
        "entity_ids": payload.get("entity_ids") or [],
        "citations": [
            {
                "doc_id": payload.get("doc_id"),
                "chunk_index": payload.get("chunk_index"),
                "chunk_id": payload.get("chunk_id"),
                "uri": payload.get("source"),  # where the document came from, e.g. its s3:// address
            }
        ],
    }
    if signals is not None:
        rendered["signals"] = signals
    return rendered


def with_citation_source(hit: dict[str, Any]) -> dict[str, Any]:
    """The predecessor's citation fields on a final hit.

    `source`: `vector` (dense or lexical search found it), `graph` (only the graph reached it) or `hybrid`
    (both); `score`: the hit's final score. A `graph` or `hybrid` citation also names the fact that states
    the passage: `node_id` (its subject, or the entity the passage mentions) and `edge_type` (its relation
    type, None for a mention).
    """
    signals = set(hit.get("signals") or [])
    by_graph, by_search = "graph" in signals, bool(signals & {"dense", "lexical"})
    source = "hybrid" if by_graph and by_search else "graph" if by_graph else "vector"
    extra: dict[str, Any] = {}
    if by_graph:
        last = (hit.get("graph_path") or [{}])[-1]
        extra = {"node_id": last.get("src", last.get("mentions")), "edge_type": last.get("type")}
    citations = [{**citation, "source": source, "score": hit["score"], **extra} for citation in hit["citations"]]
    return {**hit, "citations": citations}


async def _reranked(query: str, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    _, scored = await reranker.rerank(query, [hit["text"] for hit in hits])
    return [
        {**hits[s.index], "vector_score": hits[s.index].get("vector_score", hits[s.index]["score"]), "score": s.score}
        for s in scored
    ]


def merge(subgraphs: list[Subgraph]) -> Subgraph:
    nodes: dict[str, Any] = {}
    edges: dict[tuple[str, str, str], Any] = {}
    for subgraph in subgraphs:
        for node in subgraph.nodes:
            nodes.setdefault(node.id, node)
        for edge in subgraph.edges:
            edges.setdefault((edge.src, edge.type, edge.dst), edge)
    return Subgraph(nodes=list(nodes.values()), edges=list(edges.values()))
