"""One contract, both adapters: FalkorDB over RESP, and the Neo4j adapter over FalkorDB's Bolt port.

FalkorDB's Bolt endpoint hangs the next connection after a client closes one,
so the Neo4j adapter gets ONE driver for this whole module (module-scoped loop).
"""

from __future__ import annotations

import uuid

import pytest
import pytest_asyncio

from gateway_core.errors import BadRequest, UpstreamError
from gateway_core.stores.graph.falkordb import FalkorDBGraphStore
from gateway_core.stores.graph.models import GraphData
from gateway_core.stores.graph.neo4j import Neo4jGraphStore

pytestmark = pytest.mark.asyncio(loop_scope="module")

GRAPH = GraphData.model_validate({
    "nodes": [{"id": "person:lin", "type": "人物", "name": "林小明", "props": [{"key": "born", "value": 1980}]},
              {"id": "company:nw", "type": "Company", "name": "Northwind Thermal",
               "props": [{"key": "aliases", "value": ["北風熱能"]}]},
              {"id": "place:taichung", "type": "Place", "name": "Taichung"}],
    "edges": [{"src": "person:lin", "dst": "company:nw", "type": "創立"},
              {"src": "company:nw", "dst": "place:taichung", "type": "LOCATED_IN"}],
})


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["falkordb", "neo4j"])
async def store(request, falkordb_server):
    if request.param == "falkordb":
        graph_store = FalkorDBGraphStore(falkordb_server.url, graph_name=f"contract{uuid.uuid4().hex[:8]}")
    else:
        graph_store = Neo4jGraphStore(falkordb_server.bolt_uri)
    yield graph_store
    await graph_store.close()


@pytest.fixture
def tenant() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


async def count(store, tenant: str) -> tuple[int, int]:
    nodes = await store.query(tenant, "MATCH (n:Entity) WHERE n.tenant = $tenant RETURN count(n) AS n")
    edges = await store.query(tenant, "MATCH (a:Entity)-[r]->() WHERE a.tenant = $tenant RETURN count(r) AS n")
    return nodes[0]["n"], edges[0]["n"]


async def test_upsert_is_idempotent_and_merges_provenance(store, tenant):
    assert (await store.upsert(tenant, GRAPH, sources=["d#0"])).nodes == 3
    await store.upsert(tenant, GRAPH, sources=["d#0"])
    await store.upsert(tenant, GRAPH, sources=["d#1"])
    assert await count(store, tenant) == (3, 2)
    rows = await store.query(tenant, "MATCH (a:Entity)-[r]->(b:Entity) WHERE a.tenant = $tenant "
                                     "RETURN a.id AS a, r.sources AS sources ORDER BY a")
    assert [sorted(row["sources"]) for row in rows] == [["d#0", "d#1"], ["d#0", "d#1"]]


async def test_expansion_from_chinese_text_names_and_ids(store, tenant):
    await store.upsert(tenant, GRAPH)
    from_text = await store.expand(tenant, text="林小明創立了什麼？", max_hops=1)
    assert {n.id for n in from_text.nodes} == {"person:lin", "company:nw"}
    assert from_text.edges[0].type == "創立"
    two_hops = await store.expand(tenant, text="林小明", max_hops=2)
    assert {n.id for n in two_hops.nodes} == {"person:lin", "company:nw", "place:taichung"}
    by_alias = await store.expand(tenant, text="北風熱能在哪裡", max_hops=1)
    assert "place:taichung" in {n.id for n in by_alias.nodes}
    by_name = await store.expand(tenant, names=["northwind thermal"], max_hops=1)
    assert {n.id for n in by_name.nodes} == {"company:nw", "person:lin", "place:taichung"}
    limited = await store.expand(tenant, ids=["company:nw"], max_hops=1, fan_out=1)
    assert len(limited.edges) == 1


async def test_deleting_a_source_removes_exactly_its_facts(store, tenant):
    await store.upsert(tenant, GRAPH, sources=["a#0"])
    shared = GraphData.model_validate({"nodes": [], "edges": [{"src": "person:lin", "dst": "company:nw",
                                                               "type": "創立"}]})
    await store.upsert(tenant, shared, sources=["b#0"])
    result = await store.delete_sources(tenant, ["a#0"])
    assert (result.edges_deleted, result.edges_updated, result.nodes_deleted) == (1, 1, 1)
    remaining = await store.expand(tenant, ids=["person:lin"], max_hops=2)
    assert {n.id for n in remaining.nodes} == {"person:lin", "company:nw"}
    assert remaining.edges[0].props["sources"] == ["b#0"]


async def test_an_edge_endpoint_outside_the_batch_is_merged_by_id(store, tenant):
    await store.upsert(tenant, GraphData.model_validate({"edges": [{"src": "x:1", "dst": "x:2", "type": "LINKS"}]}))
    assert await count(store, tenant) == (2, 1)


async def test_tenants_are_isolated(store, tenant):
    await store.upsert(tenant, GRAPH)
    other = f"{tenant}x"
    assert (await store.expand(other, text="林小明 Northwind Thermal", max_hops=2)).nodes == []
    assert await count(store, other) == (0, 0)
    assert (await store.delete_sources(other, ["a#0"])).nodes_deleted == 0


@pytest.mark.parametrize("query", ["CREATE (n:Entity {id: 'x'})", "MATCH (n) WHERE n.tenant = $tenant DETACH DELETE n",
                                   "match (n) set n.x = 1 return n", "CALL db.idx.fulltext.createNodeIndex('E', 'n')"])
async def test_writes_are_refused_before_the_database(store, tenant, query):
    with pytest.raises(BadRequest):
        await store.query(tenant, query)


async def test_tenant_is_a_reserved_parameter(store, tenant):
    with pytest.raises(BadRequest):
        await store.query(tenant, "MATCH (n) WHERE n.tenant = $tenant RETURN n", {"tenant": "someone-else"})


async def test_falkordb_refuses_a_write_that_passes_the_check(falkordb_server, tenant):
    store = FalkorDBGraphStore(falkordb_server.url)
    await store.upsert(tenant, GRAPH)
    with pytest.raises(UpstreamError, match="read-only"):
        await store.ro_query_unchecked(tenant, "CREATE (n:Entity {id: 'sneaky'})")
    await store.close()
