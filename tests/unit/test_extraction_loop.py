"""The per-chunk extraction loop ingestion and re-extraction share (services/extraction_loop.py), with the model
and the document status store faked: what stops it, what it saves and counts, and what each caller gives it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway_core.deadline import Deadline, current, set_current
from gateway_core.errors import ApiError, DeadlineExceeded, RateLimited, Unprocessable
from gateway_core.models.graph import GraphData, Node
from gateway_core.services import documents_status, extraction_loop, ingest, reextract
from gateway_core.services.documents_status import DocumentStatus
from gateway_core.services.extraction_loop import ChunkExtraction
from tests.fixtures.environment import reconfigure

TENANT, DOC = "acme", "doc.txt"
DROPPED_TYPE = {"kind": "node", "id": "x", "reason": "type: Value error, 'a b' is not an identifier"}


class Store:
    """documents_status as the loop uses it: the tenant's ledger, saved chunk graphs, status writes."""

    def __init__(self) -> None:
        self.used = 0
        self.saved: dict[str, int] = {}  # chunk id -> tokens
        self.saved_under: list[Deadline] = []  # the deadline each save ran under
        self.puts = 0

    async def tokens_used(self, tenant: str) -> int:
        return self.used

    async def add_tokens(self, tenant: str, tokens: int) -> int:
        self.used += tokens
        return self.used

    async def save_chunk(self, tenant: str, doc_id: str, chunk_id: str, graph: GraphData, tokens: int) -> None:
        self.saved[chunk_id] = tokens
        self.saved_under.append(current())

    async def put(self, tenant: str, status: DocumentStatus) -> None:
        self.puts += 1


Model = Callable[[str, list[int], list[dict[str, Any]]], Awaitable[GraphData]]


class Recorded(ChunkExtraction):
    """The loop with hooks that record what it reports."""

    def __init__(self, graphs: dict[str, GraphData] | None = None, **kwargs: Any) -> None:
        super().__init__(TENANT, DOC, DocumentStatus(doc_id=DOC), {} if graphs is None else graphs, **kwargs)
        self.spent_calls: list[tuple[int, int]] = []
        self.done: list[tuple[str, int]] = []

    def spent(self, tokens: int, calls: int) -> None:
        self.spent_calls.append((tokens, calls))

    def extracted(self, chunk_id: str, dropped: int) -> None:
        self.done.append((chunk_id, dropped))


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Store:
    fake = Store()
    for name in ("tokens_used", "add_tokens", "save_chunk", "put"):
        monkeypatch.setattr(documents_status, name, getattr(fake, name))
    return fake


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    seen: list[tuple[str, float]] = []
    monkeypatch.setattr(extraction_loop, "tenant_metric", lambda tenant, name, value, *_: seen.append((name, value)))
    return seen


def model(monkeypatch: pytest.MonkeyPatch, answer: Model) -> None:
    monkeypatch.setattr(extraction_loop, "extract_chunk", answer)


def graph(text: str) -> GraphData:
    return GraphData(nodes=[Node(id=f"thing:{text}", type="Thing", name=text)], edges=[])


async def tokens(text: str, calls: list[int], dropped: list[dict[str, Any]]) -> GraphData:
    calls.append(10)
    return graph(text)


def run(loop: ChunkExtraction, texts: list[str], request: float = 30.0) -> Any:
    async def main() -> Any:
        set_current(Deadline.after(request))
        return await loop.run([(f"{DOC}#{i}", text) for i, text in enumerate(texts)])

    return asyncio.run(main())


def test_each_chunk_is_saved_and_counted_as_it_is_extracted(monkeypatch, store, metrics):
    model(monkeypatch, tokens)
    loop = Recorded()
    assert run(loop, ["a", "b", "c"]) is None
    assert sorted(loop.graphs) == [f"{DOC}#0", f"{DOC}#1", f"{DOC}#2"]
    assert store.saved == {f"{DOC}#0": 10, f"{DOC}#1": 10, f"{DOC}#2": 10} and store.puts == 3
    assert (loop.status.tokens, loop.status.extraction_calls, store.used) == (30, 3, 30)
    assert loop.spent_calls == [(10, 1)] * 3 and sorted(loop.done) == [(f"{DOC}#{i}", 0) for i in range(3)]
    assert metrics.count(("ExtractionCalls", 1)) == 3 and metrics.count(("ExtractionTokens", 10)) == 3


def test_a_spent_budget_stops_launching_calls_and_keeps_what_was_extracted(monkeypatch, store, metrics):
    reconfigure(monkeypatch, EXTRACT_TOKEN_BUDGET="15", EXTRACT_CONCURRENCY="1")
    model(monkeypatch, tokens)
    loop = Recorded()
    assert run(loop, ["a", "b", "c"]) == "budget"
    assert list(loop.graphs) == [f"{DOC}#0", f"{DOC}#1"] and store.used == 20  # the second call started at 10 < 15


def test_every_provider_rate_limited_stops_the_run_and_the_calls_in_flight_are_kept(monkeypatch, store, metrics):
    reconfigure(monkeypatch, EXTRACT_CONCURRENCY="2")
    limited = RateLimited("busy", headers={"Retry-After": "7"})
    asked: list[str] = []

    async def answer(text: str, calls: list[int], dropped: list[dict[str, Any]]) -> GraphData:
        asked.append(text)
        if text == "busy":
            raise limited
        await asyncio.sleep(0.05)
        return graph(text)

    model(monkeypatch, answer)
    loop = Recorded()
    assert run(loop, ["slow", "busy", "never"]) is limited
    assert list(loop.graphs) == [f"{DOC}#0"] and asked == ["slow", "busy"]
    assert ("RateLimited", 1) in metrics


def test_without_a_window_a_call_cut_short_fails_the_run(monkeypatch, store, metrics):
    async def late(text: str, calls: list[int], dropped: list[dict[str, Any]]) -> GraphData:
        calls.append(4)
        raise DeadlineExceeded("late")

    model(monkeypatch, late)
    loop = Recorded()
    with pytest.raises(DeadlineExceeded):
        run(loop, ["a"])
    assert loop.status.tokens == 4 and loop.spent_calls == [(4, 1)]  # the call that failed is paid for


def test_a_window_that_cuts_a_call_short_stops_the_run_with_time(monkeypatch, store, metrics):
    reconfigure(monkeypatch, EXTRACT_CONCURRENCY="1")

    async def answer(text: str, calls: list[int], dropped: list[dict[str, Any]]) -> GraphData:
        if text == "late":
            raise DeadlineExceeded("late")
        return graph(text)

    model(monkeypatch, answer)
    loop = Recorded(window=Deadline.after(30))
    assert run(loop, ["a", "late", "c"]) == "time"
    assert list(loop.graphs) == [f"{DOC}#0"]


def test_a_window_starts_no_call_the_slowest_so_far_would_not_finish_in(monkeypatch, store, metrics):
    reconfigure(monkeypatch, EXTRACT_CONCURRENCY="1")

    async def slow(text: str, calls: list[int], dropped: list[dict[str, Any]]) -> GraphData:
        await asyncio.sleep(0.2)
        return graph(text)

    model(monkeypatch, slow)
    loop = Recorded(window=Deadline.after(0.3))
    assert run(loop, ["a", "b"]) == "time"  # 0.1 s left after the first call, which took 0.2
    assert list(loop.graphs) == [f"{DOC}#0"]


def test_the_calls_run_within_the_window_and_the_saves_within_the_request(monkeypatch, store, metrics):
    window = Deadline.after(5)
    under: list[Deadline] = []

    async def answer(text: str, calls: list[int], dropped: list[dict[str, Any]]) -> GraphData:
        under.append(current())
        return graph(text)

    model(monkeypatch, answer)
    assert run(Recorded(window=window), ["a", "b"]) is None
    assert under == [window, window]
    assert all(deadline.expires_at > window.expires_at for deadline in store.saved_under)


def test_without_a_window_the_calls_run_within_the_current_deadline(monkeypatch, store, metrics):
    under: list[Deadline] = []

    async def answer(text: str, calls: list[int], dropped: list[dict[str, Any]]) -> GraphData:
        under.append(current())
        return graph(text)

    model(monkeypatch, answer)
    assert run(Recorded(), ["a"], request=12) is None
    assert 11 < under[0].remaining() <= 12 and store.saved_under == under


class Wrapped(Recorded):
    def failed(self, chunk_id: str, error: ApiError) -> ApiError:
        return ApiError(f"{chunk_id}: {error.message}", code=error.code, status=502)


def test_a_chunk_that_fails_cancels_the_rest_and_raises_what_failed_makes_of_it(monkeypatch, store, metrics):
    reconfigure(monkeypatch, EXTRACT_CONCURRENCY="2")

    async def answer(text: str, calls: list[int], dropped: list[dict[str, Any]]) -> GraphData:
        calls.append(3)
        if text == "bad":
            raise Unprocessable("No provider returned an acceptable graph.", code="extraction_failed")
        await asyncio.sleep(5)
        return graph(text)

    model(monkeypatch, answer)
    loop = Wrapped()
    with pytest.raises(ApiError) as raised:
        run(loop, ["slow", "bad"])
    assert (raised.value.status, raised.value.code) == (502, "extraction_failed")
    assert raised.value.message == f"{DOC}#1: No provider returned an acceptable graph."
    assert loop.graphs == {} and loop.status.tokens == 6  # the cancelled call is paid for too


def test_by_default_a_chunk_that_fails_raises_its_own_error(monkeypatch, store, metrics):
    failure = Unprocessable("No provider returned an acceptable graph.", code="extraction_failed")

    async def answer(text: str, calls: list[int], dropped: list[dict[str, Any]]) -> GraphData:
        raise failure

    model(monkeypatch, answer)
    with pytest.raises(Unprocessable) as raised:
        run(Recorded(), ["bad"])
    assert raised.value is failure


def test_dropped_items_are_counted_by_reason_and_logged_once_per_run(monkeypatch, store, metrics):
    lines: list[dict[str, Any]] = []

    class Logger:
        def warning(self, message: str, extra: dict[str, Any]) -> None:
            lines.append({"message": message, **extra})

    async def answer(text: str, calls: list[int], dropped: list[dict[str, Any]]) -> GraphData:
        dropped += [DROPPED_TYPE] * (2 if text == "two" else 0)
        return graph(text)

    model(monkeypatch, answer)
    monkeypatch.setattr(extraction_loop, "logger", Logger())
    loop = Recorded()
    assert run(loop, ["two", "none", "two"]) is None
    reason = "node: type: Value error, … is not an identifier"
    assert loop.status.dropped == 4 and loop.status.dropped_reasons == {reason: 4}
    assert sorted(loop.done) == [(f"{DOC}#0", 2), (f"{DOC}#1", 0), (f"{DOC}#2", 2)]
    assert lines == [{"message": "graph items dropped", "doc_id": DOC, "dropped": 4, "reasons": {reason: 4}}]


def test_ingestion_counts_on_its_report_and_the_chunks_pending(monkeypatch, store, metrics):
    async def answer(text: str, calls: list[int], dropped: list[dict[str, Any]]) -> GraphData:
        calls.append(10)
        dropped.append(DROPPED_TYPE)
        return graph(text)

    model(monkeypatch, answer)
    report = ingest.IngestReport(doc_id=DOC, tenant=TENANT)
    status = DocumentStatus(doc_id=DOC, chunks_pending=2)
    loop = ingest._Extraction(TENANT, DOC, status, {}, report)
    assert loop.window is None and run(loop, ["a", "b"]) is None
    assert (report.tokens, report.extraction_calls, report.dropped) == (20, 2, 2)
    assert (status.chunks_extracted, status.chunks_pending, status.dropped) == (2, 0, 2)


def test_reextraction_keeps_the_switchs_reserve_and_counts_on_its_run(monkeypatch, store, metrics):
    model(monkeypatch, tokens)
    progress: dict[str, Any] = {"tokens": 5, "calls": 1}
    status = DocumentStatus(doc_id=DOC)

    async def main() -> ChunkExtraction:
        set_current(Deadline.after(20))
        loop = reextract._Extraction(TENANT, DOC, status, {}, progress)
        await loop.run([(f"{DOC}#0", "a")])
        return loop

    loop = asyncio.run(main())
    assert loop.window is not None and 13 < loop.window.remaining() <= 14  # 20 s less the reserve (30 %)
    assert progress == {"tokens": 15, "calls": 2, "chunks_done": 1} and status.reextracted_ids == [f"{DOC}#0"]
    failure = loop.failed("c#1", Unprocessable("No acceptable graph.", details={"providers": {"p": "bad json"}}))
    assert failure.status == 502
    assert failure.message.startswith("Extracting chunk 'c#1' failed: No acceptable graph (p: bad json). The old")
