"""Index chunks: embed in batches, upsert with deterministic ids, leave no orphans.

A point's id comes from (tenant, doc_id, chunk id or index), so indexing the
same chunk twice rewrites nothing: an unchanged chunk (same text and payload)
is not even re-embedded. The chunks sent for a document are its whole new
content: points of that document that are not among them are deleted, so a
changed document leaves no old chunk behind.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import dependencies
from ..clients.embeddings import dimension, get_embedder
from ..errors import BadRequest
from ..settings import get_settings
from . import lexical
from .chunking import content_hash

POINT_NAMESPACE = uuid.UUID("6f1c1bde-7d1e-4b8a-9a51-5f8e3c2d9a10")
COLLECTION_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
COMPARED_FIELDS = ("content_hash", "chunk_id", "chunk_index", "source", "entity_ids", "metadata", "lexical")


@dataclass
class ChunkInput:
    doc_id: str
    text: str
    chunk_id: str | None = None
    chunk_index: int | None = None
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    entity_ids: list[str] = field(default_factory=list)


@dataclass
class IndexResult:
    collection: str
    dim: int
    upserted: int
    unchanged: int
    deleted: int
    chunk_ids: list[str]


def collection_name(requested: str | None) -> str:
    name = requested or get_settings().qdrant_collection
    if not COLLECTION_PATTERN.match(name):
        raise BadRequest("collection must be 1-64 letters, digits, '_' or '-'.")
    return name


def point_id(tenant: str, doc_id: str, chunk_key: str) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{tenant}\x1f{doc_id}\x1f{chunk_key}"))


def provenance_id(doc_id: str, chunk_index: int) -> str:
    """The chunk id graph facts cite as their source."""
    return f"{doc_id}#{chunk_index}"


def _payloads(tenant: str, chunks: Sequence[ChunkInput]) -> dict[str, dict[str, Any]]:
    next_index: dict[str, int] = {}
    payloads: dict[str, dict[str, Any]] = {}
    for chunk in chunks:
        index = chunk.chunk_index if chunk.chunk_index is not None else next_index.get(chunk.doc_id, 0)
        next_index[chunk.doc_id] = max(next_index.get(chunk.doc_id, 0), index + 1)
        chunk_id = chunk.chunk_id or provenance_id(chunk.doc_id, index)
        payloads[point_id(tenant, chunk.doc_id, chunk_id)] = {
            "doc_id": chunk.doc_id,
            "chunk_id": chunk_id,
            "chunk_index": index,
            "source": chunk.source,
            "text": chunk.text,
            "content_hash": content_hash(chunk.text),
            "entity_ids": sorted(set(chunk.entity_ids)),
            "metadata": chunk.metadata,
            "lexical": lexical.VERSION,
            "tenant": tenant,
        }
    return payloads


async def index_chunks(
    tenant: str, chunks: Sequence[ChunkInput], *, collection: str | None = None, replace: bool = True
) -> IndexResult:
    from ..stores.vectors import VectorPoint

    name = collection_name(collection)
    store, embedder = dependencies.vector_store(), get_embedder()
    wanted = _payloads(tenant, chunks)
    existing: dict[str, dict[str, Any]] = {}
    for doc_id in {payload["doc_id"] for payload in wanted.values()}:
        existing.update(await store.payloads(name, tenant=tenant, doc_id=doc_id, fields=COMPARED_FIELDS))

    changed = [
        pid
        for pid, payload in wanted.items()
        if {k: existing.get(pid, {}).get(k) for k in COMPARED_FIELDS} != {k: payload[k] for k in COMPARED_FIELDS}
    ]
    batch = get_settings().embed_batch_size
    for start in range(0, len(changed), batch):
        ids = changed[start : start + batch]
        vectors = await embedder.embed_passages([wanted[pid]["text"] for pid in ids])
        await store.ensure_collection(name, len(vectors[0]))
        await store.upsert(
            name,
            [
                VectorPoint(pid, vector, wanted[pid], lexical.passage_terms(wanted[pid]["text"]))
                for pid, vector in zip(ids, vectors)
            ],
        )

    orphans = [pid for pid in existing if pid not in wanted] if replace else []
    deleted = await store.delete(name, tenant=tenant, ids=orphans) if orphans else 0
    return IndexResult(
        collection=name,
        dim=await dimension(embedder),
        upserted=len(changed),
        unchanged=len(wanted) - len(changed),
        deleted=deleted,
        chunk_ids=[payload["chunk_id"] for payload in wanted.values()],
    )


@dataclass
class DeleteResult:
    chunks_deleted: int
    graph: dict[str, int] | None  # None when no graph is configured


async def delete_document(tenant: str, doc_id: str, *, collection: str | None = None) -> DeleteResult:
    """Remove a document's chunks and exactly the graph facts extracted from them."""
    name = collection_name(collection)
    store = dependencies.vector_store()
    chunk_ids = [
        p["chunk_id"]
        for p in (await store.payloads(name, tenant=tenant, doc_id=doc_id, fields=("chunk_id",))).values()
        if p.get("chunk_id")
    ]
    graph_counts = None
    graph = dependencies.graph_store()
    if graph is not None and chunk_ids:
        # Graph first: if it fails the chunks are still there to retry from.
        result = await graph.delete_sources(tenant, chunk_ids)
        graph_counts = {
            "nodes_deleted": result.nodes_deleted,
            "edges_deleted": result.edges_deleted,
            "edges_updated": result.edges_updated,
        }
    deleted = await store.delete(name, tenant=tenant, doc_id=doc_id)
    return DeleteResult(chunks_deleted=deleted, graph=graph_counts)
