"""Ingest one document: parse, chunk, extract its graph, index, and replace the old version.

Chunk ids are content-addressed (`<doc_id>#<index>@<hash8>`), so a new version
of a document only re-extracts and re-embeds the chunks that changed: facts
and points of unchanged chunks stay, those of vanished chunks are removed.
Every step is idempotent, so a retried or redelivered record changes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .. import dependencies
from ..deadline import Deadline
from ..deadline import current as current_deadline
from ..models.graph import GraphData
from ..observability import Stopwatch, logger, metrics
from ..settings import get_settings
from .chunking import Chunk, chunk_text, content_hash
from .documents import parse_document
from .extract import ExtractOptions, extract_graph
from .index import ChunkInput, collection_name, delete_document, index_chunks, point_id

# Time allowed to remove a failed version's writes, whatever is left of the batch's budget.
UNDO_BUDGET_S = 10.0


@dataclass
class IngestReport:
    doc_id: str
    tenant: str
    chunks: int = 0
    chunks_changed: int = 0
    chunks_removed: int = 0
    entities: int = 0
    relations: int = 0
    graph: str = "ok"
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def chunk_id(doc_id: str, chunk: Chunk) -> str:
    return f"{doc_id}#{chunk.index}@{content_hash(chunk.text)[:8]}"


def graph_status() -> str | None:
    """None when the graph can be extracted, else why it is skipped."""
    if dependencies.graph_store() is None:
        return "skipped (no graph store)"
    if not get_settings().llm_providers:
        return "skipped (no LLM)"
    return None


async def ingest_document(
    tenant: str,
    doc_id: str,
    data: bytes,
    *,
    filename: str,
    source: str,
    content_type: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> IngestReport:
    """Parse, chunk, extract what changed, then switch to the new version; within the current deadline.

    Nothing is written until every changed chunk is extracted. Then the new facts are written,
    the vanished chunks' facts forgotten and the vectors switched; if any write fails, what this
    version added is removed again, so the old version stays whole and a redelivery redoes it all.
    """
    report = IngestReport(doc_id=doc_id, tenant=tenant)
    watch = Stopwatch()
    with watch.stage("parse_chunk"):
        chunks = await _parse_and_chunk(data, filename, content_type)
    ids = [chunk_id(doc_id, chunk) for chunk in chunks]
    known = await _known_chunks(tenant, doc_id)
    changed = [(cid, chunk) for cid, chunk in zip(ids, chunks, strict=True) if cid not in known]
    report.chunks, report.chunks_changed = len(chunks), len(changed)

    graphs: dict[str, GraphData] = {}
    skipped = graph_status()
    if skipped:
        report.graph = skipped
    elif changed:
        with watch.stage("extract"):
            graphs = await _extract(changed)
    report.entities = sum(len(graph.nodes) for graph in graphs.values())
    report.relations = sum(len(graph.edges) for graph in graphs.values())

    entity_ids = {**known, **{cid: [node.id for node in graph.nodes] for cid, graph in graphs.items()}}
    inputs = [
        ChunkInput(
            doc_id=doc_id,
            text=chunk.text,
            chunk_id=cid,
            chunk_index=chunk.index,
            source=source,
            metadata=metadata or {},
            entity_ids=entity_ids.get(cid, []),
        )
        for cid, chunk in zip(ids, chunks, strict=True)
    ]
    vanished = [cid for cid in known if cid not in set(ids)]
    try:
        with watch.stage("graph"):
            await _write_facts(tenant, graphs)
            report.chunks_removed = await _forget_vanished(tenant, vanished)
        with watch.stage("index"):
            await _index(tenant, doc_id, inputs)
    except BaseException:
        await _undo_new_version(tenant, doc_id, [cid for cid, _ in changed])
        raise
    report.timings_ms = watch.timings_ms

    metrics.add_metric(name="DocumentsIngested", unit="Count", value=1)
    metrics.add_metric(name="ChunksIndexed", unit="Count", value=report.chunks_changed)
    logger.info("document ingested", extra={"document": report.as_dict()})
    return report


async def _parse_and_chunk(data: bytes, filename: str, content_type: str | None) -> list[Chunk]:
    """Off the event loop: parsing a PDF or chunking a long text is CPU work."""
    settings = get_settings()
    parsed = await asyncio.to_thread(parse_document, data, filename=filename, content_type=content_type)
    return await asyncio.to_thread(chunk_text, parsed.text, size=settings.chunk_size, overlap=settings.chunk_overlap)


async def _known_chunks(tenant: str, doc_id: str) -> dict[str, list[str]]:
    """The indexed version's chunk ids, each with the entity ids extracted from it."""
    existing = await dependencies.vector_store().payloads(
        collection_name(None), tenant=tenant, doc_id=doc_id, fields=("chunk_id", "entity_ids")
    )
    return {p["chunk_id"]: p.get("entity_ids") or [] for p in existing.values() if p.get("chunk_id")}


async def _index(tenant: str, doc_id: str, inputs: list[ChunkInput]) -> None:
    if inputs:
        await index_chunks(tenant, inputs, replace=True)
    else:  # an empty new version: nothing of the old one may stay
        await delete_document(tenant, doc_id)


async def _forget_vanished(tenant: str, vanished: list[str]) -> int:
    """Facts only the vanished chunks stated go with them (their points went with `replace`)."""
    graph = dependencies.graph_store()
    if vanished and graph is not None:
        await graph.delete_sources(tenant, vanished, timeout=current_deadline().timeout())
    return len(vanished)


async def _extract(changed: list[tuple[str, Chunk]]) -> dict[str, GraphData]:
    """Each changed chunk's graph, with bounded concurrency; the first failure cancels (and awaits) the rest."""
    limit = asyncio.Semaphore(get_settings().extract_concurrency)
    options = ExtractOptions(min_nodes=0, allow_empty=True)

    async def one(chunk: Chunk) -> GraphData:
        async with limit:
            return (await extract_graph(chunk.text, options)).graph

    async with asyncio.TaskGroup() as group:
        tasks = {cid: group.create_task(one(chunk)) for cid, chunk in changed}
    return {cid: task.result() for cid, task in tasks.items()}


async def _write_facts(tenant: str, graphs: dict[str, GraphData]) -> None:
    """Each chunk's facts, with the chunk as their source."""
    graph = dependencies.graph_store()
    if graph is None or not graphs:
        return
    for cid, data in graphs.items():
        await graph.upsert(tenant, data, sources=[cid], timeout=current_deadline().timeout())


async def _undo_new_version(tenant: str, doc_id: str, new_ids: list[str]) -> None:
    """Remove what a failed version added (its points and the facts only its chunks stated); best effort."""
    if not new_ids:
        return
    budget = Deadline.after(UNDO_BUDGET_S)  # its own: the failure may be the request's deadline itself
    try:
        graph = dependencies.graph_store()
        if graph is not None:
            await graph.delete_sources(tenant, new_ids, timeout=budget.timeout())
        points = [point_id(tenant, doc_id, cid) for cid in new_ids]
        await dependencies.vector_store().delete(collection_name(None), tenant=tenant, ids=points)
    except Exception as exc:  # noqa: BLE001 - the original failure is what the caller must see
        logger.warning("could not undo a failed version", extra={"doc_id": doc_id, "reason": str(exc)[:300]})


async def remove_document(tenant: str, doc_id: str) -> dict[str, Any]:
    result = await delete_document(tenant, doc_id)
    logger.info(
        "document removed", extra={"doc_id": doc_id, "chunks_deleted": result.chunks_deleted, "graph": result.graph}
    )
    return {"doc_id": doc_id, "chunks_deleted": result.chunks_deleted, "graph": result.graph}
