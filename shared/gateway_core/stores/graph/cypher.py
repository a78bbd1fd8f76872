"""The openCypher both adapters run (FalkorDB and Neo4j 5 agree on all of it).

Every statement filters on `$tenant`, which the store binds itself. Labels and
relation types enter only through `identifiers.quote`; everything else is a
parameter. Entities are found by id, or through `name_keys`: the normalized keys
of their name and of an `aliases` list property (e.g. the English and Chinese
names of one entity), an indexed list that a question's n-grams are looked up in
(see `names`): never a scan over every name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ...models.graph import Edge, GraphData, Node
from .identifiers import quote
from .names import name_keys

BATCH_ROWS = 500
MAX_HOPS = 3
# Kept out of the props a caller sees: the subgraph and query rows carry them elsewhere.
HIDDEN_KEYS = ("id", "tenant", "type", "name_keys")

UPSERT_NODES = """
UNWIND $rows AS row
MERGE (n:Entity {{id: row.id, tenant: $tenant}})
ON CREATE SET n.sources = []
ON MATCH SET n.sources = coalesce(n.sources, [])
SET n:{label}, n.type = row.type, n.name = coalesce(row.name, n.name, row.id), n += row.props,
    n.sources = n.sources + [s IN row.sources WHERE NOT s IN n.sources],
    n.name_keys = coalesce(n.name_keys, []) + [k IN row.keys WHERE NOT k IN coalesce(n.name_keys, [])]
"""

# An endpoint that is not in the batch is merged by id: type Entity, named by its id.
UPSERT_EDGES = """
UNWIND $rows AS row
MERGE (a:Entity {{id: row.src, tenant: $tenant}})
ON CREATE SET a.type = 'Entity', a.name = row.src, a.sources = []
ON MATCH SET a.sources = coalesce(a.sources, [])
MERGE (b:Entity {{id: row.dst, tenant: $tenant}})
ON CREATE SET b.type = 'Entity', b.name = row.dst, b.sources = []
ON MATCH SET b.sources = coalesce(b.sources, [])
SET a.sources = a.sources + [s IN row.sources WHERE NOT s IN a.sources],
    b.sources = b.sources + [s IN row.sources WHERE NOT s IN b.sources]
MERGE (a)-[r:{rel}]->(b)
ON CREATE SET r.sources = [], r.tenant = $tenant
ON MATCH SET r.sources = coalesce(r.sources, [])
SET r += row.props, r.sources = r.sources + [s IN row.sources WHERE NOT s IN r.sources]
"""

# Seeds found another way than by id, as ids for the expansion to read: an id a write-time merge absorbed
# (kept in the survivor's indexed `merged_from` list) answers with the survivor; a name key with its entities.
SEEDS_BY_MERGED_ID = """
UNWIND $ids AS wanted
MATCH (n:Entity)
WHERE wanted IN n.merged_from AND n.tenant = $tenant
RETURN DISTINCT n.id AS id
LIMIT $limit
"""

SEEDS_BY_KEY = """
UNWIND $keys AS key
MATCH (n:Entity)
WHERE key IN n.name_keys AND n.tenant = $tenant
RETURN DISTINCT n.id AS id
LIMIT $limit
"""

# The entities whose name or alias has one of these keys, with how many passages mention them.
LINK = """
UNWIND $keys AS key
MATCH (n:Entity)
WHERE key IN n.name_keys AND n.tenant = $tenant
RETURN key, n.id AS id, n.name AS name, size(coalesce(n.sources, [])) AS mentions
LIMIT $limit
"""

# A whole expansion is one statement (one round trip instead of one per hop): the seeds by id, then each hop
# from the entities the previous hop reached first. Per frontier entity at most $fan_out facts; a hop reads at
# most $limit minus the distinct facts before it. Each hop is [facts, entities]: the facts it read first, as
# [src, dst, type, props], and the entities it reached first, as their property maps. Each fact and entity
# crosses the wire once, and only what the caller sees: the hidden properties are nulled on the server (a map
# projection, as no other map filter is common to both stores). On a warm /retrieve, decoding the store's reply
# is a good part of the gateway's CPU. (No per-row membership test: lists only have linear `IN`.)
_SEEDS = """
UNWIND $ids AS wanted
MATCH (n:Entity {id: wanted})
WHERE n.tenant = $tenant
WITH n LIMIT $limit
WITH collect(DISTINCT n) AS seeds
WITH seeds, seeds AS frontier, seeds AS known, [] AS facts, [] AS hops
"""
_HOP = """
CALL {
  WITH frontier
  UNWIND (CASE WHEN size(frontier) = 0 THEN [null] ELSE frontier END) AS s
  CALL {
    WITH s
    OPTIONAL MATCH (s)-[r]-(m:Entity)
    WHERE m.tenant = $tenant
    RETURN r, m
    LIMIT $fan_out
  }
  WITH r, m WHERE r IS NOT NULL
  WITH r, m LIMIT $limit
  RETURN collect([r, m]) AS found
}
WITH seeds, frontier, known, facts, hops,
     CASE WHEN size(facts) >= $limit THEN [] ELSE found[..($limit - size(facts))] END AS found
CALL {
  WITH found
  UNWIND found AS row
  RETURN collect(DISTINCT row[1]) AS reached, collect(DISTINCT row[0]) AS read
}
WITH seeds, known, hops, facts, [m IN reached WHERE NOT m IN known] AS frontier,
     [r IN read WHERE NOT r IN facts] AS fresh
WITH seeds, frontier, known + frontier AS known, facts + fresh AS facts,
     hops + [[[r IN fresh | [startNode(r).id, endNode(r).id, type(r), r {.*, tenant: null}]],
       [m IN frontier | m {.*, tenant: null, name_keys: null}]]] AS hops
"""
_COLUMNS = "[n IN seeds | n {.*, tenant: null, name_keys: null}] AS seeds, hops\n"


def expansion(hops: int) -> str:
    """The statement that reads the seeds and `hops` hops (0 to MAX_HOPS) around them."""
    return _walk(hops) + "RETURN " + _COLUMNS


def expansions(hops: int, parts: Sequence[int]) -> str:
    """Several independent expansions in one statement (one round trip): part k reads from `$ids_k` within
    `$limit_k` (`$fan_out` is shared); its row is marked `part` = k."""
    walk = _walk(hops)
    return "UNION ALL\n".join(
        walk.replace("$ids", f"$ids_{k}").replace("$limit", f"$limit_{k}") + f"RETURN {int(k)} AS part, " + _COLUMNS
        for k in parts
    )


def _walk(hops: int) -> str:
    return _SEEDS + _HOP * min(max(hops, 0), MAX_HOPS)


COUNT = """
MATCH (n:Entity) WHERE n.tenant = $tenant
WITH count(n) AS nodes
OPTIONAL MATCH (:Entity)-[r]->(:Entity) WHERE r.tenant = $tenant
RETURN nodes, count(r) AS edges
"""

# Deleting sources: first remove what only they stated, then strip them from what others state too.
# A node that never had sources (no provenance at all) is never deleted here.
DELETE_EDGES_ONLY_FROM = """
MATCH (:Entity)-[r]->(:Entity)
WHERE r.tenant = $tenant AND size(r.sources) > 0 AND all(s IN r.sources WHERE s IN $sources)
DELETE r
RETURN count(r) AS n
"""

STRIP_EDGE_SOURCES = """
MATCH (:Entity)-[r]->(:Entity)
WHERE r.tenant = $tenant AND any(s IN r.sources WHERE s IN $sources)
SET r.sources = [s IN r.sources WHERE NOT s IN $sources]
RETURN count(r) AS n
"""

DELETE_NODES_ONLY_FROM = """
MATCH (n:Entity)
WHERE n.tenant = $tenant AND size(n.sources) > 0 AND all(s IN n.sources WHERE s IN $sources)
DETACH DELETE n
RETURN count(n) AS n
"""

STRIP_NODE_SOURCES = """
MATCH (n:Entity)
WHERE n.tenant = $tenant AND any(s IN n.sources WHERE s IN $sources)
SET n.sources = [s IN n.sources WHERE NOT s IN $sources]
RETURN count(n) AS n
"""


def node_rows(nodes: Sequence[Node], sources: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Rows per label; the last occurrence of an id in the batch wins, like a dict update."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for node in {node.id: node for node in nodes}.values():
        rows.setdefault(node.type, []).append(
            {
                "id": node.id,
                "type": node.type,
                "name": node.name,
                "props": {p.key: p.value for p in node.props},
                "sources": list(dict.fromkeys(sources)),
                "keys": name_keys([node.name or node.id, *_aliases(node)]),
                "absorbed": _absorbed(node),
            }
        )
    return rows


def _aliases(node: Node) -> list[object]:
    value = next((p.value for p in node.props if p.key == "aliases"), None)
    return list(value) if isinstance(value, list) else [value]


def _absorbed(node: Node) -> list[str] | None:
    """The ids a `merged_from` prop lists (None: the row does not set it); read by the Neo4j adapter's key nodes."""
    for prop in node.props:
        if prop.key == "merged_from":
            values = prop.value if isinstance(prop.value, list) else [prop.value]
            return list(dict.fromkeys(v for v in values if isinstance(v, str)))
    return None


def edge_rows(edges: Sequence[Edge], sources: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Rows per relation type; one relation per (src, type, dst)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for edge in {(e.src, e.type, e.dst): e for e in edges}.values():
        rows.setdefault(edge.type, []).append(
            {
                "src": edge.src,
                "dst": edge.dst,
                "props": {p.key: p.value for p in edge.props},
                "sources": list(dict.fromkeys([*edge.sources, *sources])),
            }
        )
    return rows


def upsert_statements(
    data: GraphData, sources: Sequence[str], *, nodes: str = UPSERT_NODES
) -> list[tuple[str, list[dict[str, Any]]]]:
    """(Cypher, rows) batches, nodes (the `nodes` template) before edges; labels and relation types enter only
    through `quote`."""
    statements = [(nodes.format(label=quote(label)), rows) for label, rows in node_rows(data.nodes, sources).items()]
    statements += [(UPSERT_EDGES.format(rel=quote(rel)), rows) for rel, rows in edge_rows(data.edges, sources).items()]
    return [
        (cypher, rows[start : start + BATCH_ROWS])
        for cypher, rows in statements
        for start in range(0, len(rows), BATCH_ROWS)
    ]


def visible_props(props: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in props.items() if key not in HIDDEN_KEYS}


def json_safe(value: Any, entity: Callable[[Any], dict[str, Any] | None]) -> Any:
    """A query result value as JSON; `entity` converts the driver's own node, relationship and path types."""
    converted = entity(value)
    if converted is not None:
        return converted
    if isinstance(value, (list, tuple)):
        return [json_safe(item, entity) for item in value]
    if isinstance(value, dict):
        return {str(key): json_safe(item, entity) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):  # NaN and infinities are not JSON
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)  # temporal and spatial values, as their Cypher text


def leaves(value: Any) -> Iterator[Any]:
    """Every value inside nested lists and maps (a query result's cells)."""
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    else:
        yield value
