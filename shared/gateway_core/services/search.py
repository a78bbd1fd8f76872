"""Vector search within the caller's tenant."""

from __future__ import annotations

from .. import dependencies
from ..clients.embeddings import get_embedder
from ..deadline import current as current_deadline
from ..models.search import SearchFilter
from ..stores.vectors import VectorHit
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
