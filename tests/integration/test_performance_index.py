"""The entity lookups of retrieval are index scans in FalkorDB's own query plan, never label scans."""

from __future__ import annotations

import pytest

from gateway_core.models.graph import GraphData
from gateway_core.stores.graph import cypher
from gateway_core.stores.graph.falkordb import FalkorDBGraphStore
from infra.local.falkordb_server import LocalFalkorDB

PARAMS = {"keys": ["northwind thermal"], "ids": ["company:northwind"], "frontier": ["company:northwind"]}


@pytest.mark.parametrize("name", ["LINK", "SEEDS_BY_KEY", "SEEDS_BY_ID", "NEIGHBOURS"])
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
        plan = str(await graph.explain(getattr(cypher, name), params))
        assert "Node By Index Scan" in plan, plan
        assert "Label Scan" not in plan and "All Node Scan" not in plan, plan
        assert [n.id for n in (await store.expand("t1", names=["Northwind Thermal"])).nodes] == ["company:northwind"]
    finally:
        await store.close()
