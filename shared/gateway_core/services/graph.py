"""Direct graph access for callers: upsert their own facts, run read-only Cypher (`/graph/upsert`, `/graph/query`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import dependencies
from ..auth import load_keyring
from ..deadline import Deadline
from ..deadline import current as current_deadline
from ..errors import Forbidden, NotConfigured
from ..models.graph import GraphData
from ..observability import logger
from ..settings import get_settings
from . import resolution

if TYPE_CHECKING:
    from ..stores.graph.base import GraphStore, UpsertResult

GRAPH_NOT_CONFIGURED = "No graph store is configured: set FALKORDB_URL (redis://host:port) or NEO4J_URI."
# Time of its own to take a failed write's merges back (the failure may be the request's deadline itself).
TAKE_BACK_BUDGET_S = 10.0


async def _tenants_share_a_database() -> bool:
    settings = get_settings()
    if settings.graph_backend != "neo4j" or settings.neo4j_database_per_tenant:
        return False
    return len((await load_keyring(settings)).tenants) > 1


def require_graph() -> GraphStore:
    store = dependencies.graph_store()
    if store is None:
        raise NotConfigured(GRAPH_NOT_CONFIGURED)
    return store


async def upsert(tenant: str, data: GraphData, sources: Sequence[str] = ()) -> UpsertResult:
    """Write the caller's facts, resolved first: one node per entity, one edge per fact (see `resolution`).

    A write that fails after its merges were recorded takes them back (`resolution.take_back`): no merge
    record, `merged_from` or alias of a write the caller was told failed stays; a retry merges again."""
    require_graph()
    recorded = resolution.Recorded()
    try:
        return await resolution.write(tenant, data, sources, recorded=recorded)
    except BaseException:
        if recorded.merges or recorded.points:
            await _take_back(tenant, recorded)
        raise


async def _take_back(tenant: str, recorded: resolution.Recorded) -> None:
    """Best effort: the write's own failure is what the caller must see."""
    try:
        await resolution.take_back(tenant, recorded, Deadline.after(TAKE_BACK_BUDGET_S))
    except Exception as exc:  # noqa: BLE001 - the original failure is what the caller must see
        logger.warning("could not take back a failed write's merges", extra={"reason": str(exc)[:300]})


async def merges(tenant: str) -> list[resolution.MergeRecord]:
    """Every entity merge of the tenant, to audit (`GET /graph/merges`)."""
    require_graph()
    return await resolution.merges(tenant)


async def undo_merge(tenant: str, merge_id: str) -> resolution.MergeRecord:
    """The absorbed id becomes its own node again, with its facts (`DELETE /graph/merges/{id}`)."""
    require_graph()
    return await resolution.undo(tenant, merge_id)


SHARED_DATABASE = (
    "Free Cypher is off: this deployment keeps several tenants in one Neo4j database, where a query could "
    "read another tenant's data. Set NEO4J_DATABASE_PER_TENANT=true (a database per tenant), or use /retrieve."
)


async def query(tenant: str, cypher: str, params: dict[str, Any], *, limit: int) -> list[dict[str, Any]]:
    """Read-only Cypher on the tenant's own graph (the store refuses writes and binds `$tenant`).

    Isolation must be structural: FalkorDB keeps a graph per tenant, Neo4j needs a database per tenant.
    A shared Neo4j database is only open to free Cypher while one tenant is configured.
    """
    store = require_graph()
    if await _tenants_share_a_database():
        raise Forbidden(SHARED_DATABASE)
    return await store.query(tenant, cypher, params, limit=limit, timeout=current_deadline().timeout())
