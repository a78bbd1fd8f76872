"""Pick the vector store adapter from the settings (no I/O: clients open on first use)."""

from __future__ import annotations

from ..errors import NotConfigured
from ..settings import Settings
from .vectors import VectorStore


def create_vector_store(settings: Settings) -> VectorStore:
    if settings.qdrant_url:
        from .qdrant import QdrantVectorStore

        return QdrantVectorStore(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
    if settings.qdrant_local_engine == "edge":
        try:
            from .qdrant_edge import QdrantEdgeVectorStore
        except ImportError:
            raise NotConfigured(
                "QDRANT_LOCAL_ENGINE=edge needs the qdrant-edge-py package; install it, "
                "or set QDRANT_LOCAL_ENGINE=client."
            ) from None
        return QdrantEdgeVectorStore(
            path=settings.qdrant_path,
            optimize_after=settings.qdrant_optimize_after,
            search_threads=settings.qdrant_search_threads,
        )
    from .qdrant import QdrantVectorStore

    return QdrantVectorStore(path=settings.qdrant_path)
