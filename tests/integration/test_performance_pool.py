"""Under load a request waits for a pooled graph connection, within its own deadline, never fails at once."""

from __future__ import annotations

import asyncio

import pytest

from gateway_core.errors import DeadlineExceeded
from gateway_core.settings import Settings
from gateway_core.stores.graph.factory import create_graph_store
from gateway_core.stores.graph.falkordb import FalkorDBGraphStore
from infra.local.falkordb_server import LocalFalkorDB


@pytest.fixture
async def one_connection(falkordb_server: LocalFalkorDB):  # type: ignore[no-untyped-def]
    store = FalkorDBGraphStore(falkordb_server.url, "pool", max_connections=1)
    await store.count("t1")  # connects, creates the graph
    yield store
    await store.close()


async def test_a_busy_pool_is_waited_for_until_the_deadline_then_it_is_a_timeout(one_connection):  # type: ignore[no-untyped-def]
    held = await one_connection._pool.get_connection()
    try:
        with pytest.raises(DeadlineExceeded):  # not GraphUnavailable: the server is healthy, only busy
            await one_connection.count("t1", timeout=0.3)
    finally:
        await one_connection._pool.release(held)


async def test_a_request_gets_the_connection_freed_within_its_budget(one_connection):  # type: ignore[no-untyped-def]
    held = await one_connection._pool.get_connection()

    async def release_soon() -> None:
        await asyncio.sleep(0.2)
        await one_connection._pool.release(held)

    releasing = asyncio.create_task(release_soon())
    assert await one_connection.count("t1", timeout=5) == (0, 0)
    await releasing


async def test_many_more_requests_than_connections_all_answer(one_connection):  # type: ignore[no-untyped-def]
    results = await asyncio.gather(*(one_connection.count("t1", timeout=10) for _ in range(100)))
    assert results == [(0, 0)] * 100


def test_pool_sizes_come_from_the_settings() -> None:
    store = create_graph_store(Settings(falkordb_url="redis://127.0.0.1:1", graph_max_connections=7))
    assert isinstance(store, FalkorDBGraphStore) and store._max_connections == 7
    neo4j = create_graph_store(Settings(neo4j_uri="bolt://127.0.0.1:1", graph_max_connections=9))
    assert neo4j is not None and neo4j._max_connections == 9  # type: ignore[attr-defined]
