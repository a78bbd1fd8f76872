"""POST /answer: a grounded answer with citations, at once or as server-sent events.

With `stream: true` the answer is `text/event-stream`: one `data: {"delta": ...}`
per piece of text as the provider sends it, then `data: {"done": true, ...}` with the
citations and the graph facts retrieved (`subgraph`, as `/retrieve` returns it).
Behind API Gateway + Mangum the body is buffered (the events arrive together);
a Lambda function URL with response streaming, or the local server, streams.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..auth import Principal, require_principal
from ..models.graph import Subgraph
from ..models.search import SearchFilter
from ..racing import Strategy
from ..services import answer as answer_service

router = APIRouter(tags=["answer"])

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=50_000)


class AnswerRequest(BaseModel):
    query: str = Field(min_length=1, max_length=8_000)
    top_k: int = Field(default=5, ge=1, le=50)
    max_hops: int = Field(default=2, ge=1, le=3)
    filters: SearchFilter | None = None
    model: str | None = Field(default=None, description="A model alias or provider name (default: ANSWER_MODEL).")
    stream: bool = False
    history: list[Turn] = Field(default=[], max_length=100, description="Earlier turns, oldest first.")
    strategy: Strategy = "sequential"
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=65_536)
    rerank: bool = False
    expand_hits: bool = False
    collection: str | None = None


class Citation(BaseModel):
    n: int
    chunk_id: str
    doc_id: str | None
    source: str | None = None
    text: str


class AnswerResponse(BaseModel):
    ok: bool = True
    answer: str
    question: str = Field(description="The question as retrieved: a follow-up rewritten to stand alone.")
    citations: list[Citation]
    hits: list[dict[str, Any]]
    subgraph: Subgraph
    timings_ms: dict[str, float]
    degraded: list[str]
    provider: str | None
    model: str | None


@router.post("/answer", response_model=None)
async def answer(
    body: AnswerRequest, principal: Principal = Depends(require_principal)
) -> AnswerResponse | StreamingResponse:
    options = answer_service.AnswerOptions(
        **body.model_dump(exclude={"query", "stream", "history", "filters"}),
        filters=body.filters,
        history=[turn.model_dump() for turn in body.history],
    )
    prepared = await answer_service.prepare(principal.tenant, body.query, options)
    if body.stream:
        events = answer_service.answer_events(prepared)
        return StreamingResponse(_sse(events), media_type="text/event-stream", headers=SSE_HEADERS)
    return _response(await answer_service.answer(prepared))


def _response(result: answer_service.AnswerResult) -> AnswerResponse:
    return AnswerResponse(
        answer=result.answer,
        question=result.question,
        citations=[Citation(**citation) for citation in result.citations],
        hits=result.hits,
        subgraph=result.subgraph,
        timings_ms=result.timings_ms,
        degraded=result.degraded,
        provider=result.provider,
        model=result.model,
    )


async def _sse(events: AsyncIterator[answer_service.Delta | answer_service.Done]) -> AsyncIterator[str]:
    async for event in events:
        if isinstance(event, answer_service.Delta):
            yield _event({"delta": event.text})
        else:
            result = event.result
            yield _event(
                {
                    "done": True,
                    "citations": result.citations,
                    "subgraph": result.subgraph.model_dump(mode="json"),
                    "timings_ms": result.timings_ms,
                    "degraded": result.degraded,
                    "question": result.question,
                    "provider": result.provider,
                    "model": result.model,
                }
            )


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
