"""The entity lookups of retrieval are index scans in FalkorDB's own query plan, never label scans."""

from __future__ import annotations

import pytest

from gateway_core.models.graph import GraphData
from gateway_core.stores.graph import cypher
from gateway_core.stores.graph.falkordb import FalkorDBGraphStore
from infra.local.falkordb_server import LocalFalkorDB

PARAMS = {"keys": ["northwind thermal"], "ids": ["company:northwind"], "hidden": list(cypher.HIDDEN_KEYS)}
# The statements that find entities: the lookups, and the whole expansion (its seeds by id, then two hops).
STATEMENTS = {
    "LINK": cypher.LINK,
    "SEEDS_BY_KEY": cypher.SEEDS_BY_KEY,
    "EXPANSION": cypher.expansion(2),
}


@pytest.mark.parametrize("name", sorted(STATEMENTS))
async def test_the_lookup_plan_uses_the_index(falkordb_server: LocalFalkorDB, name: str) -> None:
    store = FalkorDBGraphStore(falkordb_server.url, "plans")
    try:
        data = GraphData.model_validate(
            {
                "nodes": [{"id": f"company:{i}", "type": "Company", "name": f"Company {i}"} for i in range(50)]
                + [{"id": "company:northwind", "type": "Company", "name": "Northwind Thermal"}],
                "edges": [],
            }
        )
        await store.upsert("t1", data)
        graph = (await store._client()).select_graph(store.graph_key("t1"))
        params = {**PARAMS, "tenant": "t1", "limit": 10, "fan_out": 5}
        plan = str(await graph.explain(STATEMENTS[name], params))
        assert "Node By Index Scan" in plan, plan
        assert "Label Scan" not in plan and "All Node Scan" not in plan, plan
        assert [n.id for n in (await store.expand("t1", names=["Northwind Thermal"])).nodes] == ["company:northwind"]
    finally:
        await store.close()


async def test_a_two_hop_expansion_by_id_is_one_statement(falkordb_server: LocalFalkorDB) -> None:
    store = FalkorDBGraphStore(falkordb_server.url, "roundtrips")
    try:
        edges = [{"src": f"n{i}", "dst": f"n{i + 1}", "type": "NEXT"} for i in range(10)]
        await store.upsert("t1", GraphData.model_validate({"nodes": [], "edges": edges}))
        client = (await store._client()).connection

        async def reads() -> int:
            stats = await client.info("commandstats")
            return int(stats.get("cmdstat_graph.RO_QUERY", {}).get("calls", 0))

        before = await reads()
        found = await store.expand("t1", ids=["n0", "n5"], max_hops=2)
        assert await reads() - before == 1
        assert {n.id for n in found.nodes} == {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"}
    finally:
        await store.close()
