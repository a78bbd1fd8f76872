"""Direct graph access for callers: upsert their own facts, run read-only Cypher (`/graph/upsert`, `/graph/query`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import dependencies
from ..deadline import current as current_deadline
from ..errors import NotConfigured
from ..models.graph import GraphData

if TYPE_CHECKING:
    from ..stores.graph.base import GraphStore, UpsertResult

GRAPH_NOT_CONFIGURED = "No graph store is configured: set FALKORDB_URL (redis://host:port) or NEO4J_URI."


def require_graph() -> GraphStore:
    store = dependencies.graph_store()
    if store is None:
        raise NotConfigured(GRAPH_NOT_CONFIGURED)
    return store


async def upsert(tenant: str, data: GraphData, sources: Sequence[str] = ()) -> UpsertResult:
    return await require_graph().upsert(tenant, data, sources=sources, timeout=current_deadline().timeout())


async def query(tenant: str, cypher: str, params: dict[str, Any], *, limit: int) -> list[dict[str, Any]]:
    """Read-only Cypher on the tenant's graph (the store refuses writes and binds `$tenant`)."""
    return await require_graph().query(tenant, cypher, params, limit=limit, timeout=current_deadline().timeout())
