"""Every entity lookup of the Neo4j adapter starts from an index it declares: a static check of its Cypher.

No Neo4j server runs here (the Neo4j adapter's integration tests use FalkorDB's Bolt port, whose
planner is FalkorDB's), so an EXPLAIN of a Neo4j plan is impossible. Instead this reads each statement
the adapter runs to find entities and checks where every MATCH/MERGE starts: a pattern whose first
node is not bound yet must name a label and give equality predicates (`{prop: value}` or
`WHERE var.prop = value`) on all properties of one of the adapter's `INDEXES` on that label. That is
the rule by which a Neo4j 5 range index (single-property or composite) serves a lookup as an index
seek; it does not serve `value IN n.list_property`, which is why the shared statements that look in
`name_keys`/`merged_from` fail this check (the negative control below), and the adapter's own look
up key nodes instead. The index on `tenant` alone does not count: it narrows a lookup to a tenant,
whose size grows with the graph.
"""

from __future__ import annotations

import re

import pytest

from gateway_core.stores.graph import cypher, neo4j
from gateway_core.stores.graph.base import CypherGraphStore
from gateway_core.stores.graph.neo4j import INDEXES, Neo4jGraphStore

# What the adapter runs to find entities by id, name key or absorbed id (templates filled in).
LOOKUPS = {
    "SEEDS_BY_MERGED_ID": Neo4jGraphStore.SEEDS_BY_MERGED_ID,
    "SEEDS_BY_KEY": Neo4jGraphStore.SEEDS_BY_KEY,
    "LINK": Neo4jGraphStore.LINK,
    "EXPANSION": cypher.expansion(cypher.MAX_HOPS),
    "UPSERT_NODES": Neo4jGraphStore.UPSERT_NODES.format(label="`Company`"),
    "UPSERT_EDGES": cypher.UPSERT_EDGES.format(rel="`WORKS_AT`"),
    "BACKFILL": neo4j.BACKFILL,
}
# What visits a whole tenant by design (deleting by source), through the index on tenant.
TENANT_PASSES = {"DELETE_NODES_ONLY_FROM": Neo4jGraphStore.DELETE_NODES_ONLY_FROM}

CLAUSE = re.compile(r"\b(?:OPTIONAL\s+MATCH|MATCH|MERGE)\s*\(\s*(\w*)\s*(?::\s*`?(\w+)`?)?\s*(\{[^{}]*\})?\s*\)")
NEXT_CLAUSE = re.compile(r"\b(?:OPTIONAL\s+MATCH|MATCH|MERGE|WITH|RETURN|CALL|UNWIND|SET|FOREACH|DELETE|DETACH)\b")
NODE_VARIABLE = re.compile(r"\(\s*(\w+)\s*[:){\s]")


def anchors(statement: str) -> list[tuple[str, str | None, set[str]]]:
    """(variable, label, properties with an equality predicate) of each clause starting from an unbound node."""
    found = []
    for clause in CLAUSE.finditer(statement):
        variable, label, inline = clause.group(1), clause.group(2), clause.group(3) or ""
        bound = set(NODE_VARIABLE.findall(statement[: clause.start()]))
        bound |= set(re.findall(r"\bAS\s+(\w+)", statement[: clause.start()]))
        if variable and variable in bound:
            continue
        properties = set(re.findall(r"(\w+)\s*:", inline))
        rest = statement[clause.end() :]
        where = re.match(r"\s*(?:<?-\[[^\]]*\]->?\s*\([^)]*\)\s*)*WHERE\b(.*)", rest, re.DOTALL)
        if where and variable:
            condition = where.group(1)
            end = NEXT_CLAUSE.search(condition)
            condition = condition[: end.start()] if end else condition
            properties |= set(re.findall(rf"\b{variable}\.(\w+)\s*=(?!~)", condition))
        found.append((variable, label, properties))
    return found


def served(label: str | None, properties: set[str]) -> bool:
    """Whether a declared index (not the tenant-only one) has equality on all of its properties here."""
    return any(
        index.label == label and set(index.properties) <= properties and index.properties != ("tenant",)
        for index in INDEXES
    )


@pytest.mark.parametrize("name", sorted(LOOKUPS))
def test_every_lookup_starts_from_a_declared_index(name: str) -> None:
    found = anchors(LOOKUPS[name])
    assert found, f"{name}: no MATCH/MERGE starting point found"
    for variable, label, properties in found:
        assert served(label, properties), f"{name}: ({variable}:{label}) on {sorted(properties)} has no index"


@pytest.mark.parametrize("name", ["SEEDS_BY_KEY", "LINK", "SEEDS_BY_MERGED_ID"])
def test_the_shared_list_membership_lookups_are_label_scans_on_neo4j(name: str) -> None:
    """The negative control: the statements FalkorDB runs (`key IN n.name_keys`) have no Neo4j index to start from."""
    assert not all(served(label, properties) for _, label, properties in anchors(getattr(cypher, name)))
    assert getattr(Neo4jGraphStore, name) != getattr(cypher, name)


def test_every_statement_the_adapter_runs_is_classified() -> None:
    statements = {name for name in vars(CypherGraphStore) if name.isupper()}
    assert statements <= set(LOOKUPS) | set(TENANT_PASSES), statements - set(LOOKUPS) - set(TENANT_PASSES)


@pytest.mark.parametrize("name", sorted(TENANT_PASSES))
def test_the_tenant_passes_start_from_the_tenant_index(name: str) -> None:
    [(_, label, properties)] = anchors(TENANT_PASSES[name])
    assert label == "Entity" and "tenant" in properties
    assert any(index.label == "Entity" and index.properties == ("tenant",) for index in INDEXES)


def test_no_neo4j_lookup_looks_inside_a_list_property() -> None:
    for name, statement in LOOKUPS.items():
        for where in re.findall(r"WHERE\b[^\n]*", statement):
            assert not re.search(r"\w+\s+IN\s+\w+\.(name_keys|merged_from)\b", where), f"{name}: {where}"


def test_the_indexes_are_created_by_name_and_only_once() -> None:
    names = [index.name for index in INDEXES]
    assert len(names) == len(set(names))
    assert INDEXES[0].statement == "CREATE INDEX entity_id_tenant IF NOT EXISTS FOR (n:Entity) ON (n.id, n.tenant)"
    assert {index.label for index in INDEXES} == {"Entity", neo4j.KEY_LABEL, neo4j.MERGED_LABEL}
