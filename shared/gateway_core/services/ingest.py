"""Ingest one document: parse, chunk, extract its graph, index, and replace the old version.

Chunk ids are content-addressed (`<doc_id>#<index>@<hash8>`), so a new version
of a document only re-extracts and re-embeds the chunks that changed: facts
and points of unchanged chunks stay, those of vanished chunks are removed.
Every step is idempotent, so a retried or redelivered record changes nothing.

Progress is written to the document's status as it goes (documents_status.py).
Each chunk's extracted graph is saved there as soon as it is extracted, so a
version that a rate limit (`Deferred`, the record comes back after Retry-After)
or an exhausted token budget stopped halfway asks the model only for the
chunks still missing when it runs again. The version's facts are still
written all at once, when every chunk is extracted.

A supplied graph (a sidecar, or `graph` in POST /documents) states every chunk's facts anew, unchanged
chunks included: their new facts are written under a staging source (`<chunk id>~supplied`) with the
version, and only once the version is switched are their old facts removed and the new ones cited by
their chunks, so a fact dropped from the graph goes and a failed version leaves the old facts whole.
The same when a supplied graph is gone (its sidecar deleted): every chunk is extracted (or, with no
model, left without facts) and its facts replace the supplied ones (`DocumentStatus.replace_facts`
keeps that wish across a paused or failed delivery).
A failed version also takes back the merges its writes recorded (`resolution.take_back`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from .. import dependencies
from ..deadline import Deadline
from ..deadline import current as current_deadline
from ..errors import ApiError, RateLimited
from ..models.graph import GraphData
from ..observability import Stopwatch, count, logger
from ..settings import get_settings
from ..upstream import retry_after_s
from . import documents_status as status_store
from . import resolution
from .chunking import Chunk, chunk_text, content_hash
from .documents import parse_document
from .documents_status import PAUSED_BUDGET, DocumentStatus
from .extract import SYSTEM_PROMPT, schema_text
from .extraction_loop import ChunkExtraction
from .extraction_loop import tenant_metric as tenant_metric  # noqa: PLC0414 - re-exported: ingest_events uses it
from .index import ChunkInput, DeleteResult, collection_name, delete_document, index_chunks, point_id
from .supplied_graph import SuppliedGraph

# Time allowed to remove a failed version's writes, whatever is left of the batch's budget.
UNDO_BUDGET_S = 10.0
# Appended to an unchanged chunk's id: the source of a supplied graph's facts for it until the version is switched.
SUPPLIED_STAGING = "~supplied"


class Deferred(Exception):
    """The record must come back later: rate limited (after the provider's Retry-After) or paused by the
    tenant's token budget. What was extracted is saved; the next delivery continues from there."""

    def __init__(self, reason: str, delay_s: float, report: IngestReport) -> None:
        super().__init__(f"{reason}: retry in {delay_s:.0f} s")
        self.reason, self.delay_s, self.report = reason, delay_s, report


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
    extraction_calls: int = 0
    tokens: int = 0
    dropped: int = 0  # items left out of the extracted graphs (see DocumentStatus.dropped)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def chunk_id(doc_id: str, chunk: Chunk) -> str:
    return f"{doc_id}#{chunk.index}@{content_hash(chunk.text)[:8]}"


def graph_status() -> str | None:
    """None when the graph can be extracted, else why it is skipped."""
    if dependencies.graph_store() is None:
        return "skipped (no graph store)"
    if get_settings().extract_mode == "off":
        return "off"
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
    version: str = "",
    supplied: SuppliedGraph | None = None,
) -> IngestReport:
    """Parse, chunk, extract what changed, then switch to the new version; within the current deadline.

    Nothing is written to search until every chunk to extract is extracted. Then the new facts are written,
    the vanished chunks' facts forgotten and the vectors switched; if any write fails, what this
    version added is removed again, so the old version stays whole and a redelivery redoes it all.
    With a supplied graph, no model is asked. With the tenant's budget spent, the chunks are indexed
    (searchable) and the facts wait (`extraction: paused (budget)`, Deferred).
    """
    status = await status_store.get(tenant, doc_id) or DocumentStatus(doc_id=doc_id)
    if supplied is None and status.extraction == "supplied graph":  # the user's graph is gone: the model's replaces it
        status.replace_facts = True
    if status.version != version:
        status.chunks_extracted, status.dropped, status.dropped_reasons = 0, 0, {}
    status.version, status.source = version, source
    status.move("indexing")
    await status_store.put(tenant, status)
    started = time.perf_counter()
    try:
        report = await _ingest(tenant, doc_id, data, filename, source, content_type, metadata, supplied, status)
    except Deferred:
        raise
    except BaseException as exc:
        status.move("failed", error=_describe(exc))
        try:
            await asyncio.wait_for(status_store.put(tenant, status), UNDO_BUDGET_S)
        except Exception as failure:  # noqa: BLE001 - the original failure is what the caller must see
            logger.warning("could not record a failure", extra={"doc_id": doc_id, "reason": str(failure)[:300]})
        raise
    tenant_metric(tenant, "IngestLatency", (time.perf_counter() - started) * 1000, MetricUnit.Milliseconds)
    return report


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.code}: {exc.message}"[:500]
    return (str(exc) or type(exc).__name__)[:500]


@dataclass
class _Version:
    """A document's new version, against the one indexed now."""

    doc_id: str
    chunks: list[Chunk]
    ids: list[str]  # content-addressed, one per chunk
    known: dict[str, list[str]]  # the indexed version's chunk ids -> their entity ids
    pending_before: set[str]  # chunks of this version whose facts an earlier delivery left unwritten
    replaces: bool = False  # this version's graphs state every chunk's facts, unchanged chunks' too

    @property
    def changed(self) -> list[str]:
        return [cid for cid in self.ids if cid not in self.known]

    @property
    def vanished(self) -> list[str]:
        current = set(self.ids)
        return [cid for cid in self.known if cid not in current]


async def _ingest(
    tenant: str,
    doc_id: str,
    data: bytes,
    filename: str,
    source: str,
    content_type: str | None,
    metadata: dict[str, Any] | None,
    supplied: SuppliedGraph | None,
    status: DocumentStatus,
) -> IngestReport:
    report = IngestReport(doc_id=doc_id, tenant=tenant)
    watch = Stopwatch()
    with watch.stage("parse_chunk"):
        chunks = await _parse_and_chunk(data, filename, content_type)
    ids = [chunk_id(doc_id, chunk) for chunk in chunks]
    version = _Version(doc_id, chunks, ids, await _known_chunks(tenant, doc_id), set(status.pending_ids) & set(ids))
    version.replaces = supplied is not None or status.replace_facts
    report.chunks, report.chunks_changed, status.chunks = len(chunks), len(version.changed), len(chunks)

    graphs, remaining = await _graphs(tenant, version, supplied, status, report, watch)
    report.entities = sum(len(graph.nodes) for graph in graphs.values())
    report.relations = sum(len(graph.edges) for graph in graphs.values())
    written = graphs if not remaining else {}  # a version's facts are written all at once, or not yet
    version.replaces = version.replaces and not remaining  # the old facts stay until the new ones are complete

    status.move("indexing")
    await status_store.put(tenant, status)
    await _switch(tenant, version, written, _inputs(version, written, remaining, source, metadata), report, watch)
    report.timings_ms = watch.timings_ms
    await _record_ready(tenant, status, version, graphs, written, remaining)

    count("DocumentsIngested")
    count("ChunksIndexed", report.chunks_changed)
    tenant_metric(tenant, "ChunksIndexed", report.chunks_changed)
    tenant_metric(tenant, "FactsWritten", sum(len(graph.edges) for graph in written.values()))
    logger.info("document ingested", extra={"document": report.as_dict(), "extraction": status.extraction})
    if remaining:  # the chunks are searchable; the facts wait for budget
        raise Deferred("paused (budget)", float(get_settings().ingest_paused_retry_s), report)
    return report


async def _graphs(
    tenant: str,
    version: _Version,
    supplied: SuppliedGraph | None,
    status: DocumentStatus,
    report: IngestReport,
    watch: Stopwatch,
) -> tuple[dict[str, GraphData], list[str]]:
    """The chunks' graphs (supplied, saved by an earlier delivery, or extracted now) and the chunks still missing."""
    if supplied is not None and dependencies.graph_store() is not None:
        status.extraction = report.graph = "supplied graph"
        return supplied.per_chunk(version.chunks, version.ids), []  # from the user: no model
    skipped = graph_status()
    if skipped:
        status.extraction = report.graph = skipped
        return {}, []
    settings = get_settings()
    wanted = [
        cid for cid in version.ids if cid not in version.known or cid in version.pending_before or version.replaces
    ]
    if settings.extract_mode == "sample":
        wanted = sample(wanted, settings.extract_sample_chunks)
    saved = await status_store.saved_chunks(tenant, version.doc_id)
    graphs = {cid: saved[cid] for cid in wanted if cid in saved}
    missing = [cid for cid in wanted if cid not in saved]
    status.chunks_pending = len(missing)
    if missing:
        status.move("extracting")
        status.extraction = "pending"
        await status_store.put(tenant, status)
        by_id = dict(zip(version.ids, version.chunks, strict=True))
        with watch.stage("extract"):
            extraction = _Extraction(tenant, version.doc_id, status, graphs, report)
            stop = await extraction.run([(cid, by_id[cid].text) for cid in missing])
        remaining = [cid for cid in wanted if cid not in graphs]
        if remaining and isinstance(stop, RateLimited):
            await _wait_for_rate_limit(tenant, status, wanted, stop, report)
        if remaining:
            status.extraction = PAUSED_BUDGET
            return graphs, remaining
    status.extraction = report.graph = f"sample ({len(wanted)} chunks)" if settings.extract_mode == "sample" else "done"
    return graphs, []


class _Extraction(ChunkExtraction):
    """Ingestion's run of the extraction loop: within the batch's deadline (a call it cuts short fails the
    delivery), failures raised as they are; the report counts the calls, tokens and dropped items, the status
    the chunks extracted and still pending."""

    def __init__(
        self, tenant: str, doc_id: str, status: DocumentStatus, graphs: dict[str, GraphData], report: IngestReport
    ) -> None:
        super().__init__(tenant, doc_id, status, graphs)
        self.report = report

    def spent(self, tokens: int, calls: int) -> None:
        self.report.tokens += tokens
        self.report.extraction_calls += calls

    def extracted(self, chunk_id: str, dropped: int) -> None:
        self.report.dropped += dropped
        self.status.chunks_extracted += 1
        self.status.chunks_pending = max(0, self.status.chunks_pending - 1)


def _inputs(
    version: _Version,
    written: dict[str, GraphData],
    remaining: list[str],
    source: str,
    metadata: dict[str, Any] | None,
) -> list[ChunkInput]:
    """The new version's chunks as the vector store keeps them, each with the entities extracted from it."""
    entity_ids = {**version.known, **{cid: [node.id for node in graph.nodes] for cid, graph in written.items()}}
    return [
        ChunkInput(
            doc_id=version.doc_id,
            text=chunk.text,
            chunk_id=cid,
            chunk_index=chunk.index,
            source=source,
            metadata=metadata or {},
            entity_ids=entity_ids.get(cid, []) if cid not in remaining else [],
        )
        for cid, chunk in zip(version.ids, version.chunks, strict=True)
    ]


async def _switch(
    tenant: str,
    version: _Version,
    written: dict[str, GraphData],
    inputs: list[ChunkInput],
    report: IngestReport,
    watch: Stopwatch,
) -> None:
    """Write the new facts, forget the vanished chunks' facts, switch the vectors; undo all of it on failure.

    A supplied graph's facts for unchanged chunks are staged, then switched in once the rest succeeded."""
    fresh = [cid for cid in written if cid not in version.known or cid in version.pending_before]
    new_facts = [cid for cid in fresh if cid not in version.known or not version.replaces]
    restated = [cid for cid in version.ids if cid in version.known and cid not in new_facts] if version.replaces else []
    sources = {cid: cid if cid in new_facts else staged(cid) for cid in written}
    recorded = resolution.Recorded()
    try:
        with watch.stage("graph"):
            await _write_facts(tenant, {sources[cid]: graph for cid, graph in written.items()}, recorded)
            report.chunks_removed = await _forget_vanished(tenant, version.vanished)
        with watch.stage("index"):
            await _index(tenant, version.doc_id, inputs)
    except BaseException:
        await _undo_new_version(tenant, version.doc_id, new_facts, version.changed, restated, recorded)
        raise
    if restated:
        with watch.stage("graph"):
            await _restate(tenant, restated, written)


def staged(chunk_id: str) -> str:
    return f"{chunk_id}{SUPPLIED_STAGING}"


async def _restate(tenant: str, restated: list[str], written: dict[str, GraphData]) -> None:
    """Unchanged chunks now state what the supplied graph says: their old facts go, the staged ones are cited
    by the chunks. A failure here leaves the new facts staged (never lost); a redelivery finishes the switch."""
    graph = dependencies.graph_store()
    if graph is None:
        return
    await graph.delete_sources(tenant, restated, timeout=current_deadline().timeout())
    await _write_facts(tenant, {cid: written[cid] for cid in restated if cid in written})
    await graph.delete_sources(tenant, [staged(cid) for cid in restated], timeout=current_deadline().timeout())


async def _record_ready(
    tenant: str,
    status: DocumentStatus,
    version: _Version,
    graphs: dict[str, GraphData],
    written: dict[str, GraphData],
    remaining: list[str],
) -> None:
    """The document's counts once searchable; the saved chunk graphs go once their facts are written."""
    current = set(version.ids) if not version.replaces else set()  # the written graphs state every chunk's facts
    facts = {cid: n for cid, n in status.chunk_facts.items() if cid in current and cid not in written}
    facts.update({cid: len(graph.edges) for cid, graph in written.items()})
    status.chunk_facts, status.facts = facts, sum(facts.values())
    status.pending_ids = [cid for cid in version.ids if cid in set(remaining) | set(graphs)] if remaining else []
    status.chunks_pending = len(remaining)
    status.replace_facts = status.replace_facts and bool(remaining)
    status.move("ready")
    await status_store.put(tenant, status)
    if not remaining:
        await status_store.clear_chunks(tenant, version.doc_id, list(graphs))


def sample(ids: list[str], count: int) -> list[str]:
    """`count` chunk ids spread evenly over the document (all of them when there are fewer)."""
    if count <= 0:
        return []
    if len(ids) <= count:
        return ids
    step = len(ids) / count
    return [ids[int(i * step)] for i in range(count)]


async def _wait_for_rate_limit(
    tenant: str, status: DocumentStatus, wanted: list[str], error: RateLimited, report: IngestReport
) -> None:
    """Every provider asks to come back later: record the progress and defer the record."""
    wait = retry_after_s({k.lower(): v for k, v in error.headers.items()})
    delay = wait if wait is not None else float(get_settings().ingest_rate_limited_retry_s)
    status.move("queued")
    status.extraction = f"waiting (rate limited, retry in {math.ceil(delay)} s)"
    status.pending_ids = sorted(set(status.pending_ids) | set(wanted))
    await status_store.put(tenant, status)
    raise Deferred("rate limited", delay, report)


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


async def _write_facts(tenant: str, graphs: dict[str, GraphData], recorded: resolution.Recorded | None = None) -> None:
    """Each source's facts (a chunk's, or staged), resolved against the graph (`resolution`); the merges
    they make are collected in `recorded`."""
    graph = dependencies.graph_store()
    if graph is None or not graphs:
        return
    for source, data in graphs.items():
        await resolution.write(tenant, data, sources=[source], recorded=recorded)


async def _undo_new_version(
    tenant: str,
    doc_id: str,
    fact_ids: list[str],
    point_ids: list[str],
    restated: Sequence[str] = (),
    recorded: resolution.Recorded | None = None,
) -> None:
    """Remove what a failed version added (the facts it wrote or staged, its new points, the merges its writes
    recorded); best effort."""
    staged_ids = [staged(cid) for cid in restated]
    if not fact_ids and not point_ids and not staged_ids:
        return
    budget = Deadline.after(UNDO_BUDGET_S)  # its own: the failure may be the request's deadline itself
    try:
        graph = dependencies.graph_store()
        if graph is not None:
            await graph.delete_sources(tenant, sorted({*fact_ids, *point_ids, *staged_ids}), timeout=budget.timeout())
        points = [point_id(tenant, doc_id, cid) for cid in point_ids]
        if points:
            await dependencies.vector_store().delete(collection_name(None), tenant=tenant, ids=points)
    except Exception as exc:  # noqa: BLE001 - the original failure is what the caller must see
        logger.warning("could not undo a failed version", extra={"doc_id": doc_id, "reason": str(exc)[:300]})
    if recorded is None or not (recorded.merges or recorded.points):
        return
    try:
        await resolution.take_back(tenant, recorded, budget)
    except Exception as exc:  # noqa: BLE001 - the original failure is what the caller must see
        logger.warning(
            "could not take back a failed version's merges", extra={"doc_id": doc_id, "reason": str(exc)[:300]}
        )


async def remove_document(tenant: str, doc_id: str, *, collection: str | None = None) -> DeleteResult:
    """A document's chunks, exactly the facts only they stated, and its status (S3 delete or DELETE /documents)."""
    result = await delete_document(tenant, doc_id, collection=collection)
    await status_store.forget(tenant, doc_id)
    logger.info(
        "document removed", extra={"doc_id": doc_id, "chunks_deleted": result.chunks_deleted, "graph": result.graph}
    )
    return result


# --- POST /documents and its dry run ------------------------------------------------


async def ingest_text(tenant: str, doc_id: str, text: str, supplied: SuppliedGraph | None) -> DocumentStatus:
    """A document sent through the API, ingested now (the same path as a file in the bucket).

    Paused by the budget: the chunks are searchable and the status says so (send it again to resume).
    Rate limited: RateLimited (429 with the provider's Retry-After); what was extracted is kept.
    """
    data = text.encode()
    try:
        await ingest_document(
            tenant,
            doc_id,
            data,
            filename=doc_id,
            content_type=None if "." in doc_id.rsplit("/", 1)[-1] else "text/plain",
            source=f"api:{doc_id}",
            version=f"sha256:{content_hash(text)[:16]}",
            supplied=supplied,
        )
    except Deferred as exc:
        if exc.reason == "rate limited":
            raise RateLimited(
                "The extraction model is rate limited; what was extracted is kept: send the document again later.",
                headers={"Retry-After": str(max(1, math.ceil(exc.delay_s)))},
            ) from None
    found = await status_store.get(tenant, doc_id)
    assert found is not None
    return found


def estimate_tokens(text: str) -> int:
    """A rough token count: about 4 characters per token for ASCII text, one per other character (CJK)."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)


async def estimate(tenant: str, doc_id: str, text: str, supplied: bool) -> dict[str, Any]:
    """What ingesting this text would cost, before anything is spent (nothing is written)."""
    settings = get_settings()
    chunks = await _parse_and_chunk(text.encode(), doc_id, None if "." in doc_id.rsplit("/", 1)[-1] else "text/plain")
    ids = [chunk_id(doc_id, chunk) for chunk in chunks]
    known = await _known_chunks(tenant, doc_id)
    status = await status_store.get(tenant, doc_id)
    pending = set(status.pending_ids) if status else set()
    skipped = "supplied graph" if supplied else graph_status()
    # A supplied graph gone: every chunk is extracted again.
    replacing = status is not None and (status.extraction == "supplied graph" or status.replace_facts)
    wanted = [] if skipped else [cid for cid in ids if cid not in known or cid in pending or replacing]
    if settings.extract_mode == "sample":
        wanted = sample(wanted, settings.extract_sample_chunks)
    saved = set(await status_store.saved_chunks(tenant, doc_id)) if wanted else set()
    calls = [cid for cid in wanted if cid not in saved]
    by_id = dict(zip(ids, chunks, strict=True))
    prompt_overhead = estimate_tokens(SYSTEM_PROMPT.format(schema=schema_text()))
    prompt = sum(prompt_overhead + estimate_tokens(by_id[cid].text) for cid in calls)
    completion = sum(estimate_tokens(by_id[cid].text) for cid in calls)  # a graph is about as long as its text
    budget = status_store.token_budget(tenant)
    used = await status_store.tokens_used(tenant)
    return {
        "doc_id": doc_id,
        "chunks": len(chunks),
        "chunks_unchanged": sum(1 for cid in ids if cid in known and cid not in pending),
        "extraction": skipped or settings.extract_mode,
        "extraction_calls": len(calls),
        "estimated_tokens": {"prompt": prompt, "completion": completion, "total": prompt + completion},
        "budget": {
            "limit": budget,
            "used": used,
            "remaining": None if budget is None else max(0, budget - used),
            "fits": budget is None or used + prompt + completion <= budget,
        },
    }
