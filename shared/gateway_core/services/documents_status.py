"""Document status, unfinished extractions and the tenants' token ledger, kept in the vector store.

Why the vector store: every deployment already has one, it survives cold starts, it is tenant-scoped
by the store's own conditions (no second isolation scheme to get wrong), and it needs no new
infrastructure or IAM. The records live in a collection of their own (`DOCUMENTS_COLLECTION`,
default `<QDRANT_COLLECTION>_documents`) of one-dimensional points, so they never appear in a
search of the chunks. One point per record, with a deterministic id:

- `status`: one per document (version, state, counts, tokens, last update);
- `chunk`: the graph extracted from one chunk of a version that is not complete yet (a
  rate limit or an exhausted budget stopped it); a redelivery reuses it instead of asking the
  model again, and it is removed once the version's facts are written;
- `usage`: one per tenant, the extraction tokens it has spent (the budget's ledger).

Reading one document reads only its points (the `doc_id` index). Listing reads the tenant's status
points (a filtered query, up to LIST_LIMIT documents per tenant) and pages them by doc_id.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import dependencies
from ..models.graph import GraphData
from ..models.search import SearchFilter
from ..registry import registry
from ..settings import get_settings

NAMESPACE = uuid.UUID("0b7c4f5e-31a2-4d0c-9d7e-5a1f26c0e8b4")
USAGE_DOC = "\x00usage"  # a doc_id no document can have (NUL is refused in every input)
LIST_LIMIT = 10_000
FIELDS = ("metadata", "status", "chunk_id", "graph", "tokens")

STATES = ("queued", "indexing", "extracting", "ready", "failed")
PAUSED_BUDGET = "paused (budget)"


@dataclass
class DocumentStatus:
    doc_id: str
    version: str = ""
    state: str = "queued"
    error: str | None = None
    # How the graph is made: pending, done, paused (budget), waiting (rate limited), off, sample,
    # supplied graph, skipped (no LLM / no graph store).
    extraction: str = "pending"
    chunks: int = 0
    chunks_extracted: int = 0  # of the chunks this version extracts
    chunks_pending: int = 0  # still to extract (a paused or waiting document)
    facts: int = 0  # relations written for the current version's chunks
    tokens: int = 0  # extraction tokens spent on this document (prompt + completion, every version)
    extraction_calls: int = 0
    # Items the model gave that were left out of this version's extracted graphs (bad ids or types, edges to
    # nodes it did not list, unreadable shapes: what /graph/extract lists in `dropped`), and how many per reason.
    dropped: int = 0
    dropped_reasons: dict[str, int] = field(default_factory=dict)
    source: str | None = None
    updated_at: str = ""
    history: list[dict[str, str]] = field(default_factory=list)  # the last state changes
    # The last re-extraction (POST /documents/{doc_id}/reextract, services/reextract.py): state, chunks
    # done of total, tokens, error; None if the document was never re-extracted.
    reextract: dict[str, Any] | None = None
    # Kept for the ingest function, not shown: chunks whose facts are not written yet, relations per chunk,
    # and the chunks the running re-extraction has extracted (their graphs are saved like a paused version's).
    pending_ids: list[str] = field(default_factory=list)
    chunk_facts: dict[str, int] = field(default_factory=dict)
    reextracted_ids: list[str] = field(default_factory=list)
    # The document's supplied graph is gone: the next complete version's facts replace those of every chunk.
    replace_facts: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def public(self) -> dict[str, Any]:
        hidden = ("pending_ids", "chunk_facts", "reextracted_ids", "replace_facts")
        return {key: value for key, value in self.as_dict().items() if key not in hidden}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> DocumentStatus:
        known = {key: value[key] for key in cls.__dataclass_fields__ if key in value}
        return cls(**known)

    def move(self, state: str, *, error: str | None = None) -> None:
        if state != self.state or error:
            self.history = [*self.history, {"state": state, "at": _now()}][-10:]
        self.state, self.error = state, error


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def collection() -> str:
    settings = get_settings()
    return settings.documents_collection or f"{settings.qdrant_collection}_documents"


def _point_id(tenant: str, doc_id: str, kind: str, key: str = "") -> str:
    return str(uuid.uuid5(NAMESPACE, f"{tenant}\x1f{doc_id}\x1f{kind}\x1f{key}"))


async def _upsert(tenant: str, doc_id: str, kind: str, key: str, body: dict[str, Any]) -> None:
    from ..stores.vectors import VectorPoint

    store, name = dependencies.vector_store(), collection()
    await store.ensure_collection(name, 1)
    payload = {"tenant": tenant, "doc_id": doc_id, "metadata": {"kind": kind}, **body}
    await store.upsert(name, [VectorPoint(_point_id(tenant, doc_id, kind, key), [1.0], payload)])


async def _points(tenant: str, doc_id: str) -> list[dict[str, Any]]:
    found = await dependencies.vector_store().payloads(collection(), tenant=tenant, doc_id=doc_id, fields=FIELDS)
    return list(found.values())


def _kind(payload: dict[str, Any]) -> str:
    return str((payload.get("metadata") or {}).get("kind", ""))


# --- status -----------------------------------------------------------------------


async def get(tenant: str, doc_id: str) -> DocumentStatus | None:
    for payload in await _points(tenant, doc_id):
        if _kind(payload) == "status" and isinstance(payload.get("status"), dict):
            return DocumentStatus.from_dict(payload["status"])
    return None


async def put(tenant: str, status: DocumentStatus) -> None:
    status.updated_at = _now()
    await _upsert(tenant, status.doc_id, "status", "", {"status": status.as_dict()})


async def list_documents(
    tenant: str, *, limit: int, after: str | None = None
) -> tuple[list[DocumentStatus], str | None]:
    """One page of the tenant's documents in doc_id order, and the cursor of the next page (None: last)."""
    hits = await dependencies.vector_store().search(
        collection(), [1.0], tenant=tenant, top_k=LIST_LIMIT, filter=SearchFilter(metadata={"kind": "status"})
    )
    found = sorted(
        (
            DocumentStatus.from_dict(hit.payload["status"])
            for hit in hits
            if isinstance(hit.payload.get("status"), dict)
        ),
        key=lambda status: status.doc_id,
    )
    rest = [status for status in found if after is None or status.doc_id > after]
    page = rest[:limit]
    return page, (page[-1].doc_id if len(rest) > limit else None)


async def forget(tenant: str, doc_id: str) -> None:
    """A removed document's status and unfinished extractions (its spent tokens stay in the ledger)."""
    await dependencies.vector_store().delete(collection(), tenant=tenant, doc_id=doc_id)


# --- unfinished extractions ---------------------------------------------------------


async def saved_chunks(tenant: str, doc_id: str) -> dict[str, GraphData]:
    """Chunk id -> the graph already extracted from it, for a version not complete yet."""
    saved = {}
    for payload in await _points(tenant, doc_id):
        if _kind(payload) == "chunk" and payload.get("chunk_id") and isinstance(payload.get("graph"), str):
            saved[str(payload["chunk_id"])] = GraphData.model_validate(json.loads(payload["graph"]))
    return saved


async def save_chunk(tenant: str, doc_id: str, chunk_id: str, graph: GraphData, tokens: int) -> None:
    body = {"chunk_id": chunk_id, "graph": graph.model_dump_json(), "tokens": tokens}
    await _upsert(tenant, doc_id, "chunk", chunk_id, body)


async def clear_chunks(tenant: str, doc_id: str, chunk_ids: list[str]) -> None:
    if chunk_ids:
        ids = [_point_id(tenant, doc_id, "chunk", cid) for cid in chunk_ids]
        await dependencies.vector_store().delete(collection(), tenant=tenant, ids=ids)


# --- the token ledger -----------------------------------------------------------------


def token_budget(tenant: str) -> int | None:
    settings = get_settings()
    return settings.extract_token_budgets.get(tenant, settings.extract_token_budget)


async def tokens_used(tenant: str) -> int:
    for payload in await _points(tenant, USAGE_DOC):
        if _kind(payload) == "usage":
            return int(payload.get("tokens") or 0)
    return 0


async def add_tokens(tenant: str, tokens: int) -> int:
    """Add to the tenant's spent tokens; the new total. Serialized within the process (concurrent
    invocations may each overshoot the budget by the calls they have in flight: a soft budget)."""
    lock = registry.get("documents:ledger", asyncio.Lock)
    async with lock:
        total = await tokens_used(tenant) + tokens
        await _upsert(tenant, USAGE_DOC, "usage", "", {"tokens": total})
        return total


async def budget_state(tenant: str) -> dict[str, int | None]:
    """The tenant's extraction budget: {limit, used, remaining} (limit and remaining None: no budget)."""
    budget, used = token_budget(tenant), await tokens_used(tenant)
    return {"limit": budget, "used": used, "remaining": None if budget is None else max(0, budget - used)}


async def budget_left(tenant: str) -> int | None:
    """Tokens the tenant may still spend (None: no budget)."""
    budget = token_budget(tenant)
    if budget is None:
        return None
    return max(0, budget - await tokens_used(tenant))
