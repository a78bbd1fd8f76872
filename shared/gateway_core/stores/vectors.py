"""The vector store interface the services use, and the value types it speaks.

Adapters (qdrant-client, the embedded qdrant-edge engine) implement
`VectorStore`. Every read and delete is scoped to a tenant: the scope is built
here once (`scope`), as engine-neutral conditions each adapter translates, so
no adapter can forget it.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..errors import BadRequest, Conflict, Unavailable, Unprocessable
from ..models.search import Scalar, SearchFilter

COLLECTION_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
LEXICAL = "lexical"  # the sparse vector (BM25-style terms, IDF applied by the engine) beside the dense one
SparseTerms = dict[int, float]
DEFAULT_PAYLOAD_FIELDS = ("content_hash", "chunk_index")


@dataclass(frozen=True)
class VectorPoint:
    id: str  # a UUID string, deterministic (made by the caller)
    vector: Sequence[float]
    payload: dict[str, Any]
    lexical: SparseTerms | None = None  # stored when the collection has a lexical index


class VectorHit:
    """A search result: the point's id (a string), its score and its payload.

    The id may be given as a function that makes it, called once when the id is first read: the embedded
    engine hands out ids as `uuid.UUID` objects, costly to make and print, and a retrieval reads dozens of
    hits to show a few."""

    __slots__ = ("_id", "payload", "score")

    def __init__(self, id: str | Callable[[], str], score: float, payload: dict[str, Any]) -> None:
        self._id, self.score, self.payload = id, score, payload

    @property
    def id(self) -> str:
        if not isinstance(self._id, str):
            self._id = self._id()
        return self._id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VectorHit):
            return NotImplemented
        return (self.id, self.score, self.payload) == (other.id, other.score, other.payload)

    __hash__ = None  # type: ignore[assignment]  # mutable payload, as the dataclass it replaces

    def __repr__(self) -> str:
        return f"VectorHit(id={self.id!r}, score={self.score!r}, payload={self.payload!r})"


class DimensionMismatch(Conflict):
    code = "dimension_mismatch"


class VectorStoreUnavailable(Unavailable):
    """The vector database cannot be reached (or its folder is locked)."""


class VectorStore(Protocol):
    async def ensure_collection(self, name: str, dim: int) -> None: ...

    async def upsert(self, name: str, points: Sequence[VectorPoint]) -> None: ...

    async def search(
        self,
        name: str,
        vector: Sequence[float],
        *,
        tenant: str,
        top_k: int,
        filter: SearchFilter | None = None,
        timeout: float | None = None,
    ) -> list[VectorHit]: ...

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
        """Top-k by BM25 over the lexical terms; [] when the collection has no lexical index (older ones)."""
        ...

    async def payloads(
        self, name: str, *, tenant: str, doc_id: str, fields: Sequence[str] = DEFAULT_PAYLOAD_FIELDS
    ) -> dict[str, dict[str, Any]]:
        """Point id -> the selected payload fields, for every point of one document."""
        ...

    async def delete(
        self, name: str, *, tenant: str, doc_id: str | None = None, ids: Sequence[str] | None = None
    ) -> int:
        """Delete the tenant's points of `doc_id` and/or with `ids` (both: both must hold)."""
        ...

    async def count(self, name: str, *, tenant: str, doc_id: str | None = None) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


# --- engine-neutral conditions --------------------------------------------------


@dataclass(frozen=True)
class FieldEquals:
    key: str
    value: Scalar


@dataclass(frozen=True)
class FieldIn:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class IdIn:
    ids: tuple[str, ...]


Condition = FieldEquals | FieldIn | IdIn


def scope(
    tenant: str, *, doc_id: str | None = None, filter: SearchFilter | None = None, ids: Sequence[str] | None = None
) -> list[Condition]:
    """The conditions that must all hold; the tenant is always the first."""
    if not tenant:
        raise ValueError("a tenant is required for every vector store read or delete")
    conditions: list[Condition] = [FieldEquals("tenant", tenant)]
    if doc_id is not None:
        conditions.append(FieldEquals("doc_id", doc_id))
    if ids is not None:
        check_ids(ids)
        conditions.append(IdIn(tuple(ids)))
    if filter is not None:
        if filter.doc_ids is not None:
            conditions.append(FieldIn("doc_id", tuple(filter.doc_ids)))
        if filter.chunk_ids is not None:
            conditions.append(FieldIn("chunk_id", tuple(filter.chunk_ids)))
        for key, value in (filter.metadata or {}).items():
            conditions.append(FieldEquals(f"metadata.{key}", value))
    return conditions


# --- checks shared by the adapters ------------------------------------------------


def check_collection_name(name: str) -> None:
    # The name becomes a URL segment or a folder: keep it boring.
    if not COLLECTION_PATTERN.fullmatch(name):
        raise BadRequest("collection must be 1-64 letters, digits, '_' or '-'.")


def check_ids(ids: Sequence[str]) -> None:
    for point_id in ids:
        try:
            uuid.UUID(point_id)
        except (ValueError, TypeError, AttributeError):
            raise Unprocessable(f"point id {point_id!r} is not a UUID string") from None


def check_points(name: str, points: Sequence[VectorPoint], dim: int) -> None:
    check_ids([point.id for point in points])
    for point in points:
        if len(point.vector) != dim:
            raise dimension_mismatch(name, existing=dim, requested=len(point.vector))


def dimension_mismatch(name: str, *, existing: int | None, requested: int) -> DimensionMismatch:
    size = f"{existing}-dimensional vectors" if existing else "vectors of another shape"
    return DimensionMismatch(
        f"Collection {name!r} holds {size}, but {requested}-dimensional vectors were given. "
        "Use another collection (QDRANT_COLLECTION) for this embedding model, or re-index.",
        details={"collection": name, "existing_dim": existing, "requested_dim": requested},
    )


def folder_locked(path: str) -> VectorStoreUnavailable:
    return VectorStoreUnavailable(
        f"The local vector store folder {path!r} is in use by another process. "
        "Stop that process, or set QDRANT_PATH to another folder (or QDRANT_URL to a Qdrant server)."
    )


# --- embedded engines: one open database per folder per process -------------------

H = TypeVar("H")


class SharedByFolder(Generic[H]):
    """Open an embedded database once per folder and share it inside the process.

    Embedded engines lock their folder. Stores are rebuilt when the event loop
    changes (tests, a restarted local server) without the old one being
    closed, so each new store must reuse the open handle, not fight its lock.
    """

    def __init__(self) -> None:
        self._handles: dict[str, tuple[H, int]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(path: str) -> str:
        return os.path.realpath(path)

    def acquire(self, path: str, open_handle: Callable[[str], H]) -> H:
        key = self.key(path)
        with self._lock:
            handle, users = self._handles.get(key) or (open_handle(path), 0)
            self._handles[key] = (handle, users + 1)
            return handle

    def release(self, path: str) -> H | None:
        """The handle, once its last user released it (the caller closes it)."""
        key = self.key(path)
        with self._lock:
            handle, users = self._handles[key]
            if users > 1:
                self._handles[key] = (handle, users - 1)
                return None
            del self._handles[key]
            return handle
