"""The FalkorDB adapter decodes its own statements' compact replies itself (the library's parser was most of
a warm /retrieve's CPU): every value type those statements return must come out as the library reads it."""

from __future__ import annotations

import pytest

from gateway_core.models.graph import GraphData
from gateway_core.stores.graph.base import GraphQueryError
from gateway_core.stores.graph.falkordb import FalkorDBGraphStore

EVERY_TYPE = (
    "RETURN 'text' AS s, 42 AS i, -7 AS neg, 1.5 AS d, true AS yes, false AS no, null AS nothing, "
    "['a', 2, [3.5, null]] AS list, {k: 'v', nested: {x: [1, true]}} AS map, $tenant AS tenant, $q AS q"
)
TRICKY = "a \"quoted\" back\\slash, a 'single' quote, 你好, and `ticks`"


async def test_every_value_type_decodes_as_the_library_reads_it(falkordb_server, graph_tenant):
    store = FalkorDBGraphStore(falkordb_server.url)
    try:
        ours = await store._read(graph_tenant, EVERY_TYPE, {"q": TRICKY}, 5.0)
        library = await store.query(graph_tenant, EVERY_TYPE, {"q": TRICKY})
    finally:
        await store.close()
    assert ours == library


async def test_a_node_in_an_adapter_statement_is_refused_not_misread(falkordb_server, graph_tenant):
    store = FalkorDBGraphStore(falkordb_server.url)
    try:
        await store.upsert(graph_tenant, GraphData.model_validate({"nodes": [{"id": "a", "type": "Thing"}]}))
        with pytest.raises(GraphQueryError, match="type 8"):
            await store._read(graph_tenant, "MATCH (n:Entity) RETURN n", {}, 5.0)
    finally:
        await store.close()


async def test_a_run_time_error_is_the_callers_error(falkordb_server, graph_tenant):
    store = FalkorDBGraphStore(falkordb_server.url)
    try:
        with pytest.raises(GraphQueryError, match="FalkorDB refused"):
            await store._read(graph_tenant, "RETURN toInteger({a: 1}) AS n", {}, 5.0)
    finally:
        await store.close()
