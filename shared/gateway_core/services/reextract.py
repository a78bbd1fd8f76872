"""Re-extract an ingested document's graph from its stored chunks (`POST /documents/{doc_id}/reextract`).

What it does, for a document that ingestion (the bucket or `POST /documents`) knows:

- **From the stored chunks**: the text is the chunks' text in the vector store; nothing is uploaded again,
  and the chunk ids (content-addressed) stay, so passages and citations are unchanged.
- **As ingestion extracts**: through the same loop (`extraction_loop.ChunkExtraction`), one call per chunk
  (the providers in order, `EXTRACT_CONCURRENCY` at a time); `EXTRACT_MODE=sample` extracts the evenly
  spread sample of the document's chunks and the document's facts become those; `EXTRACT_MODE=off`, no
  model or no graph store refuse it.
- **Replace, never lose**: the document's facts change only once every chunk's new graph is extracted.
  Then the new facts are written first under a staging source (`<chunk id>~reextract`), only then are
  the facts the chunks stated removed (`delete_sources`, so a fact another document also states stays)
  and the new facts re-cited by their chunk, and the chunks' `entity_ids` updated. A failed or refused
  extraction leaves the old graph exactly as it was; a write that fails before the old facts are removed
  is undone, the merges its staged writes recorded taken back too (`resolution.take_back`). A failure
  after that (the store gone mid-switch) leaves the new facts in place under the staging source and the
  status says `switching`: calling again finishes the switch without asking the model again.
- **Within a request's deadline**: each chunk's graph is saved (documents_status, like a paused version's)
  as soon as it is extracted. When the chunks do not all fit before the deadline (minus a reserve for the
  switch), or `max_chunks` is reached, the call stops launching calls and answers with the progress
  (`done: false`, HTTP 202); the next call continues with the chunks still missing.
- **Within the tenant's token budget**: nothing starts when the budget is spent (429 `budget_exhausted`,
  the old graph untouched); a budget that runs out midway keeps what was extracted (`paused (budget)`).
  Every provider rate limited: 429 with the provider's Retry-After, what was extracted kept.
- **Items dropped** from the model's graphs are recorded as ingestion records them (the same loop): the
  status's `dropped` and `dropped_reasons` count those of this re-extraction's graphs (from its first call
  on; they replace the counts of the graph it replaces), and each call that drops some logs one
  `graph items dropped` line (count and reasons, no document text).
- **A graph the user supplied** (sidecar, `POST /documents` with `graph`) is refused with 409
  `supplied_graph` unless the caller says `replace_supplied: true`: re-extracting replaces the user's own
  facts with the model's.
- **One at a time**: while a re-extraction runs (until its request's deadline) another call for the same
  document is refused (409 `reextract_running`), as is a document being ingested (409 `document_busy`).

Progress is the document status's `reextract` object: `{state, chunks, chunks_done, tokens, calls, error,
started_at, finished_at, running_until}`; `state` is running (a call is working on it), incomplete (call
again to continue), done, failed, paused (budget), waiting (rate limited) or switching. The document's own `state` is `extracting` while a call works on it, its
`tokens` and `extraction_calls` count the re-extraction's calls too.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import dependencies
from ..deadline import Deadline
from ..deadline import current as current_deadline
from ..errors import ApiError, Conflict, DeadlineExceeded, NotConfigured, NotFound, RateLimited
from ..models.graph import GraphData
from ..observability import logger
from ..settings import get_settings
from ..upstream import retry_after_s
from . import documents_status as status_store
from . import resolution
from .documents_status import DocumentStatus
from .extraction_loop import ChunkExtraction
from .index import ChunkInput, collection_name, index_chunks
from .ingest import UNDO_BUDGET_S, graph_status, sample

INCOMPLETE = "incomplete"  # between calls: more chunks to extract, call again
STAGING = "~reextract"  # appended to a chunk id: the source of new facts not yet switched in
SUPPLIED = "supplied graph"
BUSY_STATES = ("indexing", "extracting")
BUSY_STALE_S = 900.0  # an ingestion silent this long is dead (Lambda's longest run), not busy
# Time kept for the switch (writing the facts, removing the old ones, updating the chunks): a share
# of what the request has left, at least SWITCH_MIN_S, never more than half.
SWITCH_SHARE, SWITCH_MIN_S = 0.3, 4.0
CHUNK_FIELDS = ("chunk_id", "chunk_index", "text", "source", "metadata", "entity_ids")


@dataclass
class Outcome:
    """The document's status after the call; `done` when its facts are the re-extracted ones."""

    status: DocumentStatus
    done: bool


class BudgetExhausted(ApiError):
    status, code = 429, "budget_exhausted"


def staged(chunk_id: str) -> str:
    return f"{chunk_id}{STAGING}"


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


async def reextract(
    tenant: str, doc_id: str, *, max_chunks: int | None = None, replace_supplied: bool = False
) -> Outcome:
    """Extract the document's chunks again (those still missing, within the deadline), then switch its facts."""
    status = await status_store.get(tenant, doc_id)
    if status is None:
        raise NotFound(
            f"No document '{doc_id}' in this tenant (only documents ingested from the bucket or POST /documents "
            "can be re-extracted)."
        )
    _refuse_unconfigured()
    run = dict(status.reextract or {})
    _refuse_busy(status, run)
    continuing = run.get("state") not in (None, "done")  # an earlier call's progress is kept
    if status.extraction == SUPPLIED and not replace_supplied and not (continuing and run.get("replace_supplied")):
        raise Conflict(
            f"'{doc_id}' was ingested with a graph you supplied; re-extracting replaces those facts with what the "
            "model extracts. Send replace_supplied: true to do so.",
            code="supplied_graph",
        )
    chunks = await _stored_chunks(tenant, doc_id)
    ids = [str(chunk["chunk_id"]) for chunk in chunks]
    settings = get_settings()
    wanted = sample(ids, settings.extract_sample_chunks) if settings.extract_mode == "sample" else ids
    if not continuing:
        run = {"started_at": _iso(_now()), "tokens": 0, "calls": 0}
        status.reextracted_ids = []
        status.dropped, status.dropped_reasons = 0, {}  # from now on, the items this run's graphs leave out
    run.update(chunks=len(wanted), error=None, finished_at=None)
    run["replace_supplied"] = bool(replace_supplied or run.get("replace_supplied"))
    saved = await status_store.saved_chunks(tenant, doc_id)
    graphs = {cid: saved[cid] for cid in wanted if cid in saved and cid in set(status.reextracted_ids)}
    missing = [cid for cid in wanted if cid not in graphs]
    switching = bool(run.get("old_removed"))  # an earlier call began removing the old facts

    budget = status_store.token_budget(tenant)
    if missing and budget is not None:
        used = await status_store.tokens_used(tenant)
        if used >= budget:
            run.update(state=status_store.PAUSED_BUDGET, chunks_done=len(graphs))
            status.reextract = run
            await status_store.put(tenant, status)
            raise BudgetExhausted(
                f"The tenant's extraction budget is spent ({used} of {budget} tokens); nothing was changed. "
                "Raise EXTRACT_TOKEN_BUDGETS for this tenant, then call again: what was extracted is kept.",
                details={"budget": {"limit": budget, "used": used, "remaining": 0}, "reextract": run},
            )

    before = (status.state, status.error)
    deadline = current_deadline()
    run.update(state="running", chunks_done=len(graphs), running_until=_iso(_now() + _seconds(deadline.remaining())))
    status.reextract = run
    status.move("extracting")
    await status_store.put(tenant, status)
    try:
        if missing:
            by_id = {str(chunk["chunk_id"]): str(chunk.get("text") or "") for chunk in chunks}
            todo = missing[:max_chunks] if max_chunks else missing
            had = len(graphs)
            stop = await _Extraction(tenant, doc_id, status, graphs, run).run([(cid, by_id[cid]) for cid in todo])
            if len(graphs) < len(wanted):
                return await _paused(tenant, status, run, before, stop, progressed=len(graphs) > had)
        await _switch(tenant, doc_id, chunks, wanted, graphs, status, run, before, undo=not switching)
    except BaseException as exc:
        await _record_failure(tenant, status, run, before, exc)
        raise
    return Outcome(status=status, done=True)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=max(0.0, value))


def _refuse_unconfigured() -> None:
    skipped = graph_status()
    if skipped == "off":
        raise Conflict("Extraction is off in this deployment (EXTRACT_MODE=off).", code="extraction_off")
    if skipped:
        raise NotConfigured(f"Nothing can extract a graph here: {skipped.removeprefix('skipped ').strip('()')}.")


def _refuse_busy(status: DocumentStatus, run: dict[str, Any]) -> None:
    now = _now()
    until = _parse(run.get("running_until"))
    if run.get("state") == "running" and until is not None and until > now:
        raise Conflict(
            f"A re-extraction of '{status.doc_id}' is running ({run.get('chunks_done', 0)} of {run.get('chunks', 0)} "
            f"chunks); call again in {math.ceil((until - now).total_seconds())} s.",
            code="reextract_running",
            details={"reextract": run},
        )
    updated = _parse(status.updated_at)
    recent = updated is not None and (now - updated).total_seconds() < BUSY_STALE_S
    if status.state in BUSY_STATES and run.get("state") != "running" and recent:
        raise Conflict(
            f"'{status.doc_id}' is being ingested ({status.state}); re-extract it once it is ready.",
            code="document_busy",
        )


async def _stored_chunks(tenant: str, doc_id: str) -> list[dict[str, Any]]:
    """The document's chunks as the vector store keeps them, in order."""
    found = await dependencies.vector_store().payloads(
        collection_name(None), tenant=tenant, doc_id=doc_id, fields=CHUNK_FIELDS
    )
    chunks = [payload for payload in found.values() if payload.get("chunk_id")]
    return sorted(chunks, key=lambda payload: (int(payload.get("chunk_index") or 0), str(payload["chunk_id"])))


class _Extraction(ChunkExtraction):
    """Re-extraction's run of the extraction loop: within the request's deadline minus the switch's reserve
    (a call the window would not fit is not started, one it cuts short is not done: "time"); a chunk's failed
    extraction says the old graph is unchanged; the run's progress object counts the calls, tokens and chunks
    done (the items dropped are counted on the status only)."""

    def __init__(
        self, tenant: str, doc_id: str, status: DocumentStatus, graphs: dict[str, GraphData], run: dict[str, Any]
    ) -> None:
        super().__init__(tenant, doc_id, status, graphs, window=_window())
        self.progress = run

    def spent(self, tokens: int, calls: int) -> None:
        self.progress["tokens"] = int(self.progress.get("tokens") or 0) + tokens
        self.progress["calls"] = int(self.progress.get("calls") or 0) + calls

    def extracted(self, chunk_id: str, dropped: int) -> None:
        self.status.reextracted_ids = sorted({*self.status.reextracted_ids, chunk_id})
        self.progress["chunks_done"] = len(self.graphs)

    def failed(self, chunk_id: str, error: ApiError) -> ApiError:
        """The model's answer, not the caller's request, was unusable: 502 (and what is kept)."""
        providers = error.details.get("providers") if isinstance(error.details, dict) else None
        why = f" ({'; '.join(f'{k}: {v}' for k, v in providers.items())})" if providers else ""
        return ApiError(
            f"Extracting chunk '{chunk_id}' failed: {error.message.rstrip('.')}{why}. The old graph is unchanged "
            "and the chunks extracted are kept: call again to retry.",
            code=error.code,
            status=502 if error.status == 422 else error.status,
            details=error.details,
            headers=error.headers,
        )


def _window() -> Deadline:
    """The extraction's share of what the request has left: all but the switch's reserve."""
    left = current_deadline().remaining()
    reserve = min(left / 2, max(SWITCH_MIN_S, left * SWITCH_SHARE))
    return Deadline.after(left - reserve)


async def _paused(
    tenant: str,
    status: DocumentStatus,
    run: dict[str, Any],
    before: tuple[str, str | None],
    stop: str | RateLimited | None,
    *,
    progressed: bool,
) -> Outcome:
    """Not every chunk is extracted yet: record where it stands; the old facts are untouched."""
    if isinstance(stop, RateLimited):
        wait = retry_after_s({key.lower(): value for key, value in stop.headers.items()})
        delay = max(1, math.ceil(wait if wait is not None else get_settings().ingest_rate_limited_retry_s))
        run.update(state=f"waiting (rate limited, retry in {delay} s)", running_until=None)
        _restore(status, before)
        await status_store.put(tenant, status)
        raise RateLimited(
            "The extraction model is rate limited; what was extracted is kept and the old graph is unchanged: "
            "call again later to continue.",
            headers={"Retry-After": str(delay)},
            details={"reextract": run},
        )
    if stop == "budget":
        run.update(state=status_store.PAUSED_BUDGET, running_until=None)
        _restore(status, before)
        await status_store.put(tenant, status)
        budget = status_store.token_budget(tenant)
        used = await status_store.tokens_used(tenant)
        raise BudgetExhausted(
            f"The tenant's extraction budget ran out after {run['chunks_done']} of {run['chunks']} chunks; the old "
            "graph is unchanged and what was extracted is kept. Raise the budget, then call again to continue.",
            details={"budget": {"limit": budget, "used": used, "remaining": 0}, "reextract": run},
        )
    run.update(state=INCOMPLETE, running_until=None)  # more to do: the caller calls again
    _restore(status, before)
    await status_store.put(tenant, status)
    if stop == "time" and not progressed:  # calling again would not get further
        raise DeadlineExceeded(
            "Not one chunk's extraction fits in what this request has left; the old graph is unchanged. "
            "Raise the function's timeout (REQUEST_TIMEOUT_S) or use a faster extraction model.",
            details={"reextract": run},
        )
    return Outcome(status=status, done=False)


def _restore(status: DocumentStatus, before: tuple[str, str | None]) -> None:
    """The document's state as it was before the call (a stale ingestion state counts as ready)."""
    state, error = before
    status.move("ready" if state in BUSY_STATES else state, error=error)


async def _switch(
    tenant: str,
    doc_id: str,
    chunks: list[dict[str, Any]],
    wanted: list[str],
    graphs: dict[str, GraphData],
    status: DocumentStatus,
    run: dict[str, Any],
    before: tuple[str, str | None],
    *,
    undo: bool,
) -> None:
    """Write the new facts under staging sources, remove the old, re-cite the new by their chunks."""
    graph = dependencies.graph_store()
    assert graph is not None  # _refuse_unconfigured
    ids = [str(chunk["chunk_id"]) for chunk in chunks]
    new = {cid: graphs[cid] for cid in wanted}
    recorded = resolution.Recorded()
    try:
        for cid, data in new.items():
            await resolution.write(tenant, data, sources=[staged(cid)], recorded=recorded)
    except BaseException:
        if undo:  # the old facts are all still there: remove what was staged, and the merges it recorded
            await _unstage(tenant, ids, recorded)
        raise
    run.update(state="switching", old_removed=True)
    await status_store.put(tenant, status)
    # From here the old facts go: a failure leaves `switching`, and calling again finishes it.
    await graph.delete_sources(tenant, ids, timeout=current_deadline().timeout())
    for cid, data in new.items():
        await resolution.write(tenant, data, sources=[cid])
    await graph.delete_sources(tenant, [staged(cid) for cid in ids], timeout=current_deadline().timeout())
    await index_chunks(tenant, _inputs(doc_id, chunks, new), replace=True)

    facts = {cid: len(data.edges) for cid, data in new.items()}
    status.chunk_facts, status.facts = facts, sum(facts.values())
    status.pending_ids, status.chunks_pending, status.chunks_extracted = [], 0, len(new)
    settings = get_settings()
    status.extraction = f"sample ({len(wanted)} chunks)" if settings.extract_mode == "sample" else "done"
    status.reextracted_ids = []
    run.update(state="done", chunks_done=len(new), finished_at=_iso(_now()), running_until=None)
    run.pop("old_removed", None)
    _restore(status, before)
    await status_store.put(tenant, status)
    await status_store.clear_chunks(tenant, doc_id, list(graphs))
    logger.info("document re-extracted", extra={"doc_id": doc_id, "reextract": run, "facts": status.facts})


def _inputs(doc_id: str, chunks: list[dict[str, Any]], new: dict[str, GraphData]) -> list[ChunkInput]:
    """The stored chunks as they are, each with the entities now extracted from it."""
    return [
        ChunkInput(
            doc_id=doc_id,
            text=str(chunk.get("text") or ""),
            chunk_id=str(chunk["chunk_id"]),
            chunk_index=int(chunk.get("chunk_index") or 0),
            source=chunk.get("source"),
            metadata=chunk.get("metadata") or {},
            entity_ids=[node.id for node in new[chunk["chunk_id"]].nodes] if chunk["chunk_id"] in new else [],
        )
        for chunk in chunks
    ]


async def _unstage(tenant: str, ids: list[str], recorded: resolution.Recorded) -> None:
    """Remove staged facts, then take back the merges their writes recorded (`resolution.take_back`: records,
    `merged_from`, aliases); best effort, within its own budget: the failure may be the deadline itself."""
    graph = dependencies.graph_store()
    if graph is None:
        return
    budget = Deadline.after(UNDO_BUDGET_S)
    try:
        await graph.delete_sources(tenant, [staged(cid) for cid in ids], timeout=budget.timeout())
    except Exception as exc:  # noqa: BLE001 - the original failure is what the caller must see
        logger.warning("could not remove staged facts", extra={"reason": str(exc)[:300]})
    if not (recorded.merges or recorded.points):
        return
    try:
        await resolution.take_back(tenant, recorded, budget)
    except Exception as exc:  # noqa: BLE001 - the original failure is what the caller must see
        logger.warning("could not take back a failed re-extraction's merges", extra={"reason": str(exc)[:300]})


async def _record_failure(
    tenant: str, status: DocumentStatus, run: dict[str, Any], before: tuple[str, str | None], exc: BaseException
) -> None:
    state = str(run.get("state") or "")
    if state == status_store.PAUSED_BUDGET or state.startswith("waiting"):
        return  # recorded by _paused
    reason = f"{exc.code}: {exc.message}" if isinstance(exc, ApiError) else (str(exc) or type(exc).__name__)
    run["state"] = "switching" if run.get("old_removed") else "failed"
    run.update(error=reason[:500], running_until=None)
    _restore(status, before)
    try:
        await asyncio.wait_for(status_store.put(tenant, status), UNDO_BUDGET_S)
    except Exception as failure:  # noqa: BLE001 - the original failure is what the caller must see
        logger.warning("could not record a failure", extra={"doc_id": status.doc_id, "reason": str(failure)[:300]})
