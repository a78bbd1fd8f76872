"""VectorStore on qdrant-edge, Qdrant's embedded engine (the `qdrant-edge-py` package).

Same engine as the Qdrant server, in process: about 1 ms per filtered query
where qdrant-client's local mode scans in Python. Each collection is one edge
shard in `<path>/edge/<collection>`. The engine's calls are blocking, so they
run in a worker thread; the folder is locked for one process at a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import IO, Any, TypeVar

import numpy as np
import portalocker
import qdrant_edge as edge

from ..errors import DeadlineExceeded, NotFound
from ..models.search import SearchFilter
from ..observability import logger
from .vectors import (
    DEFAULT_PAYLOAD_FIELDS,
    LEXICAL,
    Condition,
    FieldEquals,
    FieldIn,
    SharedByFolder,
    SparseTerms,
    VectorHit,
    VectorPoint,
    check_collection_name,
    check_points,
    dimension_mismatch,
    folder_locked,
    scope,
)

T = TypeVar("T")

UPSERT_BATCH = 256
SCROLL_PAGE = 256
CONFIG_FILE = "edge_config.json"  # written by the engine beside a shard's segments


class _EdgeFolder:
    """The open shards of one folder, shared by every store of the process."""

    def __init__(self, root: str, search_threads: int | None = None) -> None:
        self.root = root
        self.search_threads = search_threads  # None: the engine's own default
        os.makedirs(root, exist_ok=True)
        self._lock_file: IO[str] = open(os.path.join(root, ".lock"), "a")  # noqa: SIM115 - held for the store's life
        try:
            portalocker.lock(self._lock_file, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
        except portalocker.exceptions.LockException:
            self._lock_file.close()
            raise folder_locked(root) from None
        self._shards: dict[str, edge.EdgeShard] = {}
        self.dims: dict[str, int] = {}
        self.lexical: dict[str, bool] = {}  # whether a collection has the lexical sparse vector
        self._guard = threading.Lock()
        self._written: dict[str, int] = {}  # points written per collection since its last optimize
        self._optimizing = threading.Lock()

    def written_since_optimize(self, name: str, written: int, threshold: int) -> bool:
        """Count `written` points; True (and start counting again) once `threshold` is reached."""
        with self._guard:
            total = self._written.get(name, 0) + written
            self._written[name] = 0 if total >= threshold else total
            return total >= threshold

    def optimize(self, name: str, shard: edge.EdgeShard) -> None:
        with self._optimizing:  # one at a time: a second one would find nothing left to do
            shard.optimize()

    def open_shard(self, name: str) -> edge.EdgeShard | None:
        """The collection's shard if this process has it open already (no disk access)."""
        return self._shards.get(name)

    def shard(self, name: str, create_dim: int | None = None) -> edge.EdgeShard | None:
        """The collection's shard, opened on first use; created only when `create_dim` is given."""
        with self._guard:
            if name in self._shards:
                return self._shards[name]
            path = os.path.join(self.root, name)
            config_path = os.path.join(path, CONFIG_FILE)
            if os.path.exists(config_path):
                self.dims[name], self.lexical[name] = _stored_size(config_path), _has_lexical(config_path)
                shard = edge.EdgeShard.load(path, self._tuning(self.dims[name]))
                if "chunk_id" not in shard.info().payload_schema:  # shards created before this index existed
                    shard.update(edge.UpdateOperation.create_field_index("chunk_id", edge.PayloadSchemaType.Keyword))
            elif create_dim is not None:
                shard = edge.EdgeShard.create(
                    path,
                    edge.EdgeConfig(
                        vectors=edge.EdgeVectorParams(size=create_dim, distance=edge.Distance.Cosine),
                        sparse_vectors={LEXICAL: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
                        max_search_threads=self.search_threads,
                    ),
                )
                self.lexical[name] = True
                shard.update(edge.UpdateOperation.create_field_index("doc_id", edge.PayloadSchemaType.Keyword))
                # Retrieval fetches the graph neighbourhood's passages by chunk id: indexed, not a payload scan.
                shard.update(edge.UpdateOperation.create_field_index("chunk_id", edge.PayloadSchemaType.Keyword))
                shard.update(edge.UpdateOperation.create_field_index("tenant", edge.KeywordIndexParams(is_tenant=True)))
                self.dims[name] = create_dim
            else:
                return None
            self._shards[name] = shard
            return shard

    def _tuning(self, dim: int) -> edge.EdgeConfig | None:
        """What loading a shard sets (the rest stays as stored); the engine wants the stored vectors with it."""
        if self.search_threads is None or dim <= 0:
            return None
        vectors = edge.EdgeVectorParams(size=dim, distance=edge.Distance.Cosine)
        return edge.EdgeConfig(vectors=vectors, max_search_threads=self.search_threads)

    def close(self) -> None:
        with self._guard:
            shards, self._shards = self._shards, {}
            for shard in shards.values():
                shard.flush()
                shard.close()
            portalocker.unlock(self._lock_file)
            self._lock_file.close()


_folders: SharedByFolder[_EdgeFolder] = SharedByFolder()


class QdrantEdgeVectorStore:
    """`optimize_after`: the engine builds its indexes only when asked (no background optimizer), so a
    collection is optimized once that many points were written to it since the last time; until then
    new points are searched by brute force and queries slow down as the collection grows.
    `search_threads`: the engine's search pool per collection (None: the engine's default)."""

    def __init__(
        self,
        path: str = ".data/qdrant",
        *,
        timeout: float = 10.0,
        optimize_after: int = 1000,
        search_threads: int | None = None,
    ) -> None:
        # Nothing here touches the disk: the folder is opened on first use.
        self._root = os.path.join(path, "edge")
        self._search_threads = search_threads
        self._timeout = timeout
        self._folder: _EdgeFolder | None = None
        self._optimize_after = max(1, optimize_after)
        self.optimizations: dict[str, int] = {}  # collection -> optimize runs by this store

    # --- VectorStore ------------------------------------------------------------

    async def ensure_collection(self, name: str, dim: int) -> None:
        check_collection_name(name)
        if dim <= 0:
            raise ValueError(f"vector size must be positive, not {dim}")
        folder = self._open()
        await self._run(folder.shard, name, dim)
        if folder.dims[name] != dim:
            raise dimension_mismatch(name, existing=folder.dims[name], requested=dim)

    async def upsert(self, name: str, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        shard = await self._shard(name)
        if shard is None:
            raise NotFound(f"Collection {name!r} does not exist yet: ensure_collection() first.")
        check_points(name, points, self._open().dims[name])
        lexical = self._open().lexical.get(name, False)
        for start in range(0, len(points), UPSERT_BATCH):
            batch = [edge.Point(p.id, _vectors(p, lexical), p.payload) for p in points[start : start + UPSERT_BATCH]]
            await self._run(shard.update, edge.UpdateOperation.upsert_points(batch))
        await self._optimize_if_due(name, shard, len(points))

    async def _optimize_if_due(self, name: str, shard: edge.EdgeShard, written: int) -> None:
        """Optimize after bulk writes; the writes already succeeded, so a slow optimize never fails them."""
        if not self._open().written_since_optimize(name, written, self._optimize_after):
            return
        work = asyncio.ensure_future(asyncio.to_thread(self._open().optimize, name, shard))
        try:
            await asyncio.wait_for(asyncio.shield(work), self._timeout)
        except TimeoutError:  # it finishes in its thread; queries meanwhile still answer
            logger.warning("vector store optimize still running", extra={"collection": name})
        self.optimizations[name] = self.optimizations.get(name, 0) + 1

    async def search(
        self,
        name: str,
        vector: Sequence[float],
        *,
        tenant: str,
        top_k: int,
        filter: SearchFilter | None = None,
        timeout: float | None = None,
    ) -> list[VectorHit]:
        conditions = scope(tenant, filter=filter)
        shard = await self._shard(name, timeout)
        if shard is None or top_k <= 0:
            return []
        dim = self._open().dims[name]
        if len(vector) != dim:
            raise dimension_mismatch(name, existing=dim, requested=len(vector))
        return self._query(shard, edge.Query.Nearest(list(vector)), conditions, top_k)  # the engine reads numbers

    async def search_lexical(
        self,
        name: str,
        terms: SparseTerms,
        *,
        tenant: str,
        top_k: int,
        filter: SearchFilter | None = None,
        timeout: float | None = None,
    ) -> list[VectorHit]:
        conditions = scope(tenant, filter=filter)
        shard = await self._shard(name, timeout)
        if shard is None or top_k <= 0 or not terms or not self._open().lexical.get(name, False):
            return []
        query = edge.Query.Nearest(_sparse(terms), using=LEXICAL)
        return self._query(shard, query, conditions, top_k)

    @staticmethod
    def _query(shard: edge.EdgeShard, query: Any, conditions: Any, top_k: int) -> list[VectorHit]:
        """One scoped query on a shard (dense, or the named sparse vector)."""
        request = edge.QueryRequest(
            limit=top_k, query=query, filter=_filter(conditions), with_payload=True, with_vector=False
        )
        # On the loop's own thread: the engine holds the GIL while it searches (a second thread searching
        # halves the first one's speed), so a worker thread only added two thread switches per query (0.1-0.3
        # ms of CPU) and no parallelism; nor could it be interrupted at the deadline.
        points = shard.query(request)
        return [VectorHit(partial(_point_id, p), p.score, p.payload or {}) for p in points]  # a fresh payload each

    async def payloads(
        self, name: str, *, tenant: str, doc_id: str, fields: Sequence[str] = DEFAULT_PAYLOAD_FIELDS
    ) -> dict[str, dict[str, Any]]:
        query = _filter(scope(tenant, doc_id=doc_id))
        shard = await self._shard(name)
        if shard is None:
            return {}
        selector = edge.PayloadSelector.Include(list(fields)) if fields else False

        def scroll_all() -> dict[str, dict[str, Any]]:
            found: dict[str, dict[str, Any]] = {}
            offset: Any = None
            while True:
                records, offset = shard.scroll(
                    edge.ScrollRequest(
                        offset=offset, limit=SCROLL_PAGE, filter=query, with_payload=selector, with_vector=False
                    )
                )
                found.update((str(r.id), dict(r.payload or {})) for r in records)
                if offset is None:
                    return found

        return await self._run(scroll_all)

    async def delete(
        self, name: str, *, tenant: str, doc_id: str | None = None, ids: Sequence[str] | None = None
    ) -> int:
        if doc_id is None and ids is None:
            raise ValueError("delete needs a doc_id or ids (refusing to empty a whole tenant)")
        query = _filter(scope(tenant, doc_id=doc_id, ids=ids))
        shard = await self._shard(name)
        if shard is None or (ids is not None and not ids):
            return 0

        def count_and_delete() -> int:
            matched = shard.count(edge.CountRequest(exact=True, filter=query))
            if matched:
                shard.update(edge.UpdateOperation.delete_points_by_filter(query))
            return matched

        return await self._run(count_and_delete)

    async def count(self, name: str, *, tenant: str, doc_id: str | None = None) -> int:
        query = _filter(scope(tenant, doc_id=doc_id))
        shard = await self._shard(name)
        if shard is None:
            return 0
        return await self._run(shard.count, edge.CountRequest(exact=True, filter=query))

    async def ping(self) -> None:
        self._open()

    async def close(self) -> None:
        if self._folder is None:
            return
        self._folder = None
        folder = _folders.release(self._root)
        if folder is not None:
            await asyncio.to_thread(folder.close)

    # --- internals --------------------------------------------------------------

    def _open(self) -> _EdgeFolder:
        if self._folder is None:
            self._folder = _folders.acquire(self._root, lambda root: _EdgeFolder(root, self._search_threads))
        return self._folder

    async def _shard(self, name: str, timeout: float | None = None) -> edge.EdgeShard | None:
        check_collection_name(name)
        folder = self._open()
        # Opening reads the disk (a worker thread); once open, a warm query skips that thread hop.
        shard = folder.open_shard(name)
        return shard if shard is not None else await self._run(folder.shard, name, timeout=timeout)

    async def _run(self, call: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        # A thread cannot be interrupted, but the caller stops waiting at its deadline.
        budget = timeout if timeout is not None else self._timeout
        try:
            async with asyncio.timeout(budget):
                return await asyncio.to_thread(call, *args)
        except TimeoutError:
            raise DeadlineExceeded(f"The vector store did not answer within {budget:.2f}s.") from None


def _stored_size(config_path: str) -> int:
    with open(config_path) as f:
        vectors = json.load(f).get("vectors", {})
    # Only the default (unnamed) vector is ours; anything else reads as a mismatch (0).
    return int(vectors.get("", {}).get("size", 0))


def _point_id(point: Any) -> str:
    return str(point.id)


def _has_lexical(config_path: str) -> bool:
    with open(config_path) as f:
        return LEXICAL in (json.load(f).get("sparse_vectors") or {})


def _sparse(terms: SparseTerms) -> edge.SparseVector:
    indices = sorted(terms)
    return edge.SparseVector(indices, [float(terms[i]) for i in indices])


def _vectors(point: VectorPoint, lexical: bool) -> Any:
    dense = [float(x) for x in point.vector]
    if lexical and point.lexical:
        return {"": dense, LEXICAL: _sparse(point.lexical)}
    return dense


def _filter(conditions: Sequence[Condition]) -> edge.Filter:
    return edge.Filter(must=[_condition(c) for c in conditions])


def _condition(condition: Condition) -> Any:
    if isinstance(condition, FieldIn):
        return edge.FieldCondition(condition.key, match=edge.MatchAny(list(condition.values)))
    if isinstance(condition, FieldEquals):
        value = condition.value
        if isinstance(value, bool):
            # qdrant-edge 0.9.0 reads a Python bool as the integer 1/0 (then matches nothing);
            # numpy's bool reaches the engine as a real boolean.
            return edge.FieldCondition(condition.key, match=edge.MatchValue(np.bool_(value)))  # type: ignore[arg-type]
        if isinstance(value, float):  # equality on floats is a range, as in the server
            return edge.FieldCondition(condition.key, range=edge.RangeFloat(gte=value, lte=value))
        return edge.FieldCondition(condition.key, match=edge.MatchValue(value))
    return edge.HasIdCondition(set(condition.ids))
