"""A document's chunks extracted one model call each: the loop ingestion and re-extraction share.

Both ask the model for the graph of each chunk that has none yet (`extract_chunk`: the providers in order,
`EXTRACT_CONCURRENCY` chunks at a time). Each chunk's graph is saved (documents_status) and counted on the
document's status as soon as it is extracted, so a run stopped halfway asks the model only for the chunks
still missing when it runs again. Every call's tokens are counted on the document, the tenant's ledger and
the metrics, failed and cancelled calls' too; the items the model's graphs leave out are counted on the
status (`dropped`, `dropped_reasons`) and logged once per run (count and reasons, no document text).

The loop stops launching calls, and lets the calls in flight finish and be saved, when

- the tenant's token budget is spent: "budget";
- every provider is rate limited: the `RateLimited` (with the provider's Retry-After);
- the caller's time window (if it gives one) would not fit another call as slow as the slowest so far, or
  cuts a call short: "time".

Any other failure cancels (and awaits) the rest and is raised. What differs between the callers is what they
give `ChunkExtraction`: the window (re-extraction keeps the end of its request for the switch; ingestion has
none: a call its batch's deadline cuts short fails the delivery, which comes back), what a chunk's failure
raises (`failed`), and their own counts (`spent`, `extracted`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from ..deadline import Deadline, set_current
from ..deadline import current as current_deadline
from ..errors import ApiError, DeadlineExceeded, RateLimited
from ..models.graph import GraphData
from ..observability import NAMESPACE, SERVICE, logger
from ..settings import get_settings
from . import documents_status as status_store
from .documents_status import DocumentStatus
from .extract import ExtractOptions, dropped_reason, extract_graph

# Why a run stopped before every chunk was extracted: "budget", "time", every provider rate limited, or None.
Stop = str | RateLimited | None

# Ingestion asks one provider at a time, in order: a race would pay every provider for every chunk.
INGEST_EXTRACTION = ExtractOptions(min_nodes=0, allow_empty=True, strategy="sequential")


def tenant_metric(tenant: str, name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
    """One metric with the tenant as its dimension (CloudWatch: namespace GraphRAGGateway, dimension tenant)."""
    with single_metric(
        name=name, unit=unit, value=value, namespace=NAMESPACE, default_dimensions={"service": SERVICE}
    ) as metric:
        metric.add_dimension(name="tenant", value=tenant)


async def extract_chunk(text: str, calls: list[int], dropped: list[dict[str, Any]] | None = None) -> GraphData:
    """One chunk's graph; each call's tokens (prompt + completion, failed calls included) go into `calls`, the
    items left out of the graph (with their reasons, as /graph/extract lists them) into `dropped`.

    Every provider rate limited -> RateLimited with the soonest Retry-After (see extract.extract_graph).
    """
    extraction = await extract_graph(text, INGEST_EXTRACTION, spent=calls)
    if dropped is not None:
        dropped += extraction.dropped
    return extraction.graph


class ChunkExtraction:
    """One run of the loop over a document's chunks, into `graphs`; a caller overrides the hooks it needs.

    `window`: the time the calls have. None launches calls until the budget or a rate limit stops them, within
    the current deadline (a call it cuts short fails the run). A window launches no call that the slowest so
    far would not finish in it, and a call it cuts short is simply not done: both stop the run with "time".
    """

    def __init__(
        self,
        tenant: str,
        doc_id: str,
        status: DocumentStatus,
        graphs: dict[str, GraphData],
        *,
        window: Deadline | None = None,
    ) -> None:
        self.tenant, self.doc_id, self.status, self.graphs, self.window = tenant, doc_id, status, graphs, window

    def spent(self, tokens: int, calls: int) -> None:
        """The caller's own count of one chunk's calls and their tokens (the status's is kept by the loop)."""

    def extracted(self, chunk_id: str, dropped: int) -> None:
        """The caller's own progress: a chunk's graph is saved and in `graphs`, its `dropped` items counted on
        the status; the status is written right after."""

    def failed(self, chunk_id: str, error: ApiError) -> ApiError:
        """What a chunk's failed extraction raises (neither rate limited nor cut short by the window)."""
        return error

    async def run(self, todo: list[tuple[str, str]]) -> Stop:
        """Extract each `(chunk id, text)` of `todo` into `graphs`; why the run stopped early, if it did."""
        limit = asyncio.Semaphore(max(1, get_settings().extract_concurrency))
        budget = status_store.token_budget(self.tenant)
        request = current_deadline() if self.window is not None else None  # restored after each call
        stop: list[str | RateLimited] = []
        slowest = [0.0]
        dropped: list[str] = []  # why each item left out of this run's graphs was dropped

        async def one(cid: str, text: str) -> None:
            async with limit:
                if stop:
                    return
                if self.window is not None and self.window.remaining() <= slowest[0]:
                    stop.append("time")
                    return
                if budget is not None and await status_store.tokens_used(self.tenant) >= budget:
                    stop.append("budget")
                    return
                calls: list[int] = []
                left_out: list[dict[str, Any]] = []
                started = time.monotonic()
                if self.window is not None:
                    set_current(self.window)  # this task's model calls end with the window (a task has its own context)
                try:
                    graph = await extract_chunk(text, calls, left_out)
                except RateLimited as exc:
                    stop.append(exc)
                    tenant_metric(self.tenant, "RateLimited", 1)
                    return
                except DeadlineExceeded:
                    if self.window is None:
                        raise
                    stop.append("time")
                    return
                except ApiError as exc:
                    failure = self.failed(cid, exc)
                    if failure is exc:
                        raise
                    raise failure from None
                finally:
                    if request is not None:
                        set_current(request)
                    await self._spent(calls)
                slowest[0] = max(slowest[0], time.monotonic() - started)
                await status_store.save_chunk(self.tenant, self.doc_id, cid, graph, sum(calls))
                self.graphs[cid] = graph
                self.extracted(cid, self._count_dropped(dropped, left_out))
                await status_store.put(self.tenant, self.status)  # progress, visible while the run goes on

        try:
            async with asyncio.TaskGroup() as group:
                for cid, text in todo:
                    group.create_task(one(cid, text))
        except BaseExceptionGroup as failed:  # the first failure is the reason (the rest were cancelled)
            first: BaseException = failed
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        finally:
            _log_dropped(self.doc_id, dropped)
        rate_limited = next((reason for reason in stop if isinstance(reason, RateLimited)), None)
        return rate_limited or ("budget" if "budget" in stop else "time" if "time" in stop else None)

    async def _spent(self, calls: list[int]) -> None:
        """Count one chunk's calls and their tokens: the caller's, the document's, the tenant's ledger, the metrics."""
        if not calls:
            return
        tokens = sum(calls)
        self.spent(tokens, len(calls))
        self.status.tokens += tokens
        self.status.extraction_calls += len(calls)
        if tokens:
            await status_store.add_tokens(self.tenant, tokens)
        tenant_metric(self.tenant, "ExtractionCalls", len(calls))
        tenant_metric(self.tenant, "ExtractionTokens", tokens)

    def _count_dropped(self, dropped: list[str], items: list[dict[str, Any]]) -> int:
        """Count what one chunk's graph left out, by reason, on the document's status; how many."""
        reasons = [dropped_reason(item) for item in items]
        dropped.extend(reasons)
        self.status.dropped += len(reasons)
        for reason in reasons:
            self.status.dropped_reasons[reason] = self.status.dropped_reasons.get(reason, 0) + 1
        return len(reasons)


def _log_dropped(doc_id: str, dropped: list[str]) -> None:
    """One line per run: how many items were left out, and why (no document text, no values)."""
    if dropped:
        reasons = {reason: dropped.count(reason) for reason in dict.fromkeys(dropped)}
        logger.warning("graph items dropped", extra={"doc_id": doc_id, "dropped": len(dropped), "reasons": reasons})
