"""FalkorDB adapter: the falkordb async client over RESP (`FALKORDB_URL`, redis://host:port).

Tenant isolation: each tenant has its own graph, `<GRAPH_NAME>_<tenant>`
(tenants are `[A-Za-z0-9_-]{1,64}`), so even a raw read-only query physically
cannot see another tenant's data; nodes still carry `tenant`. `/graph/query`
runs through GRAPH.RO_QUERY: the server itself refuses writes, after the
keyword pre-check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from ...errors import ApiError, BadRequest, DeadlineExceeded
from ...redaction import redact_url
from ...upstream import external_call
from .base import Budget, CypherGraphStore, GraphQueryError, GraphUnavailable
from .cypher import expansions, json_safe, leaves, visible_props
from .identifiers import check_tenant, with_row_limit

T = TypeVar("T")

# name_keys is a list: FalkorDB's range index serves `key IN n.name_keys` lookups.
INDEXES = (
    "CREATE INDEX FOR (n:Entity) ON (n.id)",
    "CREATE INDEX FOR (n:Entity) ON (n.name)",
    "CREATE INDEX FOR (n:Entity) ON (n.name_keys)",
    "CREATE INDEX FOR (n:Entity) ON (n.merged_from)",
)
# Relationships in a result name their endpoints by internal id; this maps them to entity ids.
ENTITY_IDS = "MATCH (n) WHERE id(n) IN $keys RETURN id(n) AS key, n.id AS id"


class FalkorDBGraphStore(CypherGraphStore):
    def __init__(self, url: str, graph_name: str = "kg", *, max_connections: int = 64) -> None:
        super().__init__()
        self._url, self._graph_name, self._max_connections = url, graph_name, max_connections
        self._pool: Any = None
        self._db: Any = None
        self._graphs: dict[str, Any] = {}  # graph handles for the adapter's own statements, per graph key
        self._connecting = asyncio.Lock()

    def graph_key(self, tenant: str) -> str:
        """The tenant's own graph."""
        return f"{self._graph_name}_{check_tenant(tenant)}"

    # --- plumbing ----------------------------------------------------------------------------

    async def _client(self) -> Any:
        if self._db is None:  # lazily, on first use: importing or constructing touches no network
            async with self._connecting:
                if self._db is None:
                    self._db = await self._connect()
        return self._db

    def _plain_graph(self, db: Any, key: str) -> Any:
        """The graph handle `_plain_query` sends through (it never reads the handle's schema cache): one per key."""
        graph = self._graphs.get(key)
        if graph is None or graph.client is not db:
            graph = self._graphs[key] = db.select_graph(key)
        return graph

    async def _connect(self) -> Any:
        from falkordb.asyncio import FalkorDB
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.connection import Connection, parse_url
        from redis.exceptions import ConnectionError as RedisConnectionError

        url = self._url.replace("falkors://", "rediss://", 1).replace("falkor://", "redis://", 1)
        options = parse_url(url)  # as BlockingConnectionPool.from_url reads it; the URL's own options win
        connection = packed_in_c(options.pop("connection_class", Connection))
        # Waits for a free connection (bounded by the call's timeout) instead of failing under load;
        # one retry replaces a pooled connection that went stale (e.g. after a server restart).
        # No socket timeout: every call is bounded by its own budget (`_run`), and with one redis-py wraps
        # each send in `asyncio.wait_for`, a task of its own per command.
        defaults: dict[str, Any] = {
            "max_connections": self._max_connections,
            "timeout": None,
            "decode_responses": True,
            "socket_connect_timeout": 2,
            "socket_timeout": None,
            "retry_on_error": [RedisConnectionError],
        }
        pool = BlockingConnectionPool(connection_class=connection, **{**defaults, **options})
        # FalkorDB's constructor asks the server, synchronously and with slow retries, whether it is a
        # cluster: ping first (fails fast when the server is down), then construct off the loop.
        try:
            await Redis(connection_pool=pool).ping()
            db = await asyncio.to_thread(FalkorDB, connection_pool=pool)
        except BaseException:
            await pool.disconnect()
            raise
        self._pool = pool
        return db

    async def _run(self, work: Awaitable[T], timeout: float) -> T:
        async with external_call("The graph store", timeout, self._failure):
            result = await work
        return result

    def _failure(self, exc: Exception) -> ApiError | None:
        """redis/FalkorDB failures: a server-side timeout, a refused statement, or a lost server."""
        from redis.exceptions import RedisError, ResponseError

        if isinstance(exc, ResponseError) and "timed out" in str(exc):
            return DeadlineExceeded("The graph store did not answer in time.")
        if isinstance(exc, ResponseError):
            return GraphQueryError(f"FalkorDB refused the query: {exc}")
        if isinstance(exc, RedisError | OSError):  # refused, reset, closed mid-reply
            return GraphUnavailable(f"The graph store at {redact_url(self._url)} is unreachable.")
        return None

    async def _execute(
        self,
        tenant: str,
        statement: str,
        params: dict[str, Any],
        timeout: float,
        *,
        read_only: bool,
        plain: bool = False,
    ) -> Any:
        """The library's QueryResult; with `plain` (the adapter's own statements), rows as plain dicts."""
        key, params = self.graph_key(tenant), {**params, "tenant": tenant}
        # The server's own timeout (ms) stops a read there too; ours bounds the wait here.
        # A write is never cut half-way by the server.
        server_timeout = max(1, int(timeout * 1000)) if read_only else None

        async def call() -> Any:
            db = await self._client()
            if plain:
                graph = self._plain_graph(db, key)
                return await _plain_query(graph, statement, params, read_only=read_only, timeout_ms=server_timeout)
            graph = db.select_graph(key)  # a fresh schema cache: a graph deleted and re-created renumbers labels
            if read_only:
                return await graph.ro_query(statement, params, timeout=server_timeout)
            return await graph.query(statement, params)

        return await self._run(call(), timeout)

    async def _ro_query(
        self, tenant: str, statement: str, params: dict[str, Any], timeout: float, *, plain: bool = False
    ) -> Any:
        """GRAPH.RO_QUERY, without the keyword pre-check: the server refuses any write itself."""
        budget = Budget(timeout)
        try:
            return await self._execute(tenant, statement, params, budget.left(), read_only=True, plain=plain)
        except GraphQueryError as exc:
            if "empty key" not in exc.message:
                raise
        # A tenant's graph exists once something is written (or again after a server restart):
        # create it, empty and indexed, and read again.
        self._schema_ready.discard(self._schema_key(tenant))
        await self.ensure_schema(tenant, timeout=budget.left())
        return await self._execute(tenant, statement, params, budget.left(), read_only=True, plain=plain)

    async def _read(self, tenant: str, statement: str, params: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._ro_query(tenant, statement, params, timeout, plain=True)
        return rows

    async def _write(self, tenant: str, statement: str, params: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._execute(
            tenant, statement, params, timeout, read_only=False, plain=True
        )
        return rows

    async def _expansions(
        self, tenant: str, parts: dict[int, tuple[list[str], int]], hops: int, fan_out: int, budget: Budget
    ) -> dict[int, dict[str, Any]]:
        """Every part in one statement (UNION ALL): one round trip, which costs the gateway more CPU than the
        facts it reads."""
        params: dict[str, Any] = {"fan_out": fan_out}
        for k, (ids, limit) in parts.items():
            params[f"ids_{k}"], params[f"limit_{k}"] = ids, limit
        rows = await self._read(tenant, expansions(hops, list(parts)), params, budget.left())
        return {int(row["part"]): row for row in rows}

    async def _create_indexes(self, tenant: str, timeout: float) -> None:
        budget = Budget(timeout)
        for statement in INDEXES:
            try:
                await self._execute(tenant, statement, {}, budget.left(), read_only=False, plain=True)
            except GraphQueryError as exc:
                if "already indexed" not in exc.message:
                    raise

    # --- GraphStore ---------------------------------------------------------------------------

    async def query(
        self,
        tenant: str,
        cypher: str,
        params: dict[str, Any] | None = None,
        *,
        limit: int = 1000,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """A read-only query on the tenant's own graph; rows as JSON-safe dicts."""
        params = self._checked_query(tenant, cypher, params)
        budget = Budget(timeout)
        try:
            result = await self._ro_query(tenant, with_row_limit(cypher, limit), params, budget.left(), plain=False)
        except GraphQueryError as exc:  # a syntax error or a refused write is the caller's query
            raise BadRequest(exc.message) from exc
        header = _header(result)
        rows = result.result_set[: max(0, limit)]
        convert = _converter(await self._entity_ids(tenant, rows, budget))
        return [{name: json_safe(value, convert) for name, value in zip(header, row)} for row in rows]

    async def _entity_ids(self, tenant: str, rows: list[list[Any]], budget: Budget) -> dict[int, Any]:
        """Internal id -> entity id for every node a result mentions, looking up relationship endpoints."""
        from falkordb import Edge, Node, Path

        known: dict[int, Any] = {}
        wanted: set[int] = set()
        for value in leaves(rows):
            for item in (value.nodes() + value.edges()) if isinstance(value, Path) else [value]:
                if isinstance(item, Node):
                    known[item.id] = item.properties.get("id")
                elif isinstance(item, Edge):
                    wanted.update(_internal_id(end) for end in (item.src_node, item.dest_node))
        missing = sorted(wanted - set(known))
        if missing:
            found = await self._execute(
                tenant, ENTITY_IDS, {"keys": missing}, budget.left(), read_only=True, plain=False
            )
            known.update({key: entity_id for key, entity_id in found.result_set})
        return known

    async def ping(self, *, timeout: float | None = None) -> None:
        async def call() -> None:
            await (await self._client()).connection.ping()

        await self._run(call(), Budget(timeout).left())

    async def close(self) -> None:
        db, pool, self._db, self._pool = self._db, self._pool, None, None
        self._graphs.clear()
        if db is not None:
            await db.aclose()
            await pool.disconnect()


def packed_in_c(base: type) -> type:
    """redis-py's asyncio connection class `base` (TCP or TLS) with its commands packed by hiredis, in C, as
    its synchronous connection does: the Python packer cost a few hundredths of a millisecond per command,
    three or four commands per /retrieve."""
    from redis.connection import HiredisRespSerializer

    packer = HiredisRespSerializer()

    class PackedInC(base):  # type: ignore[misc]
        def pack_command(self, *args: Any) -> list[bytes]:
            packed: list[bytes] = packer.pack(*args)
            return packed

    return PackedInC


def _header(result: Any) -> list[str]:
    return [column[1] if isinstance(column, (list, tuple)) else column for column in result.header]


async def _plain_query(
    graph: Any, statement: str, params: dict[str, Any], *, read_only: bool, timeout_ms: int | None
) -> list[dict[str, Any]]:
    """Run one of the adapter's own statements and decode its compact reply here.

    Those statements return scalars, lists and maps only (no nodes, edges or paths, which need the
    graph's schema), and the library's parser awaits a coroutine per value: on a warm two-hop
    /retrieve that was the largest share of the gateway's CPU (`make bench`, the profile).
    The parameters are written by the library's own `stringify_param_value`.
    """
    from falkordb.helpers import stringify_param_value
    from redis.exceptions import ResponseError

    header = "CYPHER " + "".join(f"`{name}`={stringify_param_value(value)} " for name, value in params.items())
    command: list[Any] = ["GRAPH.RO_QUERY" if read_only else "GRAPH.QUERY", graph.name, header + statement, "--compact"]
    if timeout_ms is not None:
        command += ["timeout", timeout_ms]
    reply = await graph.execute_command(*command)
    if isinstance(reply[-1], ResponseError):  # a run-time error is the reply's last element
        raise reply[-1]
    if len(reply) < 3:  # statistics only: the statement returns nothing
        return []
    columns = [column[1] for column in reply[0]]
    return [dict(zip(columns, map(_plain_value, row), strict=True)) for row in reply[1]]


# The compact reply's value types (FalkorDB's client specification); the adapter's statements return only these.
# Null, string and integer cells carry their value as is (null's is None): the ones read without a call.
_NULL, _STRING, _INTEGER, _BOOLEAN, _DOUBLE, _ARRAY, _MAP = 1, 2, 3, 4, 5, 6, 10


def _plain_value(cell: list[Any]) -> Any:
    """One compact cell as a plain value. Most cells inside lists and maps are strings, integers or nulls:
    they are read in place, without a call each (a warm /retrieve decodes over a thousand of them)."""
    kind, value = cell
    if _NULL <= kind <= _INTEGER:
        return value
    if kind == _ARRAY:
        items = []
        for item in value:
            items.append(item[1] if _NULL <= item[0] <= _INTEGER else _plain_value(item))
        return items
    if kind == _MAP:  # [key, cell, key, cell, ...]
        decoded = {}
        for i in range(0, len(value), 2):
            item = value[i + 1]
            decoded[value[i]] = item[1] if _NULL <= item[0] <= _INTEGER else _plain_value(item)
        return decoded
    if kind == _DOUBLE:
        return float(value)
    if kind == _BOOLEAN:
        return value == "true"
    raise GraphQueryError(f"An adapter statement returned a value of FalkorDB type {kind}, which it never should.")


def _internal_id(end: Any) -> int:
    return end if isinstance(end, int) else end.id


def _converter(entity_ids: dict[int, Any]) -> Any:
    from falkordb import Edge, Node, Path

    def convert(value: Any) -> dict[str, Any] | None:
        if isinstance(value, Node):
            return {
                "id": value.properties.get("id"),
                "labels": sorted(value.labels or []),
                "props": visible_props(dict(value.properties)),
            }
        if isinstance(value, Edge):
            return {
                "type": value.relation,
                "src": entity_ids.get(_internal_id(value.src_node)),
                "dst": entity_ids.get(_internal_id(value.dest_node)),
                "props": visible_props(dict(value.properties)),
            }
        if isinstance(value, Path):
            return {"nodes": [convert(n) for n in value.nodes()], "edges": [convert(e) for e in value.edges()]}
        return None

    return convert
