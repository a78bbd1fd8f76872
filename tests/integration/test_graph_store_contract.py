"""One contract, both adapters: FalkorDB over RESP, and the Neo4j adapter over FalkorDB's Bolt port.

FalkorDB's Bolt endpoint hangs the next connection after a client closes one, so
the Neo4j adapter shares ONE driver for this whole module (module loop), and no
test here cuts a Bolt call short (a timeout would close its connection).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

import pytest

from gateway_core.errors import BadRequest, DeadlineExceeded
from gateway_core.models.graph import GraphData, Subgraph
from gateway_core.stores.graph import cypher
from gateway_core.stores.graph.base import Expansion, GraphQueryError, GraphUnavailable
from gateway_core.stores.graph.falkordb import FalkorDBGraphStore
from gateway_core.stores.graph.names import name_key, question_spans
from gateway_core.stores.graph.neo4j import Neo4jGraphStore
from infra.local.falkordb_server import LocalFalkorDB, free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

GRAPH = GraphData.model_validate(
    {
        "nodes": [
            {
                "id": "person:lin",
                "type": "人物",
                "name": "林小明",
                "props": [{"key": "born", "value": 1980}, {"key": "langs", "value": ["zh", "en"]}],
            },
            {
                "id": "company:nw",
                "type": "Company",
                "name": "Northwind Thermal",
                "props": [{"key": "aliases", "value": ["北風熱能"]}],
            },
            {"id": "place:taichung", "type": "Place", "name": "Taichung"},
        ],
        "edges": [
            {"src": "person:lin", "dst": "company:nw", "type": "創立", "props": [{"key": "year", "value": 2011}]},
            {"src": "company:nw", "dst": "place:taichung", "type": "LOCATED_IN"},
        ],
    }
)


def graph(nodes: Sequence[dict] = (), edges: Sequence[dict] = ()) -> GraphData:
    return GraphData.model_validate({"nodes": list(nodes), "edges": list(edges)})


def ids(subgraph) -> set[str]:
    return {node.id for node in subgraph.nodes}


async def node_sources(store, tenant: str) -> dict[str, list[str]]:
    rows = await store.query(tenant, "MATCH (n:Entity) WHERE n.tenant = $tenant RETURN n.id AS id, n.sources AS s")
    return {row["id"]: sorted(row["s"]) for row in rows}


async def edge_sources(store, tenant: str) -> dict[str, list[str]]:
    rows = await store.query(
        tenant,
        "MATCH (a:Entity)-[r]->(b:Entity) WHERE r.tenant = $tenant RETURN a.id + '>' + b.id AS key, r.sources AS s",
    )
    return {row["key"]: sorted(row["s"]) for row in rows}


# --- writing -------------------------------------------------------------------------------------


async def test_upsert_counts_and_is_idempotent(graph_store, graph_tenant):
    first = await graph_store.upsert(graph_tenant, GRAPH, sources=["d#0"])
    assert (first.nodes, first.edges) == (3, 2)
    assert await graph_store.count(graph_tenant) == (3, 2)
    before = (await node_sources(graph_store, graph_tenant), await edge_sources(graph_store, graph_tenant))
    await graph_store.upsert(graph_tenant, GRAPH, sources=["d#0"])
    assert await graph_store.count(graph_tenant) == (3, 2)
    assert (await node_sources(graph_store, graph_tenant), await edge_sources(graph_store, graph_tenant)) == before
    await graph_store.ensure_schema(graph_tenant)  # cached, and harmless when called again


async def test_provenance_is_merged_without_duplicates(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, GRAPH, sources=["d#0"])
    await graph_store.upsert(graph_tenant, GRAPH, sources=["d#1", "d#0", "d#1"])
    edge_only = graph(edges=[{"src": "person:lin", "dst": "company:nw", "type": "創立", "sources": ["e#9", "d#0"]}])
    await graph_store.upsert(graph_tenant, edge_only)
    assert await edge_sources(graph_store, graph_tenant) == {
        "person:lin>company:nw": ["d#0", "d#1", "e#9"],
        "company:nw>place:taichung": ["d#0", "d#1"],
    }
    nodes = await node_sources(graph_store, graph_tenant)
    assert nodes["person:lin"] == ["d#0", "d#1", "e#9"] and nodes["place:taichung"] == ["d#0", "d#1"]


async def test_an_edge_endpoint_outside_the_batch_is_merged_by_id(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, graph(nodes=[{"id": "x:1", "type": "Thing", "name": "One"}]))
    await graph_store.upsert(graph_tenant, graph(edges=[{"src": "x:1", "dst": "x:2", "type": "LINKS"}]))
    assert await graph_store.count(graph_tenant) == (2, 1)
    found = {node.id: node for node in (await graph_store.expand(graph_tenant, ids=["x:1"])).nodes}
    assert (found["x:2"].type, found["x:2"].props["name"]) == ("Entity", "x:2")
    assert (found["x:1"].type, found["x:1"].props["name"]) == ("Thing", "One")  # not overwritten by the edge


async def test_values_round_trip_exactly_as_parameters(graph_store, graph_tenant):
    tricky = "Robert'); MATCH (n) DETACH DELETE n //\" `x` \\ {$tenant}\n林"
    if isinstance(graph_store, Neo4jGraphStore):  # FalkorDB's Bolt mangles ' and \ in parameters (real Neo4j does not)
        tricky = tricky.replace("'", "").replace("\\", "")
    await graph_store.upsert(
        graph_tenant,
        graph(
            nodes=[
                {
                    "id": tricky,
                    "type": "Thing",
                    "name": tricky,
                    "props": [
                        {"key": "note", "value": tricky},
                        {"key": "scores", "value": [1.5, 2.5]},
                        {"key": "missing", "value": None},
                    ],
                }
            ]
        ),
    )
    rows = await graph_store.query(
        graph_tenant,
        "MATCH (n:Thing) WHERE n.tenant = $tenant AND n.id = $id "
        "RETURN n.name AS name, n.note AS note, n.scores AS scores",
        {"id": tricky},
    )
    assert rows == [{"name": tricky, "note": tricky, "scores": [1.5, 2.5]}]


# --- reading -------------------------------------------------------------------------------------


async def test_chinese_labels_names_and_expansion_from_chinese_text(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, GRAPH)
    from_text = await graph_store.expand(graph_tenant, text="林小明創立了什麼公司？", max_hops=1)
    assert ids(from_text) == {"person:lin", "company:nw"}
    assert [(e.src, e.type, e.dst) for e in from_text.edges] == [("person:lin", "創立", "company:nw")]
    lin = next(node for node in from_text.nodes if node.id == "person:lin")
    assert (lin.type, lin.props["name"], lin.props["born"]) == ("人物", "林小明", 1980)
    by_alias = await graph_store.expand(graph_tenant, text="北風熱能在哪裡", max_hops=1)
    assert "place:taichung" in ids(by_alias)
    rows = await graph_store.query(
        graph_tenant,
        "MATCH (p:`人物`)-[:`創立`]->(c) WHERE p.tenant = $tenant RETURN p.name AS founder, c.name AS company",
    )
    assert rows == [{"founder": "林小明", "company": "Northwind Thermal"}]


async def test_link_finds_a_name_through_its_key_whatever_the_case_width_and_punctuation(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, GRAPH)
    linked = await graph_store.link(graph_tenant, [name_key("ＮＯＲＴＨＷＩＮＤ   thermal!")])
    assert [(name.id, name.name) for name in linked] == [("company:nw", "Northwind Thermal")]


async def test_link_resolves_a_name_and_its_alias_to_one_node(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, GRAPH)
    linked = await graph_store.link(graph_tenant, [name_key("北風熱能"), name_key("Northwind Thermal")])
    assert {name.id for name in linked} == {"company:nw"}


async def test_a_short_name_does_not_match_inside_a_longer_word(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, graph(nodes=[{"id": "thing:hat", "type": "Thing", "name": "Hat"}]))
    question = "What did Jonathan say?"
    assert await graph_store.expand(graph_tenant, text=question) == Subgraph()
    assert await graph_store.link(graph_tenant, [span.key for span in question_spans(question)]) == []


async def test_link_counts_the_passages_that_mention_an_entity(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, GRAPH, sources=["doc#0"])
    await graph_store.upsert(graph_tenant, graph(nodes=[GRAPH.nodes[2].model_dump()]), sources=["doc#1"])
    linked = await graph_store.link(graph_tenant, [name_key("Taichung")])
    assert [(name.id, name.mentions) for name in linked] == [("place:taichung", 2)]


async def test_expand_by_id_name_and_text_with_hops(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, GRAPH)
    assert ids(await graph_store.expand(graph_tenant, ids=["person:lin"], max_hops=1)) == {"person:lin", "company:nw"}
    assert ids(await graph_store.expand(graph_tenant, ids=["person:lin"], max_hops=2)) == {
        "person:lin",
        "company:nw",
        "place:taichung",
    }
    by_name = await graph_store.expand(graph_tenant, names=["NORTHWIND thermal"], max_hops=1)
    assert ids(by_name) == {"company:nw", "person:lin", "place:taichung"}
    by_text = await graph_store.expand(graph_tenant, text="Where is TAICHUNG?", max_hops=1)
    assert ids(by_text) == {"place:taichung", "company:nw"}
    edge = next(e for e in by_text.edges if e.type == "LOCATED_IN")
    assert (edge.src, edge.dst, edge.props["sources"]) == ("company:nw", "place:taichung", [])
    assert (await graph_store.expand(graph_tenant, text="nothing known here")).nodes == []
    assert (await graph_store.expand(graph_tenant)).nodes == []


async def test_an_expansion_carries_every_own_property_and_none_of_the_stores_bookkeeping(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, GRAPH, sources=["doc.md#0"])
    typed = [{"key": "ratio", "value": 0.25}, {"key": "active", "value": True}, {"key": "weights", "value": [0.5, 2.5]}]
    await graph_store.upsert(
        graph_tenant,
        graph(
            nodes=[{"id": "metric:1", "type": "Metric", "name": "Yield", "props": typed}],
            edges=[{"src": "place:taichung", "dst": "metric:1", "type": "HAS", "props": typed}],
        ),
    )
    found = await graph_store.expand(graph_tenant, ids=["person:lin"], max_hops=3)
    props = {node.id: node.props for node in found.nodes}
    assert props["person:lin"] == {"name": "林小明", "born": 1980, "langs": ["zh", "en"], "sources": ["doc.md#0"]}
    assert props["company:nw"] == {"name": "Northwind Thermal", "aliases": ["北風熱能"], "sources": ["doc.md#0"]}
    assert props["metric:1"] == {"name": "Yield", "ratio": 0.25, "active": True, "weights": [0.5, 2.5], "sources": []}
    assert {(e.src, e.type, e.dst): e.props for e in found.edges} == {
        ("person:lin", "創立", "company:nw"): {"year": 2011, "sources": ["doc.md#0"]},
        ("company:nw", "LOCATED_IN", "place:taichung"): {"sources": ["doc.md#0"]},
        ("place:taichung", "HAS", "metric:1"): {"ratio": 0.25, "active": True, "weights": [0.5, 2.5], "sources": []},
    }


async def test_the_expansion_reply_lists_each_fact_once_without_the_stores_bookkeeping(graph_store, graph_tenant):
    """What crosses the wire is what the gateway decodes: a fact read again from its other end is not resent,
    and the stores' own properties (the name keys can be many) stay on the server."""
    await graph_store.upsert(graph_tenant, GRAPH, sources=["doc.md#0"])
    statement, params = cypher.expansion(3), {"ids": ["person:lin"], "limit": 50, "fan_out": 10}
    [reply] = await graph_store._read(graph_tenant, statement, params, 10.0)
    facts = [(src, rel, dst) for hop_facts, _ in reply["hops"] for src, dst, rel, _ in hop_facts]
    assert sorted(facts) == [("company:nw", "LOCATED_IN", "place:taichung"), ("person:lin", "創立", "company:nw")]
    entities = [*reply["seeds"], *(entity for _, hop_entities in reply["hops"] for entity in hop_entities)]
    assert [entity["id"] for entity in entities] == ["person:lin", "company:nw", "place:taichung"]
    assert {(entity.get("tenant"), entity.get("name_keys")) for entity in entities} == {(None, None)}


async def test_expand_by_an_id_a_merge_absorbed_answers_with_the_node_that_absorbed_it(graph_store, graph_tenant):
    survivor = {"id": "company:nw", "type": "Company", "name": "Northwind", "props": {"merged_from": ["nw-2"]}}
    await graph_store.upsert(graph_tenant, graph(nodes=[survivor]))
    assert ids(await graph_store.expand(graph_tenant, ids=["nw-2"], max_hops=0)) == {"company:nw"}


async def test_fan_out_and_limit_bound_the_expansion(graph_store, graph_tenant):
    spokes = [{"src": "hub", "dst": f"spoke:{i}", "type": "HAS"} for i in range(12)]
    rims = [{"src": f"spoke:{i}", "dst": f"rim:{i}", "type": "HAS"} for i in range(12)]
    await graph_store.upsert(graph_tenant, graph(edges=spokes + rims))
    everything = await graph_store.expand(graph_tenant, ids=["hub"], max_hops=2)
    assert (len(everything.nodes), len(everything.edges)) == (25, 24)
    fanned = await graph_store.expand(graph_tenant, ids=["hub"], max_hops=1, fan_out=3)
    assert (len(fanned.nodes), len(fanned.edges)) == (4, 3)
    limited = await graph_store.expand(graph_tenant, ids=["hub"], max_hops=2, limit=5)
    assert len(limited.edges) == 5 and len(limited.nodes) <= 6
    capped = await graph_store.expand(graph_tenant, ids=["rim:0"], max_hops=9)  # hops are capped at 3
    assert ids(capped) == {"rim:0", "spoke:0", "hub"} | {f"spoke:{i}" for i in range(12)}


async def test_every_fact_of_a_limited_expansion_has_both_ends_in_it(graph_store, graph_tenant):
    # A triangle of seeds (each fact reached from both ends) with spokes and rims: limits cut mid-hop.
    triangle = [{"src": a, "dst": b, "type": "KNOWS"} for a, b in (("a", "b"), ("b", "c"), ("c", "a"))]
    spokes = [{"src": seed, "dst": f"{seed}:{i}", "type": "HAS"} for seed in "abc" for i in range(4)]
    rims = [{"src": f"{seed}:{i}", "dst": f"{seed}:{i}:rim", "type": "HAS"} for seed in "abc" for i in range(4)]
    await graph_store.upsert(graph_tenant, graph(edges=triangle + spokes + rims))
    for limit in range(1, 32):
        for hops in (1, 2, 3):
            found = await graph_store.expand(graph_tenant, ids=["a", "b", "c"], max_hops=hops, limit=limit)
            assert len(found.edges) <= limit
            assert {end for e in found.edges for end in (e.src, e.dst)} <= ids(found), (limit, hops)


async def test_an_absorbed_id_among_others_expands_from_its_survivor(graph_store, graph_tenant):
    survivor = {"id": "company:nw", "type": "Company", "name": "Northwind", "props": {"merged_from": ["nw-2"]}}
    edges = [{"src": "company:nw", "dst": "place:tc", "type": "LOCATED_IN"}, {"src": "x", "dst": "y", "type": "R"}]
    await graph_store.upsert(graph_tenant, graph(nodes=[survivor], edges=edges))
    assert ids(await graph_store.expand(graph_tenant, ids=["x", "nw-2"], max_hops=1)) == {
        "x",
        "y",
        "company:nw",
        "place:tc",
    }


async def test_expand_many_reads_each_neighbourhood_as_expand_does_with_its_own_limit(graph_store, graph_tenant):
    spokes = [{"src": "hub", "dst": f"spoke:{i}", "type": "HAS"} for i in range(12)]
    rims = [{"src": f"spoke:{i}", "dst": f"rim:{i}", "type": "HAS"} for i in range(12)]
    await graph_store.upsert(graph_tenant, graph(edges=spokes + rims))
    await graph_store.upsert(graph_tenant, GRAPH, sources=["doc.md#0"])
    wanted = [Expansion(["hub"], 5), Expansion([], 10), Expansion(["hub"], 200), Expansion(["person:lin", "nope"], 50)]
    many = await graph_store.expand_many(graph_tenant, wanted, max_hops=2, fan_out=12)
    each = [await graph_store.expand(graph_tenant, ids=w.ids, max_hops=2, fan_out=12, limit=w.limit) for w in wanted]
    assert many == each
    assert [len(subgraph.edges) for subgraph in many] == [5, 0, 24, 2]  # each part within its own limit


async def test_expand_many_answers_an_absorbed_id_with_its_survivor(graph_store, graph_tenant):
    survivor = {"id": "company:nw", "type": "Company", "name": "Northwind", "props": {"merged_from": ["nw-2"]}}
    edges = [{"src": "company:nw", "dst": "place:tc", "type": "LOCATED_IN"}, {"src": "x", "dst": "y", "type": "R"}]
    await graph_store.upsert(graph_tenant, graph(nodes=[survivor], edges=edges))
    around_x, around_absorbed = await graph_store.expand_many(
        graph_tenant, [Expansion(["x"], 10), Expansion(["nw-2"], 10)], max_hops=1
    )
    assert (ids(around_x), ids(around_absorbed)) == ({"x", "y"}, {"company:nw", "place:tc"})


# --- deleting ------------------------------------------------------------------------------------


async def test_deleting_a_source_removes_exactly_its_facts(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, GRAPH, sources=["a#0"])
    await graph_store.upsert(
        graph_tenant, graph(edges=[{"src": "person:lin", "dst": "company:nw", "type": "創立"}]), sources=["b#0"]
    )
    await graph_store.upsert(graph_tenant, graph(nodes=[{"id": "manual", "type": "Thing"}]))  # no provenance
    result = await graph_store.delete_sources(graph_tenant, ["a#0"])
    assert (result.edges_deleted, result.edges_updated, result.nodes_deleted) == (1, 1, 1)
    assert await edge_sources(graph_store, graph_tenant) == {"person:lin>company:nw": ["b#0"]}
    assert await node_sources(graph_store, graph_tenant) == {"person:lin": ["b#0"], "company:nw": ["b#0"], "manual": []}
    again = await graph_store.delete_sources(graph_tenant, ["a#0"])
    assert (again.edges_deleted, again.edges_updated, again.nodes_deleted) == (0, 0, 0)
    await graph_store.delete_sources(graph_tenant, ["b#0"])
    assert await graph_store.count(graph_tenant) == (1, 0)  # only the node without provenance is left


# --- raw queries ---------------------------------------------------------------------------------


async def test_read_only_query_returns_json_safe_rows(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, GRAPH, sources=["d#0"])
    rows = await graph_store.query(
        graph_tenant,
        "MATCH p = (a:Entity)-[r:`創立`]->(b:Entity) WHERE a.tenant = $tenant "
        "RETURN a, r, p, a.langs AS langs, {n: b.name} AS map, 1.5 AS x",
    )
    json.dumps(rows)
    [row] = rows
    assert row["a"] == {
        "id": "person:lin",
        "labels": ["Entity", "人物"],
        "props": {"name": "林小明", "born": 1980, "langs": ["zh", "en"], "sources": ["d#0"]},
    }
    assert row["r"] == {
        "type": "創立",
        "src": "person:lin",
        "dst": "company:nw",
        "props": {"year": 2011, "sources": ["d#0"]},
    }
    assert [n["id"] for n in row["p"]["nodes"]] == ["person:lin", "company:nw"]
    assert [(e["src"], e["dst"]) for e in row["p"]["edges"]] == [("person:lin", "company:nw")]
    assert (row["langs"], row["map"], row["x"]) == (["zh", "en"], {"n": "Northwind Thermal"}, 1.5)
    bare = await graph_store.query(graph_tenant, "MATCH ()-[r:LOCATED_IN]->() WHERE r.tenant = $tenant RETURN r")
    assert (bare[0]["r"]["src"], bare[0]["r"]["dst"]) == ("company:nw", "place:taichung")  # endpoints looked up
    many = await graph_store.query(graph_tenant, "UNWIND range(1, 50) AS i RETURN i, $tenant AS t", limit=7)
    assert [row["i"] for row in many] == list(range(1, 8)) and many[0]["t"] == graph_tenant
    quoted = await graph_store.query(graph_tenant, "RETURN 'create merge delete' AS s, $tenant AS t // SET x")
    assert quoted[0]["s"] == "create merge delete"


WRITES = [
    "CREATE (n:Entity {id: 'x', tenant: $tenant})",
    "create (n:Entity {id: 'x', tenant: $tenant})",
    "MATCH (n) WHERE n.tenant = $tenant DETACH DELETE n",
    "MATCH (n) WHERE n.tenant = $tenant /* harmless? */ SET n.name = 'x' RETURN n",
    "MATCH (n) WHERE n.tenant = $tenant\n  remove n.name RETURN n",
    "MERGE (n:Entity {id: 'x', tenant: $tenant}) RETURN n",
    "MATCH (n) WHERE n.tenant = $tenant FOREACH (x IN [1] | SET n.y = x)",
    "LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line, $tenant",
    "CALL db.idx.fulltext.createNodeIndex('Entity', 'name') RETURN $tenant",
    "call apoc.create.node(['Entity'], {tenant: $tenant})",
    "CALL dbms.killQuery('1') RETURN $tenant",
    "USE other MATCH (n) WHERE n.tenant = $tenant RETURN n",
]


@pytest.mark.parametrize("statement", WRITES)
async def test_writes_are_refused_before_the_database(graph_store, graph_tenant, statement):
    await graph_store.upsert(graph_tenant, GRAPH)
    with pytest.raises(BadRequest, match="read-only"):
        await graph_store.query(graph_tenant, statement)
    assert await graph_store.count(graph_tenant) == (3, 2)


async def test_bad_queries_are_the_callers_400(graph_store, graph_tenant):
    with pytest.raises(BadRequest, match="reserved"):
        await graph_store.query(graph_tenant, "MATCH (n) WHERE n.tenant = $tenant RETURN n", {"tenant": "other"})
    with pytest.raises(BadRequest):
        await graph_store.query(graph_tenant, "MATCH (n WHERE n.tenant = $tenant RETURN")  # syntax
    with pytest.raises(BadRequest, match="tenant"):
        await graph_store.query("not a tenant!", "RETURN $tenant AS t")


async def test_falkordb_itself_refuses_a_write_that_passes_the_check(falkordb_server, graph_tenant):
    store = FalkorDBGraphStore(falkordb_server.url)
    try:
        await store.upsert(graph_tenant, GRAPH)
        with pytest.raises(GraphQueryError, match="read-only"):
            await store._ro_query(graph_tenant, "CREATE (n:Entity {id: 'sneaky'})", {}, 5.0)
        assert await store.count(graph_tenant) == (3, 2)
    finally:
        await store.close()


async def test_falkordb_packs_its_commands_in_c(falkordb_server, graph_tenant):
    store = FalkorDBGraphStore(falkordb_server.url)
    try:
        await store.upsert(graph_tenant, GRAPH)
        connection = store._pool.connection_class()
        assert len(connection.pack_command("ECHO", "x" * 10_000)) == 1  # redis-py's Python packer splits it in 3
    finally:
        await store.close()


async def test_a_warm_falkordb_read_starts_no_task_of_its_own(falkordb_server, graph_tenant):
    """redis-py wraps each send in `asyncio.wait_for` (a task per command) when a socket timeout is set;
    the adapter's calls are bounded by their own budget instead."""
    store = FalkorDBGraphStore(falkordb_server.url)
    loop = asyncio.get_running_loop()
    started: list[object] = []

    def counting_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        started.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    try:
        await store.upsert(graph_tenant, GRAPH)
        loop.set_task_factory(counting_factory)
        await store.expand(graph_tenant, ids=["person:lin"], max_hops=2, timeout=5)
        assert started == []
    finally:
        loop.set_task_factory(None)
        await store.close()


# --- tenants -------------------------------------------------------------------------------------


async def test_tenants_are_isolated(graph_store, graph_tenant):
    await graph_store.upsert(graph_tenant, GRAPH, sources=["a#0"])
    other = f"{graph_tenant}_b"
    assert (
        await graph_store.expand(other, text="林小明 Northwind Thermal", ids=["person:lin"], max_hops=2)
    ).nodes == []
    assert await graph_store.count(other) == (0, 0)
    # Even a query that tries to ignore the tenant sees nothing of the other tenant.
    leaky = "MATCH (n:Entity) WHERE n.tenant = $tenant OR true RETURN n, n.id AS id"
    assert await graph_store.query(other, leaky) == []
    assert (await graph_store.delete_sources(other, ["a#0"])).nodes_deleted == 0
    assert await graph_store.count(graph_tenant) == (3, 2)


async def test_falkordb_keeps_each_tenant_in_its_own_graph(falkordb_server, graph_tenant):
    store = FalkorDBGraphStore(falkordb_server.url, graph_name="iso")
    try:
        await store.upsert(graph_tenant, GRAPH)
        assert store.graph_key(graph_tenant) == f"iso_{graph_tenant}"
        assert len(await store.query(graph_tenant, "MATCH (n) RETURN n")) == 3  # no tenant filter needed
        assert await store.query(f"{graph_tenant}_b", "MATCH (n) RETURN n") == []
    finally:
        await store.close()


async def test_neo4j_in_one_database_requires_the_tenant_filter(bolt_falkordb, neo4j_driver, graph_tenant):
    store = Neo4jGraphStore(bolt_falkordb.bolt_uri, driver=neo4j_driver)
    with pytest.raises(BadRequest, match=r"\$tenant"):
        await store.query(graph_tenant, "MATCH (n) RETURN n")
    with pytest.raises(BadRequest, match=r"\$tenant"):
        await store.query(graph_tenant, "MATCH (n) RETURN n // $tenant")  # a comment does not count


async def test_neo4j_database_per_tenant(bolt_falkordb, neo4j_driver, graph_tenant):
    store = Neo4jGraphStore(bolt_falkordb.bolt_uri, driver=neo4j_driver, database_per_tenant=True)
    assert store.database_for("acme") == "kg-acme"
    await store.ping()
    await store.upsert(graph_tenant, GRAPH)
    # Its own database: no $tenant needed. FalkorDB's Bolt ignores the database name (all named
    # databases are one graph there), so the record filter is what keeps the other tenant out here.
    assert len(await store.query(graph_tenant, "MATCH (n:Entity) RETURN n")) == 3
    assert await store.query(f"{graph_tenant}_b", "MATCH (n:Entity) RETURN n") == []
    assert (await store.expand(f"{graph_tenant}_b", ids=["person:lin"])).nodes == []
    await store.close()
    assert await Neo4jGraphStore(bolt_falkordb.bolt_uri, driver=neo4j_driver).count("x") == (0, 0)  # still open


# --- failures ------------------------------------------------------------------------------------


async def test_an_unreachable_falkordb_is_unavailable_quickly():
    store = FalkorDBGraphStore(f"redis://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(GraphUnavailable):
        await store.expand("acme", text="anything")
    with pytest.raises(GraphUnavailable):
        await store.ping()
    assert time.monotonic() - started < 2
    await store.close()


async def test_an_unreachable_neo4j_is_unavailable_quickly():
    store = Neo4jGraphStore(f"bolt://127.0.0.1:{free_port()}")  # a driver of its own, not FalkorDB's Bolt
    started = time.monotonic()
    with pytest.raises(GraphUnavailable):
        await store.upsert("acme", GRAPH)
    assert time.monotonic() - started < 4
    await store.close()


async def test_a_server_stopped_mid_test_is_unavailable_and_a_restart_recovers(dedicated_falkordb: LocalFalkorDB):
    store = FalkorDBGraphStore(dedicated_falkordb.url)
    await store.upsert("acme", GRAPH)
    await store.ping()
    dedicated_falkordb.stop()
    started = time.monotonic()
    with pytest.raises(GraphUnavailable):
        await store.expand("acme", ids=["person:lin"], timeout=5)
    assert time.monotonic() - started < 2
    dedicated_falkordb.restart()  # empty again (no persistence); pooled connections are stale
    assert await store.count("acme") == (0, 0)
    await store.upsert("acme", GRAPH)
    assert await store.count("acme") == (3, 2)
    await store.close()


async def test_a_hung_server_costs_no_more_than_the_timeout(dedicated_falkordb: LocalFalkorDB):
    store = FalkorDBGraphStore(dedicated_falkordb.url)
    await store.upsert("acme", GRAPH)
    os.kill(dedicated_falkordb.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            await store.expand("acme", text="林小明", timeout=0.3)
        assert time.monotonic() - started < 1
    finally:
        os.kill(dedicated_falkordb.pid, signal.SIGCONT)
    await store.close()


async def test_a_slow_query_is_stopped_at_the_timeout(falkordb_server, graph_tenant):
    store = FalkorDBGraphStore(falkordb_server.url)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await store.query(
            graph_tenant, "UNWIND range(1, 100000) AS x UNWIND range(1, 100000) AS y RETURN count(*)", timeout=0.2
        )
    assert time.monotonic() - started < 1
    await store.close()


async def test_the_row_limit_stops_the_query_in_the_database(falkordb_server, graph_tenant):
    """200 entities: their triple product is 8 million rows, far past the budget unless the database stops at 5."""
    store = FalkorDBGraphStore(falkordb_server.url)
    nodes = [{"id": f"n{i}", "type": "Thing", "name": f"thing {i}"} for i in range(200)]
    await store.upsert(graph_tenant, GraphData.model_validate({"nodes": nodes}))
    rows = await store.query(graph_tenant, "MATCH (a), (b), (c) RETURN a.id AS a", limit=5, timeout=2.0)
    assert len(rows) == 5
    await store.close()
