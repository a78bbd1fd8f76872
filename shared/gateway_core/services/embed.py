"""Embeddings and reranking as capabilities of their own (`/embed`, `/rerank`, `/v1/embeddings`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..clients import reranker
from ..clients.embeddings import encode_base64, get_embedder

__all__ = ["Embeddings", "Reranked", "embed", "embedding_model", "encode_base64", "rerank"]


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]
    dim: int
    model: str


@dataclass(frozen=True)
class Reranked:
    reranker: str  # "http" or "local-embeddings"
    ranking: list[tuple[int, float]]  # (index into the documents, score), best first


async def embed(texts: Sequence[str], kind: Literal["passage", "query"] = "passage") -> Embeddings:
    """Vectors for `texts`; a query gets the embedder's query prefix, if it has one."""
    embedder = get_embedder()
    if kind == "query":
        vectors = [await embedder.embed_query(text) for text in texts]
    else:
        vectors = await embedder.embed_passages(texts)
    return Embeddings(vectors=vectors, dim=len(vectors[0]) if vectors else 0, model=embedder.model)


def embedding_model() -> str:
    return get_embedder().model


async def rerank(query: str, documents: Sequence[str], top_n: int | None = None) -> Reranked:
    used, scored = await reranker.rerank(query, documents, top_n)
    return Reranked(reranker=used, ranking=[(item.index, item.score) for item in scored])
