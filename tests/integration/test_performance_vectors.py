"""qdrant-edge builds its indexes only when asked: bulk writes over the threshold optimize the collection."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gateway_core.stores.qdrant_edge import QdrantEdgeVectorStore
from gateway_core.stores.vectors import VectorPoint


def points(start: int, count: int) -> list[VectorPoint]:
    return [
        VectorPoint(f"00000000-0000-0000-0000-{i:012d}", [1.0, float(i % 7), float(i % 5), 0.5], {"tenant": "t"})
        for i in range(start, start + count)
    ]


async def test_a_bulk_write_over_the_threshold_optimizes_and_smaller_ones_add_up(tmp_path: Path) -> None:
    store = QdrantEdgeVectorStore(str(tmp_path), optimize_after=100)
    try:
        await store.ensure_collection("chunks", 4)
        await store.upsert("chunks", points(0, 60))
        assert store.optimizations.get("chunks", 0) == 0  # below the threshold: no optimize yet
        await store.upsert("chunks", points(60, 60))  # 120 written since the last optimize
        assert store.optimizations["chunks"] == 1
        await store.upsert("chunks", points(120, 250))  # one bulk write over the threshold
        assert store.optimizations["chunks"] == 2
        hits = await store.search("chunks", [1.0, 3.0, 2.0, 0.5], tenant="t", top_k=3)
        assert len(hits) == 3  # still answers after optimizing
    finally:
        await store.close()


def search_threads() -> int:
    """The engine's search threads alive in this process (Linux names them edge-search-N)."""
    names = (Path(task, "comm").read_text().strip() for task in Path("/proc/self/task").iterdir())
    return sum(name.startswith("edge-search") for name in names)


async def test_a_collection_searches_with_the_configured_threads_new_and_reopened(tmp_path: Path) -> None:
    before = search_threads()
    store = QdrantEdgeVectorStore(str(tmp_path), search_threads=1)
    try:
        await store.ensure_collection("chunks", 4)
        await store.upsert("chunks", points(0, 20))
        assert len(await store.search("chunks", [1.0, 3.0, 2.0, 0.5], tenant="t", top_k=3)) == 3
        assert search_threads() - before == 1  # the engine's default pool is 8
    finally:
        await store.close()
    reopened = QdrantEdgeVectorStore(str(tmp_path), search_threads=1)
    try:
        assert len(await reopened.search("chunks", [1.0, 3.0, 2.0, 0.5], tenant="t", top_k=3)) == 3
        assert search_threads() - before == 1
    finally:
        await reopened.close()


class RefusingExecutor(ThreadPoolExecutor):
    """An executor that takes no work: anything sent to a worker thread fails."""

    def submit(self, *args: object, **kwargs: object) -> Future[Any]:
        raise AssertionError("sent to a worker thread")


async def test_a_warm_search_stays_on_the_event_loops_thread(tmp_path: Path) -> None:
    """The engine holds the GIL while it searches: a worker thread would cost two thread switches and buy nothing."""
    store = QdrantEdgeVectorStore(str(tmp_path))
    try:
        await store.ensure_collection("chunks", 4)
        await store.upsert("chunks", points(0, 20))
        await store.search("chunks", [1.0, 3.0, 2.0, 0.5], tenant="t", top_k=3)  # opens the collection
        asyncio.get_running_loop().set_default_executor(RefusingExecutor())
        assert len(await store.search("chunks", [1.0, 3.0, 2.0, 0.5], tenant="t", top_k=3)) == 3
    finally:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())
        await store.close()
