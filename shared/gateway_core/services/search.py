"""Vector search within the caller's tenant."""

from __future__ import annotations

from .. import dependencies
from ..clients.embeddings import get_embedder
from ..deadline import current as current_deadline
from ..models.search import SearchFilter
from ..stores.vectors import VectorHit
from . import lexical
from .index import collection_name


async def search(
    tenant: str,
    query: str,
    *,
    top_k: int = 5,
    filters: SearchFilter | None = None,
    collection: str | None = None,
    vector: list[float] | None = None,
) -> list[VectorHit]:
    """Top-k chunks for `query` (or for an already computed query `vector`)."""
    if vector is None:
        vector = await get_embedder().embed_query(query)
    return await dependencies.vector_store().search(
        collection_name(collection),
        vector,
        tenant=tenant,
        top_k=top_k,
        filter=filters,
        timeout=current_deadline().timeout(),
    )


async def search_lexical(
    tenant: str,
    query: str,
    *,
    top_k: int = 5,
    filters: SearchFilter | None = None,
    collection: str | None = None,
) -> list[VectorHit]:
    """Top-k chunks by BM25 over their words (CJK: character bigrams)."""
    return await dependencies.vector_store().search_lexical(
        collection_name(collection),
        lexical.query_terms(query),
        tenant=tenant,
        top_k=top_k,
        filter=filters,
        timeout=current_deadline().timeout(),
    )
