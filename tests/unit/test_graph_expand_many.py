"""`expand_many` on an adapter that sends a statement per part: a failing part stops the others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway_core.stores.graph.base import Expansion, GraphUnavailable
from gateway_core.stores.graph.neo4j import Neo4jGraphStore


async def test_a_failing_part_cancels_the_parts_still_running(monkeypatch):
    store = Neo4jGraphStore("bolt://127.0.0.1:9", driver=object())  # never reached: the parts are scripted
    cancelled = asyncio.Event()

    async def expansion(tenant: str, seeds: list[str], *args: Any) -> dict[str, Any]:
        if seeds == ["down"]:
            raise GraphUnavailable("The graph store is unreachable.")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {"seeds": [], "hops": []}

    monkeypatch.setattr(store, "_expansion", expansion)
    with pytest.raises(GraphUnavailable):
        await store.expand_many("acme", [Expansion(["slow"], 5), Expansion(["down"], 5)], timeout=5)
    await asyncio.wait_for(cancelled.wait(), 1)
