"""What a caller's text may become inside Cypher: identifiers, quoting, the read-only pre-check."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway_core.errors import BadRequest, Unprocessable
from gateway_core.models.graph import Edge, GraphData, Node, Prop
from gateway_core.settings import Settings
from gateway_core.stores.graph.factory import create_graph_store
from gateway_core.stores.graph.falkordb import FalkorDBGraphStore
from gateway_core.stores.graph.identifiers import (
    assert_read_only,
    check_tenant,
    is_identifier,
    mentions_parameter,
    quote,
)
from gateway_core.stores.graph.neo4j import Neo4jGraphStore, database_name

VALID = ["Person", "WORKS_AT", "_private", "人物", "創立", "名前2", "Éléphant", "व्यक्ति", "a" * 64]
# Never safe inside backticks: refused as a type, a key, and by quote itself.
UNSAFE = ["", "a`b", "`x`", "a\x00b", "a\u200bb", "a" * 65]
# Refused as keys (stored as given); as types, whitespace is trimmed or becomes _ (see test_migration_graph).
UNTRIMMED = ["a\n", " lead", "trail ", "a\u2028b"]
# Safe to quote, so fine as property keys, but not identifiers even after `as_identifier`: refused as types.
NOT_TYPES = ["x)-[:Y]", "1abc", "a.b", "$x", "a;b", "²a", "n:Label", "job/title"]


@pytest.mark.parametrize("name", VALID)
def test_unicode_identifiers_are_accepted_and_quoted(name):
    assert is_identifier(name)
    assert quote(name) == f"`{name}`"


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_names_are_refused_everywhere(name):
    with pytest.raises(Unprocessable):
        quote(name)  # defence in depth: refused even if it slipped past the models
    with pytest.raises(ValidationError):
        Node(id="x", type=name)
    with pytest.raises(ValidationError):
        Edge(src="a", dst="b", type=name)
    with pytest.raises(ValidationError):
        Prop(key=name, value=1)


@pytest.mark.parametrize("name", UNTRIMMED)
def test_untrimmed_property_keys_are_refused(name):
    with pytest.raises(ValidationError):
        Prop(key=name, value=1)


@pytest.mark.parametrize("name", NOT_TYPES)
def test_names_that_are_no_identifier_are_refused_as_types(name):
    with pytest.raises(ValidationError):
        Node(id="x", type=name)
    with pytest.raises(ValidationError):
        Edge(src="a", dst="b", type=name)


@pytest.mark.parametrize("name", NOT_TYPES)
def test_names_safe_to_quote_are_property_keys_stored_as_given(name):
    assert (Prop(key=name, value=1).key, quote(name)) == (name, f"`{name}`")


@pytest.mark.parametrize("key", ["id", "tenant", "type", "name", "sources"])
def test_reserved_keys_cannot_be_set_through_props(key):
    with pytest.raises(ValidationError, match="reserved"):
        Prop(key=key, value="x")


def test_prop_values_are_primitives_or_lists_of_one_type():
    assert Prop(key="tags", value=["a", "b"]).value == ["a", "b"]
    assert Prop(key="n", value=None).value is None
    for bad in ([1, "a"], {"nested": 1}, [["a"]], float("nan"), [1.0, float("inf")]):
        with pytest.raises(ValidationError):
            Prop(key="x", value=bad)


def test_graph_data_is_the_request_shape():
    data = GraphData.model_validate(
        {
            "nodes": [{"id": "p1", "type": "人物", "name": "林小明", "props": [{"key": "born", "value": 1980}]}],
            "edges": [{"src": "p1", "dst": "c1", "type": "創立", "sources": ["d#0"]}],
        }
    )
    assert (data.nodes[0].props[0].key, data.edges[0].sources) == ("born", ["d#0"])
    with pytest.raises(ValidationError):
        Node(id="", type="Person")


@pytest.mark.parametrize("tenant", ["acme", "Acme_2", "a-b", "x" * 64])
def test_valid_tenants(tenant):
    assert check_tenant(tenant) == tenant


@pytest.mark.parametrize("tenant", ["", "a b", "a/b", "../x", "x" * 65, "租户"])
def test_invalid_tenants(tenant):
    with pytest.raises(BadRequest):
        check_tenant(tenant)


# --- the read-only pre-check ---------------------------------------------------------------------

READS = [
    "MATCH (n:Entity) WHERE n.tenant = $tenant RETURN n",
    "MATCH (n) RETURN 'CREATE (x)' AS s, \"MERGE\" AS t",
    "MATCH (n) // DELETE everything\nRETURN n",
    "MATCH (n) /* SET n.x = 1 */ RETURN n",
    "MATCH (n) WHERE n.created > 1 AND n.`set` = 2 RETURN n.reset, n.settings, $create",
    "MATCH (n:`SET`) RETURN n.delete",
    "CALL db.labels() YIELD label RETURN label",
    "CALL db.idx.fulltext.queryNodes('Entity', 'lin') YIELD node RETURN node",
    "MATCH (n) WITH n CALL { WITH n MATCH (n)--(m) RETURN m } RETURN m",
    "RETURN 'it\\'s CREATE' AS s",
]

WRITES = [
    ("CREATE (n)", "CREATE"),
    ("create (n)", "CREATE"),
    ("MATCH (n) DETACH DELETE n", "DETACH"),
    ("MATCH (n)\nDeLeTe n", "DELETE"),
    ("MATCH (n) SET n.x = 1", "SET"),
    ("MATCH (n) REMOVE n.x", "REMOVE"),
    ("MERGE (n:X {id: 1})", "MERGE"),
    ("DROP INDEX foo", "DROP"),
    ("LOAD  CSV FROM 'file:///x' AS l RETURN l", "LOAD CSV"),
    ("MATCH (n) FOREACH (x IN [1] | SET n.y = x)", "FOREACH"),
    ("MATCH (n) RETURN n /* comment */ CREATE (m)", "CREATE"),
    ("RETURN 'a' // comment\nCREATE (m)", "CREATE"),
    ("USE other MATCH (n) RETURN n", "USE"),
    ("CALL db.idx.fulltext.createNodeIndex('E', 'name')", "db.idx.fulltext.createNodeIndex"),
    ("CALL db.idx.fulltext.drop('E')", "db.idx.fulltext.drop"),
    ("call apoc.create.node(['X'], {})", "apoc.create.node"),
    ("CALL `apoc.periodic.iterate`('a', 'b', {})", "apoc.periodic.iterate"),
    ("CALL dbms.killQuery('1')", "dbms.killQuery"),
    ("CALL db.createLabel('X')", "db.createLabel"),
    ("CALL db.index.fulltext.createNodeIndex('e', ['E'], ['name'])", "db.index.fulltext.createNodeIndex"),
]


@pytest.mark.parametrize("cypher", READS)
def test_reads_pass(cypher):
    assert_read_only(cypher)


@pytest.mark.parametrize(("cypher", "named"), WRITES)
def test_writes_are_refused_with_the_reason(cypher, named):
    with pytest.raises(BadRequest) as refused:
        assert_read_only(cypher)
    assert named in refused.value.message and "read-only" in refused.value.message
    assert refused.value.status == 400


def test_the_tenant_parameter_must_be_used_in_code():
    assert mentions_parameter("MATCH (n) WHERE n.tenant = $tenant RETURN n", "tenant")
    assert mentions_parameter("MATCH (n) WHERE n.tenant = $`tenant` RETURN n", "tenant")
    assert not mentions_parameter("MATCH (n) RETURN n // $tenant", "tenant")
    assert not mentions_parameter("MATCH (n) RETURN '$tenant'", "tenant")
    assert not mentions_parameter("MATCH (n) WHERE n.t = $tenants RETURN n", "tenant")


# --- names and configuration ---------------------------------------------------------------------


def test_neo4j_database_names_are_valid_and_distinct():
    names = {tenant: database_name("kg", tenant) for tenant in ("acme", "Acme", "a_b", "a-b", "x" * 64, "9lives")}
    assert names["acme"] == "kg-acme" and names["a-b"] == "kg-a-b"
    assert len(set(names.values())) == len(names)
    assert all(
        3 <= len(name) <= 63 and name == name.lower() and name[0].isalpha() and "_" not in name
        for name in names.values()
    )


def test_the_factory_picks_the_configured_adapter_without_connecting():
    assert create_graph_store(Settings()) is None
    falkor = create_graph_store(Settings(falkordb_url="redis://127.0.0.1:1", graph_name="g"))
    assert isinstance(falkor, FalkorDBGraphStore) and falkor.graph_key("acme") == "g_acme"
    neo = create_graph_store(
        Settings(
            neo4j_uri="bolt://127.0.0.1:1",
            falkordb_url="redis://127.0.0.1:1",
            neo4j_database_per_tenant=True,
            graph_name="g",
        )
    )
    assert isinstance(neo, Neo4jGraphStore) and neo.database_for("acme") == "g-acme"
    single = create_graph_store(Settings(neo4j_uri="bolt://127.0.0.1:1", neo4j_database="graphs"))
    assert isinstance(single, Neo4jGraphStore) and single.database_for("acme") == "graphs"
    assert (falkor._db, neo._driver) == (None, None)  # nothing opened yet
