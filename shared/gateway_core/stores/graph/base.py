"""The graph store interface: what retrieval, extraction and ingestion need, nothing more."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ...errors import Unavailable
from .models import GraphData, Subgraph


class GraphUnavailable(Unavailable):
    code = "graph_unavailable"


@dataclass(frozen=True)
class UpsertResult:
    nodes: int
    edges: int


@dataclass(frozen=True)
class DeleteResult:
    nodes_deleted: int
    edges_deleted: int
    edges_updated: int


class GraphStore(Protocol):
    async def upsert(self, tenant: str, data: GraphData, *, sources: Sequence[str] = (),
                     timeout: float | None = None) -> UpsertResult: ...

    async def expand(self, tenant: str, *, ids: Sequence[str] = (), names: Sequence[str] = (),
                     text: str | None = None, max_hops: int = 1, fan_out: int = 25, limit: int = 200,
                     timeout: float | None = None) -> Subgraph: ...

    async def delete_sources(self, tenant: str, sources: Sequence[str], *,
                             timeout: float | None = None) -> DeleteResult: ...

    async def query(self, tenant: str, cypher: str, params: dict[str, Any] | None = None, *, limit: int = 1000,
                    timeout: float | None = None) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


class CypherGraphStore:
    """What both adapters do the same way, over their own `_read`/`_write` (rows as dicts)."""

    async def _read(self, tenant: str, cypher: str, params: dict[str, Any], timeout: float | None) -> list[dict]:
        raise NotImplementedError

    async def _write(self, tenant: str, cypher: str, params: dict[str, Any], timeout: float | None) -> list[dict]:
        raise NotImplementedError

    async def _ensure_indexes(self, tenant: str, timeout: float | None) -> None:
        raise NotImplementedError

    async def upsert(self, tenant: str, data: GraphData, *, sources: Sequence[str] = (),
                     timeout: float | None = None) -> UpsertResult:
        from .cypher import upsert_statements

        await self._ensure_indexes(tenant, timeout)
        for cypher, rows in upsert_statements(data, sources):
            for start in range(0, len(rows), 500):
                await self._write(tenant, cypher, {"rows": rows[start:start + 500]}, timeout)
        return UpsertResult(nodes=len({n.id for n in data.nodes}),
                            edges=len({(e.src, e.type, e.dst) for e in data.edges}))

    async def expand(self, tenant: str, *, ids: Sequence[str] = (), names: Sequence[str] = (),
                     text: str | None = None, max_hops: int = 1, fan_out: int = 25, limit: int = 200,
                     timeout: float | None = None) -> Subgraph:
        """Seeds by id, name or alias (or named inside `text`), then up to 3 hops, bounded per node and in total."""
        from .cypher import NEIGHBOURS, SEEDS, visible_props
        from .models import SubgraphEdge, SubgraphNode

        seeds = await self._read(tenant, SEEDS, {"ids": list(ids), "names": [n.lower() for n in names],
                                                 "text": (text or "").lower(), "limit": limit}, timeout)
        nodes = {row["id"]: SubgraphNode(id=row["id"], type=row["type"] or "Entity", props=visible_props(row["props"]))
                 for row in seeds}
        edges: dict[tuple[str, str, str], SubgraphEdge] = {}
        frontier = list(nodes)
        for _ in range(max(1, min(max_hops, 3))):
            if not frontier or len(edges) >= limit:
                break
            rows = await self._read(tenant, NEIGHBOURS, {"frontier": frontier, "fan_out": fan_out,
                                                         "limit": limit - len(edges)}, timeout)
            frontier = []
            for row in rows:
                edges.setdefault((row["src"], row["type"], row["dst"]), SubgraphEdge(
                    src=row["src"], dst=row["dst"], type=row["type"], props=visible_props(row["props"])))
                if row["id"] not in nodes:
                    nodes[row["id"]] = SubgraphNode(id=row["id"], type=row["node_type"] or "Entity",
                                                    props=visible_props(row["node_props"]))
                    frontier.append(row["id"])
        return Subgraph(nodes=list(nodes.values()), edges=list(edges.values()))

    async def delete_sources(self, tenant: str, sources: Sequence[str], *,
                             timeout: float | None = None) -> DeleteResult:
        from .cypher import DELETE_EDGES_ONLY_FROM, DELETE_NODES_ONLY_FROM, STRIP_EDGE_SOURCES, STRIP_NODE_SOURCES

        async def count(cypher: str) -> int:
            return int((await self._write(tenant, cypher, {"sources": list(sources)}, timeout))[0]["n"])

        edges_deleted = await count(DELETE_EDGES_ONLY_FROM)
        edges_updated = await count(STRIP_EDGE_SOURCES)
        nodes_deleted = await count(DELETE_NODES_ONLY_FROM)
        await count(STRIP_NODE_SOURCES)
        return DeleteResult(nodes_deleted=nodes_deleted, edges_deleted=edges_deleted, edges_updated=edges_updated)
