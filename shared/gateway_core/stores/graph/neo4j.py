"""Neo4j adapter: the neo4j async driver over Bolt (Neo4j 5, Aura).

All tenants share one database; every node and relation carries `tenant` and
every statement of this adapter filters on it. `/graph/query` runs in a READ
transaction (Neo4j refuses writes there). Because a raw query could match
across tenants, it must use `$tenant` (which the adapter binds to the caller's
tenant), and any returned node or relation of another tenant drops its record.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ...errors import BadRequest, DeadlineExceeded, UpstreamError
from ...observability import logger
from .base import CypherGraphStore, GraphUnavailable
from .cypher import json_safe, visible_props
from .identifiers import assert_read_only

INDEXES = ("CREATE INDEX entity_id IF NOT EXISTS FOR (n:Entity) ON (n.id, n.tenant)",
           "CREATE INDEX entity_name IF NOT EXISTS FOR (n:Entity) ON (n.name)")


class Neo4jGraphStore(CypherGraphStore):
    def __init__(self, uri: str, *, user: str | None = None, password: str | None = None,
                 database: str | None = None) -> None:
        self._uri, self._auth = uri, (user, password or "") if user else None
        self._database = database
        self._driver: Any = None
        self._indexed = False

    def _session(self, read: bool) -> Any:
        import neo4j

        if self._driver is None:  # lazily: constructing the store touches no network
            self._driver = neo4j.AsyncGraphDatabase.driver(self._uri, auth=self._auth, connection_timeout=3)
        mode = neo4j.READ_ACCESS if read else neo4j.WRITE_ACCESS
        return self._driver.session(database=self._database, default_access_mode=mode)

    async def _execute(self, cypher: str, params: dict[str, Any], *, read: bool, timeout: float | None) -> list[dict]:
        import neo4j
        from neo4j.exceptions import ClientError, ServiceUnavailable, SessionExpired

        async def work(tx: Any) -> list[dict]:
            result = await tx.run(cypher, params)
            return [dict(record.items()) async for record in result]

        try:
            async with asyncio.timeout(timeout), self._session(read) as session:
                run = session.execute_read if read else session.execute_write
                return await run(neo4j.unit_of_work(timeout=timeout)(work) if timeout else work)
        except TimeoutError as exc:
            raise DeadlineExceeded("The graph store did not answer in time.") from exc
        except (ServiceUnavailable, SessionExpired, OSError) as exc:
            raise GraphUnavailable(f"The graph store at {self._uri} is unreachable.") from exc
        except ClientError as exc:
            raise UpstreamError(f"The graph store refused the query: {exc.message}") from exc

    async def _read(self, tenant: str, cypher: str, params: dict[str, Any], timeout: float | None) -> list[dict]:
        return await self._execute(cypher, {**params, "tenant": tenant}, read=True, timeout=timeout)

    async def _write(self, tenant: str, cypher: str, params: dict[str, Any], timeout: float | None) -> list[dict]:
        return await self._execute(cypher, {**params, "tenant": tenant}, read=False, timeout=timeout)

    async def _ensure_indexes(self, tenant: str, timeout: float | None) -> None:
        from neo4j.exceptions import DatabaseError

        if not self._indexed:
            for statement in INDEXES:
                try:
                    await self._execute(statement, {}, read=False, timeout=timeout)
                except (UpstreamError, DatabaseError) as exc:  # an index only speeds things up: go on without
                    logger.warning("could not create a graph index", extra={"statement": statement,
                                                                             "reason": str(exc)[:200]})
            self._indexed = True

    async def query(self, tenant: str, cypher: str, params: dict[str, Any] | None = None, *, limit: int = 1000,
                    timeout: float | None = None) -> list[dict[str, Any]]:
        assert_read_only(cypher)
        if params and "tenant" in params:
            raise BadRequest("'tenant' is a reserved parameter: the store binds it to the caller's tenant.")
        if "$tenant" not in cypher:
            raise BadRequest("On Neo4j, /graph/query must filter on $tenant (e.g. WHERE n.tenant = $tenant).")
        try:
            records = await self._execute(cypher, {**(params or {}), "tenant": tenant}, read=True, timeout=timeout)
        except UpstreamError as exc:
            raise BadRequest(exc.message) from exc
        safe = [record for record in records if _only_tenant(record.values(), tenant)]
        return [{key: _json_safe(value) for key, value in record.items()} for record in safe[:limit]]

    async def close(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.close()


def _only_tenant(values: Any, tenant: str) -> bool:
    from neo4j.graph import Node, Path, Relationship

    for value in values:
        if isinstance(value, (Node, Relationship)) and value.get("tenant") not in (tenant, None):
            return False
        if isinstance(value, Path) and not _only_tenant([*value.nodes, *value.relationships], tenant):
            return False
        if isinstance(value, list) and not _only_tenant(value, tenant):
            return False
    return True


def _json_safe(value: Any) -> Any:
    return json_safe(value, _entity)


def _entity(value: Any) -> dict[str, Any] | None:
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        return {"id": value.get("id"), "labels": sorted(value.labels), "props": visible_props(dict(value))}
    if isinstance(value, Relationship):
        return {"type": value.type, "src": value.start_node.get("id") if value.start_node else None,
                "dst": value.end_node.get("id") if value.end_node else None, "props": visible_props(dict(value))}
    if isinstance(value, Path):
        return {"nodes": [_json_safe(n) for n in value.nodes], "edges": [_json_safe(r) for r in value.relationships]}
    return None
