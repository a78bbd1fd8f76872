"""VectorStore over qdrant-client: a Qdrant server (QDRANT_URL) or local mode on disk.

Local mode is a pure-Python engine (a brute-force scan; fine for a laptop and
tests), and it locks its folder, so one process at a time may use it.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from .. import tls
from ..errors import ApiError, DeadlineExceeded, NotFound, UpstreamError
from ..models.search import SearchFilter
from ..redaction import redact_url
from ..upstream import external_call
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
    VectorStoreUnavailable,
    check_collection_name,
    check_points,
    dimension_mismatch,
    folder_locked,
    scope,
)

UPSERT_BATCH = 256
SCROLL_PAGE = 256

_local_clients: SharedByFolder[AsyncQdrantClient] = SharedByFolder()


class _CollectionMissing(ApiError):
    """The server has no such collection: callers create it or answer empty (never reaches a response)."""

    status, code = 404, "collection_missing"

    def __init__(self) -> None:
        super().__init__("The collection does not exist.")


class QdrantVectorStore:
    def __init__(
        self, url: str | None = None, api_key: str | None = None, path: str = ".data/qdrant", *, timeout: float = 10.0
    ) -> None:
        # Nothing here touches the network or the disk: the client is made on first use.
        self._url = url
        self._api_key = api_key
        self._path = path
        self._timeout = timeout  # for calls that get no timeout of their own
        self._client: AsyncQdrantClient | None = None
        self._dims: dict[str, int] = {}  # collections known to exist -> vector size
        self._lexical: dict[str, bool] = {}  # -> whether it has the lexical sparse vector
        self._creating: asyncio.Lock | None = None

    @property
    def local(self) -> bool:
        return self._url is None

    # --- VectorStore ------------------------------------------------------------

    async def ensure_collection(self, name: str, dim: int) -> None:
        check_collection_name(name)
        if dim <= 0:
            raise ValueError(f"vector size must be positive, not {dim}")
        if name not in self._dims:
            self._creating = self._creating or asyncio.Lock()
            async with self._creating:
                if name not in self._dims:
                    await self._create_if_missing(name, dim)
        if self._dims[name] != dim:
            raise dimension_mismatch(name, existing=self._dims[name], requested=dim)

    async def upsert(self, name: str, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        dim = await self._dim(name)
        if dim is None:
            raise NotFound(f"Collection {name!r} does not exist yet: ensure_collection() first.")
        check_points(name, points, dim)
        lexical = self._lexical.get(name, False)
        for start in range(0, len(points), UPSERT_BATCH):
            batch = [
                models.PointStruct(id=p.id, vector=_vectors(p, lexical), payload=p.payload)
                for p in points[start : start + UPSERT_BATCH]
            ]
            async with self._call() as client:
                await client.upsert(name, points=batch, wait=True)

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
        if top_k <= 0:
            return []
        dim = await self._dim(name, timeout)
        if dim is None:
            return []
        if len(vector) != dim:
            raise dimension_mismatch(name, existing=dim, requested=len(vector))
        return await self._query(name, [float(x) for x in vector], None, conditions, top_k, timeout)

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
        if top_k <= 0 or not terms or await self._dim(name, timeout) is None or not self._lexical.get(name):
            return []
        return await self._query(name, _sparse(terms), LEXICAL, conditions, top_k, timeout)

    async def _query(
        self, name: str, query: Any, using: str | None, conditions: Any, top_k: int, timeout: float | None
    ) -> list[VectorHit]:
        """One scoped query (dense, or the named sparse vector); a missing collection holds nothing."""
        try:
            async with self._call(timeout) as client:
                response = await client.query_points(
                    name,
                    query=query,
                    using=using,
                    query_filter=_filter(conditions),
                    limit=top_k,
                    with_payload=True,
                    with_vectors=False,
                    timeout=math.ceil(timeout or self._timeout),
                )
        except _CollectionMissing:
            return []
        return [VectorHit(str(p.id), p.score, dict(p.payload or {})) for p in response.points]

    async def payloads(
        self, name: str, *, tenant: str, doc_id: str, fields: Sequence[str] = DEFAULT_PAYLOAD_FIELDS
    ) -> dict[str, dict[str, Any]]:
        query = _filter(scope(tenant, doc_id=doc_id))
        if await self._dim(name) is None:
            return {}
        found: dict[str, dict[str, Any]] = {}
        offset: Any = None
        try:
            async with self._call() as client:
                while True:
                    records, offset = await client.scroll(
                        name,
                        scroll_filter=query,
                        limit=SCROLL_PAGE,
                        offset=offset,
                        with_payload=list(fields) if fields else False,
                        with_vectors=False,
                    )
                    found.update((str(r.id), dict(r.payload or {})) for r in records)
                    if offset is None:
                        return found
        except _CollectionMissing:
            return {}

    async def delete(
        self, name: str, *, tenant: str, doc_id: str | None = None, ids: Sequence[str] | None = None
    ) -> int:
        if doc_id is None and ids is None:
            raise ValueError("delete needs a doc_id or ids (refusing to empty a whole tenant)")
        query = _filter(scope(tenant, doc_id=doc_id, ids=ids))
        if (ids is not None and not ids) or await self._dim(name) is None:
            return 0
        try:
            async with self._call() as client:
                # Qdrant does not say how many points a delete removed: count first.
                matched = (await client.count(name, count_filter=query, exact=True)).count
                if matched:
                    await client.delete(name, points_selector=models.FilterSelector(filter=query), wait=True)
                return matched
        except _CollectionMissing:
            return 0

    async def count(self, name: str, *, tenant: str, doc_id: str | None = None) -> int:
        query = _filter(scope(tenant, doc_id=doc_id))
        if await self._dim(name) is None:
            return 0
        try:
            async with self._call() as client:
                return (await client.count(name, count_filter=query, exact=True)).count
        except _CollectionMissing:
            return 0

    async def ping(self) -> None:
        async with self._call() as client:
            await client.get_collections()

    async def close(self) -> None:
        client, self._client = self._client, None
        self._dims.clear()
        if client is None:
            return
        if self.local:
            client = _local_clients.release(self._path)
        if client is not None:
            await client.close()

    # --- internals --------------------------------------------------------------

    def _connect(self) -> AsyncQdrantClient:
        if self._client is None:
            if self.local:
                self._client = _local_clients.acquire(self._path, _open_local)
            else:
                # No compatibility check: it is a blocking request in a thread at construction.
                self._client = AsyncQdrantClient(
                    url=self._url,
                    api_key=self._api_key,
                    timeout=math.ceil(self._timeout),
                    check_compatibility=False,
                    verify=tls.for_httpx(),  # passed on to its httpx client: the process's one TLS context
                )
        return self._client

    @asynccontextmanager
    async def _call(self, timeout: float | None = None) -> AsyncIterator[AsyncQdrantClient]:
        """Run client calls within a deadline, and translate the client's errors into ours."""
        budget = timeout if timeout is not None else self._timeout
        async with external_call("The vector store", budget, functools.partial(self._failure, budget=budget)):
            yield self._connect()

    def _failure(self, exc: Exception, *, budget: float) -> ApiError | None:
        """qdrant-client failures: the transport (timeout or unreachable) or the server's answer."""
        if isinstance(exc, ResponseHandlingException) and isinstance(exc.source, Exception):
            return self._failure(exc.source, budget=budget)
        if isinstance(exc, httpx.TimeoutException):
            return DeadlineExceeded(f"The vector store did not answer within {budget:.2f}s.")
        if isinstance(exc, httpx.TransportError | ResponseHandlingException):
            source = exc.source if isinstance(exc, ResponseHandlingException) else exc
            return VectorStoreUnavailable(
                f"The Qdrant server at {redact_url(self._url)} is unreachable ({type(source).__name__})."
            )
        if isinstance(exc, UnexpectedResponse) and exc.status_code == 404:
            return _CollectionMissing()
        if isinstance(exc, UnexpectedResponse) and exc.status_code in (502, 503, 504):
            return VectorStoreUnavailable(f"The Qdrant server answered {exc.status_code}.")
        if isinstance(exc, UnexpectedResponse):
            return UpstreamError(f"The Qdrant server answered {exc.status_code}: {_reason(exc)}")
        if isinstance(exc, ValueError) and "not found" in str(exc):  # local mode's way to say 404
            return _CollectionMissing()
        return None

    async def _dim(self, name: str, timeout: float | None = None) -> int | None:
        """The collection's vector size, or None when it does not exist (cached once known)."""
        check_collection_name(name)
        if name not in self._dims:
            try:
                async with self._call(timeout) as client:
                    info = await client.get_collection(name)
            except _CollectionMissing:
                return None
            self._dims[name] = _vector_size(info)
            self._lexical[name] = LEXICAL in (info.config.params.sparse_vectors or {})
        return self._dims[name]

    async def _create_if_missing(self, name: str, dim: int) -> None:
        async with self._call() as client:
            if not await client.collection_exists(name):
                try:
                    await client.create_collection(
                        name,
                        vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
                        sparse_vectors_config={LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                    )
                except UnexpectedResponse as exc:
                    if exc.status_code != 409:  # 409: another instance created it meanwhile
                        raise
            if not self.local:  # local mode has no payload indexes (and warns about them)
                await client.create_payload_index(name, "doc_id", models.PayloadSchemaType.KEYWORD)
                await client.create_payload_index(
                    name, "tenant", models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
                )
        size = await self._dim(name)
        if size is None:
            raise VectorStoreUnavailable(f"Collection {name!r} vanished right after it was created.")


def _open_local(path: str) -> AsyncQdrantClient:
    os.makedirs(path, exist_ok=True)
    try:
        return AsyncQdrantClient(path=path)
    except RuntimeError as exc:
        if "already accessed" in str(exc):
            raise folder_locked(path) from None
        raise


def _vector_size(info: models.CollectionInfo) -> int:
    vectors = info.config.params.vectors
    # Named vectors (a dict) are not ours: report them as a mismatch (size 0).
    return vectors.size if isinstance(vectors, models.VectorParams) else 0


def _sparse(terms: SparseTerms) -> models.SparseVector:
    indices = sorted(terms)
    return models.SparseVector(indices=indices, values=[float(terms[i]) for i in indices])


def _vectors(point: VectorPoint, lexical: bool) -> Any:
    dense = [float(x) for x in point.vector]
    return {"": dense, LEXICAL: _sparse(point.lexical)} if lexical and point.lexical else dense


def _reason(exc: UnexpectedResponse) -> str:
    try:
        return str(exc.structured()["status"]["error"])[:200]
    except Exception:  # noqa: BLE001 - any body shape: fall back to the status text
        return exc.reason_phrase


def _filter(conditions: Sequence[Condition]) -> models.Filter:
    return models.Filter(must=[_condition(c) for c in conditions])


def _condition(condition: Condition) -> models.Condition:
    if isinstance(condition, FieldIn):
        return models.FieldCondition(key=condition.key, match=models.MatchAny(any=list(condition.values)))
    if isinstance(condition, FieldEquals):
        value = condition.value
        if isinstance(value, float):  # Qdrant matches only str/int/bool: equality on floats is a range
            return models.FieldCondition(key=condition.key, range=models.Range(gte=value, lte=value))
        return models.FieldCondition(key=condition.key, match=models.MatchValue(value=value))
    return models.HasIdCondition(has_id=list(condition.ids))
