"""A reranker HTTP endpoint (RERANKER_URL), or a local fallback on the embedding model.

The endpoint is called as `POST {RERANKER_URL}` with `{query, documents, top_n}`
and may answer Cohere/Jina style `{"results": [{"index", "relevance_score"}]}`
or TEI style `[{"index", "score"}]`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from .. import tls
from ..deadline import current as current_deadline
from ..errors import UpstreamError
from ..registry import registry
from ..settings import get_settings
from ..upstream import external_call, httpx_errors
from .embeddings import get_embedder


@dataclass(frozen=True)
class Scored:
    index: int
    score: float


def _http_client() -> httpx.AsyncClient:
    settings = get_settings()
    headers = {"Authorization": f"Bearer {settings.reranker_api_key}"} if settings.reranker_api_key else {}
    return httpx.AsyncClient(headers=headers, limits=httpx.Limits(max_connections=20), verify=tls.for_httpx())


async def rerank_http(query: str, documents: Sequence[str], top_n: int) -> list[Scored]:
    url = get_settings().reranker_url
    assert url
    client = registry.get("reranker:http", _http_client)
    budget = current_deadline().timeout()
    async with external_call("The reranker", budget, httpx_errors("The reranker")):
        response = await client.post(
            url, json={"query": query, "documents": list(documents), "top_n": top_n}, timeout=budget
        )
    if response.status_code >= 400:
        raise UpstreamError(
            f"The reranker answered HTTP {response.status_code}.", details={"status": response.status_code}
        )
    return _parse(response.json(), len(documents))[:top_n]


def _parse(payload: Any, count: int) -> list[Scored]:
    items: Any = payload.get("results", payload.get("data")) if isinstance(payload, dict) else payload
    try:
        scored = [Scored(int(item["index"]), float(item.get("relevance_score", item.get("score")))) for item in items]
    except (TypeError, KeyError, ValueError) as exc:
        raise UpstreamError("The reranker's answer has no [{index, score}] list.") from exc
    if any(not 0 <= item.index < count for item in scored):
        raise UpstreamError("The reranker returned an index outside the documents.")
    return sorted(scored, key=lambda item: item.score, reverse=True)


async def rerank_local(query: str, documents: Sequence[str], top_n: int) -> list[Scored]:
    """Cosine similarity of query and documents on the embedding model."""
    embedder = get_embedder()
    query_vector, doc_vectors = await asyncio.gather(embedder.embed_query(query), embedder.embed_passages(documents))
    scores = [
        sum(q * d for q, d in zip(query_vector, vector)) / (_norm(query_vector) * _norm(vector) or 1.0)
        for vector in doc_vectors
    ]
    ranked = sorted((Scored(i, round(s, 6)) for i, s in enumerate(scores)), key=lambda item: item.score, reverse=True)
    return ranked[:top_n]


def _norm(vector: Sequence[float]) -> float:
    return float(sum(value * value for value in vector) ** 0.5)


async def rerank(query: str, documents: Sequence[str], top_n: int | None = None) -> tuple[str, list[Scored]]:
    """(which reranker answered, scores best first)."""
    limit = top_n or len(documents)
    if get_settings().reranker_url:
        return "http", await rerank_http(query, documents, limit)
    return "local-embeddings", await rerank_local(query, documents, limit)
