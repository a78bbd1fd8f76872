"""Neo4j adapter: the neo4j async driver over Bolt (`NEO4J_URI`; Neo4j 5, Aura).

Writes run in `execute_write`, reads in `execute_read` (READ access mode:
Neo4j itself refuses a write there), after the keyword pre-check.

Tenant isolation:
- Every node and relation this adapter writes carries `tenant`, and every
  statement it runs filters on `$tenant`, which it binds itself.
- With `NEO4J_DATABASE_PER_TENANT=true`, each tenant has its own database,
  `<GRAPH_NAME>-<tenant>` lower-cased with `_` turned into `-` (plus a short
  hash of the tenant when that changed the name, so names never collide);
  the operator creates these databases (`CREATE DATABASE kg-acme`). A raw
  `/graph/query` then physically cannot reach another tenant.
- Otherwise all tenants share one database (`NEO4J_DATABASE`, or the server's
  default): a raw `/graph/query` must use `$tenant` (400 otherwise), and a
  record that contains a node, relationship or path of another tenant (or of
  none) is dropped. Plain values (`RETURN n.name`) carry no tenant, so a
  deliberately wrong filter could still read them: for callers you do not
  trust with each other's data, use a database per tenant.
Records with another tenant's entities are dropped in both modes.

Finding entities by name key or absorbed id: Neo4j 5's range and text indexes
do not serve membership in a list property (`key IN n.name_keys`), so the
shared statements would scan every entity of the label. Here each key is a
node of its own, `(:EntityKey {tenant, key})-[:KEY_OF]->(:Entity)`, and each
id a merge absorbed `(:MergedId {tenant, absorbed})-[:MERGED_INTO]->(:Entity)`,
with a composite range index on (tenant, key) and (tenant, absorbed): a lookup
is an index seek on the key node and one hop: its cost follows the entities
having that key, not the graph's size. One key node per entity and key (not
one shared per key), so deleting an entity takes exactly its own, and
concurrent writes of different entities never lock a common node.
- The node upsert (`UPSERT_NODES`) makes an entity's key nodes equal its
  `name_keys` and, when the row sets `merged_from`, the ids it lists (merges,
  and a merge's undo, which rewrites the survivor's `merged_from`);
  `delete_sources` deletes the key nodes of the entities it deletes. These are
  the only writes that change either list.
- Key nodes are never labelled Entity, so `count`, `expand` and the tenant
  passes ignore them; a raw `/graph/query` sees them unless it matches `:Entity`.
- A database written before key nodes existed gets them once, at the first
  `ensure_schema` of a process (a `:GraphSchema {name: 'entity_keys'}` node
  records that it is done); an entity an older process writes after that is
  found by name again at its next write here. The older indexes on the
  `name_keys` and `merged_from` lists (`entity_name_keys`,
  `entity_merged_from`) serve nothing and may be dropped.
`INDEXES` lists every index; tests/unit/test_neo4j_lookups.py checks that each
lookup statement starts from one of them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

from ...errors import ApiError, BadRequest, DeadlineExceeded, UpstreamError
from ...observability import logger
from ...redaction import redact_url
from ...upstream import external_call
from . import cypher
from .base import DEFAULT_TIMEOUT_S, Budget, CypherGraphStore, GraphQueryError, GraphUnavailable
from .cypher import BATCH_ROWS, json_safe, leaves, visible_props
from .identifiers import check_tenant, mentions_parameter

KEY_LABEL, MERGED_LABEL = "EntityKey", "MergedId"


@dataclass(frozen=True)
class Index:
    """A range index the adapter creates (`CREATE INDEX ... IF NOT EXISTS`): a label and its properties."""

    name: str
    label: str
    properties: tuple[str, ...]

    @property
    def statement(self) -> str:
        on = ", ".join(f"n.{prop}" for prop in self.properties)
        return f"CREATE INDEX {self.name} IF NOT EXISTS FOR (n:{self.label}) ON ({on})"


# Every lookup anchors on one of these with equality on all of its properties
# (tests/unit/test_neo4j_lookups.py checks each statement against this list).
INDEXES = (
    Index("entity_id_tenant", "Entity", ("id", "tenant")),  # upserts, seeds by id, each hop's frontier
    Index("entity_key", KEY_LABEL, ("tenant", "key")),  # seeds and links by name key
    Index("merged_id", MERGED_LABEL, ("tenant", "absorbed")),  # seeds by an id a merge absorbed
    Index("entity_id", "Entity", ("id",)),  # raw queries by id
    Index("entity_name", "Entity", ("name",)),  # raw queries by name
    Index("entity_tenant", "Entity", ("tenant",)),  # the tenant-wide passes: count, delete_sources
)

# Keeps an entity's key nodes equal to its `name_keys` and, when the row sets `merged_from`, to the ids it lists;
# runs after the node's SET, so under the node's write lock: concurrent writes of one entity take turns here.
# A key node never has the label Entity (every node a caller writes has it): a caller's own node typed EntityKey,
# or relation typed KEY_OF, is never taken for one.
SYNC_KEY_NODES = f"""
WITH n, row
OPTIONAL MATCH (n)<-[:KEY_OF]-(k:{KEY_LABEL})
WHERE NOT k:Entity
WITH n, row, collect(k) AS key_nodes
FOREACH (stale IN [k IN key_nodes WHERE NOT k.key IN coalesce(n.name_keys, [])] | DETACH DELETE stale)
FOREACH (key IN [x IN coalesce(n.name_keys, []) WHERE NOT x IN [k IN key_nodes | k.key]] |
  CREATE (:{KEY_LABEL} {{{{tenant: n.tenant, key: key}}}})-[:KEY_OF]->(n))
WITH n, row
OPTIONAL MATCH (n)<-[:MERGED_INTO]-(m:{MERGED_LABEL})
WHERE row.absorbed IS NOT NULL AND NOT m:Entity
WITH n, row, collect(m) AS merged
FOREACH (stale IN [m IN merged WHERE NOT m.absorbed IN row.absorbed] | DETACH DELETE stale)
FOREACH (absorbed IN [x IN coalesce(row.absorbed, []) WHERE NOT x IN [m IN merged | m.absorbed]] |
  CREATE (:{MERGED_LABEL} {{{{tenant: n.tenant, absorbed: absorbed}}}})-[:MERGED_INTO]->(n))
"""

# The shared node upsert, then its key nodes (a template: `{label}` is the entity's type).
UPSERT_NODES = cypher.UPSERT_NODES + SYNC_KEY_NODES

SEEDS_BY_KEY = f"""
UNWIND $keys AS key
MATCH (k:{KEY_LABEL} {{tenant: $tenant, key: key}})-[:KEY_OF]->(n:Entity)
WHERE NOT k:Entity AND n.tenant = $tenant
RETURN DISTINCT n.id AS id
LIMIT $limit
"""

LINK = f"""
UNWIND $keys AS key
MATCH (k:{KEY_LABEL} {{tenant: $tenant, key: key}})-[:KEY_OF]->(n:Entity)
WHERE NOT k:Entity AND n.tenant = $tenant
RETURN DISTINCT key, n.id AS id, n.name AS name, size(coalesce(n.sources, [])) AS mentions
LIMIT $limit
"""

SEEDS_BY_MERGED_ID = f"""
UNWIND $ids AS wanted
MATCH (m:{MERGED_LABEL} {{tenant: $tenant, absorbed: wanted}})-[:MERGED_INTO]->(n:Entity)
WHERE NOT m:Entity AND n.tenant = $tenant
RETURN DISTINCT n.id AS id
LIMIT $limit
"""

# The shared delete, taking the deleted entities' key nodes with them.
DELETE_NODES_ONLY_FROM = f"""
MATCH (n:Entity)
WHERE n.tenant = $tenant AND size(n.sources) > 0 AND all(s IN n.sources WHERE s IN $sources)
OPTIONAL MATCH (n)<-[:KEY_OF|MERGED_INTO]-(k)
WHERE (k:{KEY_LABEL} OR k:{MERGED_LABEL}) AND NOT k:Entity
WITH n, collect(k) AS key_nodes
FOREACH (k IN key_nodes | DETACH DELETE k)
DETACH DELETE n
RETURN count(n) AS n
"""

# Entities written before key nodes existed get theirs once per database; a marker node records that it is done.
# The backfill's SET takes each entity's write lock first, as an upsert does, so two processes never both add.
BACKFILL_DONE = "MATCH (m:GraphSchema {name: 'entity_keys'}) RETURN m.name AS name"
BACKFILL_MARK = "MERGE (:GraphSchema {name: 'entity_keys'})"
BACKFILL_CANDIDATES = f"""
MATCH (n:Entity)
WHERE (size(coalesce(n.name_keys, [])) > 0 AND NOT (n)<-[:KEY_OF]-(:{KEY_LABEL}))
   OR (n.merged_from IS NOT NULL AND NOT (n)<-[:MERGED_INTO]-(:{MERGED_LABEL}))
RETURN n.id AS id, n.tenant AS tenant, n.merged_from AS merged_from
"""
BACKFILL = """
UNWIND $rows AS row
MATCH (n:Entity {id: row.id, tenant: row.tenant})
""" + SYNC_KEY_NODES.replace("{{", "{").replace("}}", "}")

# Relationships in a result name their endpoints by element id; these map them to entity ids.
ENTITY_IDS = (
    "MATCH (n:Entity) WHERE elementId(n) IN $keys AND n.tenant = $tenant RETURN elementId(n) AS key, n.id AS id"
)
# For Bolt servers without elementId() (FalkorDB's Bolt endpoint): the legacy numeric id.
LEGACY_ENTITY_IDS = "MATCH (n:Entity) WHERE id(n) IN $keys AND n.tenant = $tenant RETURN id(n) AS key, n.id AS id"


def database_name(prefix: str, tenant: str) -> str:
    """A valid Neo4j database name for a tenant (ASCII lower case, digits, '-'; 3-63 characters)."""
    plain = f"{prefix}-{check_tenant(tenant)}"
    name = re.sub(r"[^a-z0-9-]", "-", plain.lower())
    if not name[0].isalpha():
        name = f"db-{name}"
    if name != plain or len(name) > 63:
        name = f"{name[:54]}-{hashlib.sha256(tenant.encode()).hexdigest()[:8]}"
    return name


class Neo4jGraphStore(CypherGraphStore):
    UPSERT_NODES = UPSERT_NODES
    SEEDS_BY_KEY = SEEDS_BY_KEY
    LINK = LINK
    SEEDS_BY_MERGED_ID = SEEDS_BY_MERGED_ID
    DELETE_NODES_ONLY_FROM = DELETE_NODES_ONLY_FROM

    def __init__(
        self,
        uri: str,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        database_per_tenant: bool = False,
        database_prefix: str = "kg",
        driver: Any = None,
        retry_time: float = 1.0,
        max_connections: int = 100,
    ) -> None:
        """`driver`: an AsyncDriver to share (then `close` leaves it open); else one is created on first use."""
        super().__init__()
        self._uri, self._auth = uri, (user, password or "") if user else None
        self._database, self._per_tenant, self._prefix = database, database_per_tenant, database_prefix
        self._driver, self._owns_driver = driver, driver is None
        self._max_connections = max_connections
        self._retry_time = retry_time  # transient errors are retried this long, within the call's timeout
        self._element_ids = True

    def database_for(self, tenant: str) -> str | None:
        """The database a tenant's statements run in (None: the server's default database)."""
        return database_name(self._prefix, tenant) if self._per_tenant else self._database

    def _schema_key(self, tenant: str) -> str:
        return self.database_for(tenant) or ""

    # --- plumbing ----------------------------------------------------------------------------

    def _session(self, database: str | None, *, read: bool) -> Any:
        import neo4j

        if self._driver is None:  # lazily, on first use: constructing the store touches no network
            self._driver = neo4j.AsyncGraphDatabase.driver(
                self._uri,
                auth=self._auth,
                connection_timeout=3,
                # Waiting for a pooled connection is bounded by each call's own timeout (asyncio.timeout).
                connection_acquisition_timeout=DEFAULT_TIMEOUT_S,
                max_connection_pool_size=self._max_connections,
                max_transaction_retry_time=self._retry_time,
            )
        mode = neo4j.READ_ACCESS if read else neo4j.WRITE_ACCESS
        return self._driver.session(database=database, default_access_mode=mode)

    async def _execute(
        self,
        tenant: str,
        statement: str,
        params: dict[str, Any],
        timeout: float,
        *,
        read: bool,
        limit: int | None = None,
        only_tenant: bool = False,
        database: str | None | EllipsisType = ...,
    ) -> list[dict[str, Any]]:
        """Records as dicts of driver values; `only_tenant` drops records with another tenant's entities."""
        import neo4j

        async def work(tx: Any) -> list[dict[str, Any]]:
            result = await tx.run(statement, {**params, "tenant": tenant})
            records: list[dict[str, Any]] = []
            async for record in result:
                if only_tenant and not _of_tenant(record.values(), tenant):
                    continue
                records.append(dict(record.items()))
                if limit is not None and len(records) >= limit:
                    break
            return records

        database = self.database_for(tenant) if database is ... else database
        failures = external_call("The graph store", timeout, self._failure)
        async with failures, self._session(database, read=read) as session:
            run = session.execute_read if read else session.execute_write
            records: list[dict[str, Any]] = await run(neo4j.unit_of_work(timeout=timeout)(work))
        return records

    def _failure(self, exc: Exception) -> ApiError | None:
        """neo4j driver failures: a lost or refusing server, a server-side timeout, a refused statement."""
        from neo4j.exceptions import AuthError, ClientError, DriverError, Neo4jError, TransientError

        if isinstance(exc, AuthError | TransientError | DriverError | OSError):
            return GraphUnavailable(f"The graph store at {redact_url(self._uri)} is unavailable: {type(exc).__name__}.")
        if isinstance(exc, ClientError) and "TransactionTimedOut" in (exc.code or ""):
            return DeadlineExceeded("The graph store did not answer in time.")
        if isinstance(exc, ClientError):
            return GraphQueryError(f"Neo4j refused the query: {exc.message}")
        if isinstance(exc, Neo4jError):  # DatabaseError: the server failed
            return UpstreamError(f"Neo4j failed the query: {exc.message}")
        return None

    async def _read(self, tenant: str, statement: str, params: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        return await self._execute(tenant, statement, params, timeout, read=True)

    async def _write(self, tenant: str, statement: str, params: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        return await self._execute(tenant, statement, params, timeout, read=False)

    async def _create_indexes(self, tenant: str, timeout: float) -> None:
        budget = Budget(timeout)
        for index in INDEXES:
            try:
                await self._execute(tenant, index.statement, {}, budget.left(), read=False)
            except (GraphQueryError, UpstreamError) as exc:  # an index only speeds things up: go on without
                logger.warning(
                    "could not create a graph index", extra={"statement": index.statement, "reason": exc.message[:200]}
                )
        try:
            await self._backfill_key_nodes(tenant, budget)
        except (GraphQueryError, UpstreamError) as exc:  # tried again by the next process
            logger.warning("entity key nodes not backfilled", extra={"reason": exc.message[:200]})

    async def _backfill_key_nodes(self, tenant: str, budget: Budget) -> None:
        """Key nodes for the entities a version without them wrote (every tenant of this database), once."""
        if await self._read(tenant, BACKFILL_DONE, {}, budget.left()):
            return
        rows = [
            {"id": row["id"], "tenant": row["tenant"], "absorbed": _absorbed_ids(row["merged_from"])}
            for row in await self._read(tenant, BACKFILL_CANDIDATES, {}, budget.left())
        ]
        for start in range(0, len(rows), BATCH_ROWS):
            await self._write(tenant, BACKFILL, {"rows": rows[start : start + BATCH_ROWS]}, budget.left())
        await self._write(tenant, BACKFILL_MARK, {}, budget.left())
        if rows:
            logger.info("entity key nodes backfilled", extra={"entities": len(rows)})

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
        """A read-only query in a READ transaction; rows as JSON-safe dicts (see the module's tenant rule)."""
        params = self._checked_query(tenant, cypher, params)
        if not self._per_tenant and not mentions_parameter(cypher, "tenant"):
            raise BadRequest(
                "Graph queries must filter on the caller's tenant with $tenant, "
                "e.g. MATCH (n:Entity) WHERE n.tenant = $tenant RETURN n."
            )
        budget = Budget(timeout)
        if limit <= 0:
            return []
        try:
            records = await self._execute(
                tenant, cypher, params, budget.left(), read=True, limit=limit, only_tenant=True
            )
        except UpstreamError as exc:  # a syntax error or a refused write: the caller's query (4xx)
            raise BadRequest(exc.message) from exc
        entity_ids = await self._entity_ids(tenant, records, budget)
        convert = _converter(entity_ids)
        return [{key: json_safe(value, convert) for key, value in record.items()} for record in records]

    async def _entity_ids(self, tenant: str, records: list[dict[str, Any]], budget: Budget) -> dict[str, Any]:
        """Element id -> entity id for the nodes a result mentions, looking up relationship endpoints."""
        from neo4j.graph import Node, Path, Relationship

        nodes: list[Any] = []
        wanted: set[str] = set()
        for value in leaves([list(record.values()) for record in records]):
            for item in [*value.nodes, *value.relationships] if isinstance(value, Path) else [value]:
                if isinstance(item, Relationship):
                    ends = [end for end in (item.start_node, item.end_node) if end is not None]
                    wanted.update(end.element_id for end in ends)
                    nodes.extend(ends)  # hydrated when the node appears elsewhere in the result
                elif isinstance(item, Node):
                    nodes.append(item)
        known = {node.element_id: node["id"] for node in nodes if "id" in node}
        missing = sorted(wanted - set(known))
        if missing:
            known.update(await self._lookup_entity_ids(tenant, missing, budget))
        return known

    async def _lookup_entity_ids(self, tenant: str, element_ids: list[str], budget: Budget) -> dict[str, Any]:
        if self._element_ids:
            try:
                rows = await self._read(tenant, ENTITY_IDS, {"keys": element_ids}, budget.left())
                return {row["key"]: row["id"] for row in rows}
            except (GraphQueryError, UpstreamError):
                self._element_ids = False  # a server without elementId(): use the numeric id from now on
        numeric = {int(match.group()): key for key in element_ids if (match := re.search(r"\d+$", key))}
        rows = await self._read(tenant, LEGACY_ENTITY_IDS, {"keys": list(numeric)}, budget.left())
        return {numeric[row["key"]]: row["id"] for row in rows if row["key"] in numeric}

    async def ping(self, *, timeout: float | None = None) -> None:
        await self._execute("default", "RETURN 1 AS ok", {}, Budget(timeout).left(), read=True, database=self._database)

    async def close(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None and self._owns_driver:
            await driver.close()


def _absorbed_ids(merged_from: Any) -> list[str] | None:
    """The ids a stored `merged_from` lists, as the upsert's rows give them (`cypher.node_rows`)."""
    if merged_from is None:
        return None
    values = merged_from if isinstance(merged_from, list) else [merged_from]
    return list(dict.fromkeys(v for v in values if isinstance(v, str)))


def _of_tenant(values: Any, tenant: str) -> bool:
    """Whether every node and relationship among these values belongs to `tenant`."""
    from neo4j.graph import Node, Path, Relationship

    for value in leaves(list(values)):
        items = [*value.nodes, *value.relationships] if isinstance(value, Path) else [value]
        if any(isinstance(item, (Node, Relationship)) and item.get("tenant") != tenant for item in items):
            return False
    return True


def _converter(entity_ids: dict[str, Any]) -> Any:
    from neo4j.graph import Node, Path, Relationship

    def end_id(node: Any) -> Any:
        return None if node is None else entity_ids.get(node.element_id)

    def convert(value: Any) -> dict[str, Any] | None:
        if isinstance(value, Node):
            return {"id": value.get("id"), "labels": sorted(value.labels), "props": visible_props(dict(value))}
        if isinstance(value, Relationship):
            return {
                "type": value.type,
                "src": end_id(value.start_node),
                "dst": end_id(value.end_node),
                "props": visible_props(dict(value)),
            }
        if isinstance(value, Path):
            return {"nodes": [convert(n) for n in value.nodes], "edges": [convert(r) for r in value.relationships]}
        return None

    return convert
