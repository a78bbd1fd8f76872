"""The stores the services use, built lazily once per execution environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import registry
from .settings import get_settings

if TYPE_CHECKING:
    from .stores.graph.base import GraphStore
    from .stores.vectors import VectorStore


def vector_store() -> VectorStore:
    def build() -> VectorStore:
        from .stores.vector_factory import create_vector_store

        return create_vector_store(get_settings())

    return registry.get("vector_store", build)


def graph_store() -> GraphStore | None:
    """The configured graph store, or None when neither Neo4j nor FalkorDB is set."""
    if get_settings().graph_backend is None:
        return None

    def build() -> GraphStore | None:
        from .stores.graph.factory import create_graph_store

        return create_graph_store(get_settings())

    return registry.get("graph_store", build)
