"""FalkorDB adapter: the falkordb async client over RESP.

Tenant isolation: each tenant has its own graph, `<GRAPH_NAME>_<tenant>`, so
even a raw read-only query cannot see another tenant's nodes; nodes still
carry `tenant`. `/graph/query` runs through GRAPH.RO_QUERY: the server itself
refuses writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from ...errors import BadRequest, DeadlineExceeded, UpstreamError
from .base import CypherGraphStore, GraphUnavailable
from .cypher import json_safe, visible_props
from .identifiers import assert_read_only

T = TypeVar("T")
INDEXES = ("CREATE INDEX FOR (n:Entity) ON (n.id)", "CREATE INDEX FOR (n:Entity) ON (n.name)")


class FalkorDBGraphStore(CypherGraphStore):
    def __init__(self, url: str, graph_name: str = "kg") -> None:
        self._url, self._graph_name = url, graph_name
        self._db: Any = None
        self._indexed: set[str] = set()

    # --- plumbing ----------------------------------------------------------------------------

    def _graph(self, tenant: str) -> Any:
        if self._db is None:  # lazily: constructing the store touches no network
            from falkordb.asyncio import FalkorDB

            self._db = FalkorDB.from_url(self._url, socket_connect_timeout=2, max_connections=50)
        return self._db.select_graph(f"{self._graph_name}_{tenant}")

    async def _run(self, work: Awaitable[T], timeout: float | None) -> T:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import ResponseError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            async with asyncio.timeout(timeout):
                return await work
        except TimeoutError as exc:
            raise DeadlineExceeded("The graph store did not answer in time.") from exc
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise GraphUnavailable(f"The graph store at {self._url} is unreachable.") from exc
        except ResponseError as exc:
            raise UpstreamError(f"The graph store refused the query: {exc}") from exc

    async def _write(self, tenant: str, cypher: str, params: dict[str, Any], timeout: float | None) -> list[dict]:
        graph = self._graph(tenant)
        ms = int(timeout * 1000) if timeout else None
        return _rows(await self._run(graph.query(cypher, {**params, "tenant": tenant}, timeout=ms), timeout))

    async def _read(self, tenant: str, cypher: str, params: dict[str, Any], timeout: float | None) -> list[dict]:
        graph = self._graph(tenant)
        ms = int(timeout * 1000) if timeout else None
        try:
            result = await self._run(graph.ro_query(cypher, {**params, "tenant": tenant}, timeout=ms), timeout)
        except UpstreamError as exc:
            if "empty key" not in exc.message:
                raise
            # A tenant's graph exists once something is written; create it (empty, indexed) and read again.
            await self._ensure_indexes(tenant, timeout)
            result = await self._run(graph.ro_query(cypher, {**params, "tenant": tenant}, timeout=ms), timeout)
        return _rows(result)

    async def _ensure_indexes(self, tenant: str, timeout: float | None) -> None:
        if tenant in self._indexed:
            return
        for statement in INDEXES:
            try:
                await self._run(self._graph(tenant).query(statement), timeout)
            except UpstreamError as exc:
                if "already indexed" not in exc.message:
                    raise
        self._indexed.add(tenant)

    # --- GraphStore ---------------------------------------------------------------------------

    async def query(self, tenant: str, cypher: str, params: dict[str, Any] | None = None, *, limit: int = 1000,
                    timeout: float | None = None) -> list[dict[str, Any]]:
        assert_read_only(cypher)
        if params and "tenant" in params:
            raise BadRequest("'tenant' is a reserved parameter: the store binds it to the caller's tenant.")
        try:
            rows = await self._read(tenant, cypher, dict(params or {}), timeout)
        except UpstreamError as exc:  # a syntax error or a refused write is the caller's query, not our fault
            raise BadRequest(exc.message) from exc
        return rows[:limit]

    async def ro_query_unchecked(self, tenant: str, cypher: str) -> list[dict[str, Any]]:
        """GRAPH.RO_QUERY without the keyword pre-check: shows that the server refuses writes itself."""
        return await self._read(tenant, cypher, {}, 5.0)

    async def ping(self) -> None:
        await self._run(self._graph("default").ro_query("RETURN 1"), 2.0)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.aclose()



def _rows(result: Any) -> list[dict[str, Any]]:
    header = [column[1] if isinstance(column, (list, tuple)) else column for column in result.header]
    return [{name: _json_safe(value) for name, value in zip(header, row)} for row in result.result_set]


def _json_safe(value: Any) -> Any:
    return json_safe(value, _entity)


def _entity(value: Any) -> dict[str, Any] | None:
    from falkordb import Edge, Node, Path

    if isinstance(value, Node):
        return {"id": value.properties.get("id", value.id), "labels": list(value.labels or []),
                "props": visible_props(dict(value.properties))}
    if isinstance(value, Edge):
        return {"type": value.relation, "src": value.src_node, "dst": value.dest_node,
                "props": visible_props(dict(value.properties))}
    if isinstance(value, Path):
        return {"nodes": [_json_safe(n) for n in value.nodes()], "edges": [_json_safe(e) for e in value.edges()]}
    return None
