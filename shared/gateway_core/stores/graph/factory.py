"""Build the configured graph store (no network at creation)."""

from __future__ import annotations

from ...settings import Settings
from .base import GraphStore


def create_graph_store(settings: Settings) -> GraphStore | None:
    if settings.neo4j_uri:
        from .neo4j import Neo4jGraphStore

        return Neo4jGraphStore(settings.neo4j_uri, user=settings.neo4j_user, password=settings.neo4j_password,
                               database=settings.neo4j_database)
    if settings.falkordb_url:
        from .falkordb import FalkorDBGraphStore

        return FalkorDBGraphStore(settings.falkordb_url, settings.graph_name)
    return None
