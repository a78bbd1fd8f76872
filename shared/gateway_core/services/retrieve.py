"""Vector + graph retrieval, in parallel (DESIGN rule 3, issue "retrieve").

Two branches start at once: (a) embed the query, then vector search; (b) graph
expansion from the entities named in the query text. Branch (b) never waits
for the embedding, so the critical path is max(embed + vector, graph). With
`expand_hits`, the entities linked to the vector hits are expanded as soon as
the hits arrive. A failing branch degrades the answer and says so; only when
both fail is the request a 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import dependencies
from ..clients import reranker
from ..clients.embeddings import get_embedder
from ..deadline import current as current_deadline
from ..errors import ApiError, Unavailable
from ..models.graph import Subgraph
from ..models.search import SearchFilter
from ..observability import logger
from ..stores.vectors import VectorHit
from .search import search

T = TypeVar("T")


@dataclass
class RetrieveOptions:
    top_k: int = 5
    max_hops: int = 1
    include_subgraph: bool = True
    filters: SearchFilter | None = None
    expand_hits: bool = False
    rerank: bool = False
    collection: str | None = None


@dataclass
class RetrieveResult:
    hits: list[dict[str, Any]]
    subgraph: Subgraph
    timings_ms: dict[str, float]
    degraded: list[str] = field(default_factory=list)


class Stopwatch:
    def __init__(self) -> None:
        self.origin = time.perf_counter()
        self.timings: dict[str, float] = {}

    async def time(self, stage: str, work: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await work
        finally:
            self.timings[stage] = round((time.perf_counter() - started) * 1000, 1)


def reason(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


async def retrieve(tenant: str, query: str, options: RetrieveOptions) -> RetrieveResult:
    watch = Stopwatch()
    graph = dependencies.graph_store()
    degraded: list[str] = []
    subgraphs: list[Subgraph] = []

    async def vector_branch() -> list[VectorHit]:
        vector = await watch.time("embed", get_embedder().embed_query(query))
        hits = await watch.time(
            "vector",
            search(
                tenant,
                query,
                top_k=options.top_k,
                filters=options.filters,
                collection=options.collection,
                vector=vector,
            ),
        )
        if options.expand_hits and graph is not None:
            entity_ids = sorted({eid for hit in hits for eid in hit.payload.get("entity_ids") or []})
            if entity_ids:
                try:
                    subgraphs.append(
                        await watch.time(
                            "hits_graph",
                            graph.expand(
                                tenant, ids=entity_ids, max_hops=options.max_hops, timeout=current_deadline().timeout()
                            ),
                        )
                    )
                except Exception as exc:  # noqa: BLE001 - the hits stand without their graph
                    degraded.append(f"hits_graph: {reason(exc)}")
        return hits

    async def graph_branch() -> Subgraph:
        assert graph is not None
        return await watch.time(
            "graph", graph.expand(tenant, text=query, max_hops=options.max_hops, timeout=current_deadline().timeout())
        )

    branches: list[Awaitable[Any]] = [vector_branch()]
    if graph is not None:
        branches.append(graph_branch())
    else:
        degraded.append("graph: not configured")
    outcomes = await asyncio.gather(*branches, return_exceptions=True)

    hits: list[VectorHit] = []
    vector_outcome = outcomes[0]
    if isinstance(vector_outcome, BaseException):
        _reraise_cancellation(vector_outcome)
        degraded.append(f"vector: {reason(vector_outcome)}")
        logger.warning("vector branch failed", extra={"reason": reason(vector_outcome)})
    else:
        hits = vector_outcome
    if graph is not None:
        graph_outcome = outcomes[1]
        if isinstance(graph_outcome, BaseException):
            _reraise_cancellation(graph_outcome)
            degraded.append(f"graph: {reason(graph_outcome)}")
            logger.warning("graph branch failed", extra={"reason": reason(graph_outcome)})
        else:
            subgraphs.insert(0, graph_outcome)
    if isinstance(vector_outcome, BaseException) and (graph is None or isinstance(outcomes[1], BaseException)):
        raise Unavailable("Neither the vector store nor the graph could answer.", details={"degraded": degraded})

    rendered = [render_hit(hit) for hit in hits]
    if options.rerank and len(rendered) > 1:
        try:
            rendered = await watch.time("rerank", _reranked(query, rendered))
        except Exception as exc:  # noqa: BLE001 - keep the vector order
            degraded.append(f"rerank: {reason(exc)}")
    subgraph = merge(subgraphs) if options.include_subgraph else Subgraph(nodes=[], edges=[])
    watch.timings["total"] = round((time.perf_counter() - watch.origin) * 1000, 1)
    return RetrieveResult(hits=rendered, subgraph=subgraph, timings_ms=watch.timings, degraded=degraded)


def _reraise_cancellation(exc: BaseException) -> None:
    if isinstance(exc, asyncio.CancelledError):
        raise exc


def render_hit(hit: VectorHit) -> dict[str, Any]:
    payload = hit.payload
    return {
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
                "source": payload.get("source"),
            }
        ],
    }


async def _reranked(query: str, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    _, scored = await reranker.rerank(query, [hit["text"] for hit in hits])
    return [{**hits[s.index], "vector_score": hits[s.index]["score"], "score": s.score} for s in scored]


def merge(subgraphs: list[Subgraph]) -> Subgraph:
    nodes: dict[str, Any] = {}
    edges: dict[tuple[str, str, str], Any] = {}
    for subgraph in subgraphs:
        for node in subgraph.nodes:
            nodes.setdefault(node.id, node)
        for edge in subgraph.edges:
            edges.setdefault((edge.src, edge.type, edge.dst), edge)
    return Subgraph(nodes=list(nodes.values()), edges=list(edges.values()))
