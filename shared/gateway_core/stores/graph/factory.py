"""Build the configured graph store; no network at creation (clients connect on first use)."""

from __future__ import annotations

from ...settings import Settings
from .base import GraphStore


def create_graph_store(settings: Settings) -> GraphStore | None:
    """Neo4j when NEO4J_URI is set, else FalkorDB when FALKORDB_URL is set, else None (not configured)."""
    if settings.neo4j_uri:
        from .neo4j import Neo4jGraphStore

        return Neo4jGraphStore(
            settings.neo4j_uri,
            user=settings.neo4j_user,
            password=settings.neo4j_password,
            database=settings.neo4j_database,
            database_per_tenant=settings.neo4j_database_per_tenant,
            database_prefix=settings.graph_name,
            max_connections=settings.graph_max_connections,
        )
    if settings.falkordb_url:
        from .falkordb import FalkorDBGraphStore

        return FalkorDBGraphStore(
            settings.falkordb_url, settings.graph_name, max_connections=settings.graph_max_connections
        )
    return None
