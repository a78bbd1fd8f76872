"""POST /graph/probe, /graph/extract, /graph/upsert, /graph/query."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from .. import dependencies
from ..auth import Principal, require_principal
from ..clients import llm
from ..deadline import current as current_deadline
from ..errors import ApiError, NotConfigured
from ..models.graph import GraphData
from ..racing import Strategy
from ..services import extract as extract_service

if TYPE_CHECKING:
    from ..stores.graph.base import GraphStore

router = APIRouter(prefix="/graph", tags=["graph"])

GRAPH_NOT_CONFIGURED = "No graph store is configured: set FALKORDB_URL (redis://host:port) or NEO4J_URI."


def require_graph() -> GraphStore:
    store = dependencies.graph_store()
    if store is None:
        raise NotConfigured(GRAPH_NOT_CONFIGURED)
    return store


class ExtractRequest(BaseModel):
    context: str = Field(min_length=1, max_length=100_000)
    strict: bool = True
    repair_if_invalid: bool = True
    min_nodes: int = Field(default=1, ge=0)
    min_edges: int = Field(default=0, ge=0)
    allow_empty: bool = False
    max_attempts: int = Field(default=1, ge=1, le=5)
    provider_chain: list[str] | None = Field(default=None, description="Provider names or aliases, in order.")
    strategy: Strategy | None = None
    hedge_delay_s: float | None = Field(default=None, ge=0, le=30)


class ExtractResponse(BaseModel):
    ok: bool = True
    data: GraphData
    provider: str
    schema_hash: str
    attempts: list[dict[str, Any]]


@router.post("/extract")
async def extract(body: ExtractRequest, _: Principal = Depends(require_principal)) -> ExtractResponse:
    options = extract_service.ExtractOptions(**body.model_dump(exclude={"context"}))
    result = await extract_service.extract_graph(body.context, options)
    return ExtractResponse(
        data=result.graph, provider=result.provider, schema_hash=result.schema_hash, attempts=result.attempts
    )


class UpsertRequest(BaseModel):
    data: GraphData
    sources: list[str] = Field(default=[], description="Provenance ids appended to every node and edge.")


class UpsertResponse(BaseModel):
    ok: bool = True
    nodes: int
    edges: int


@router.post("/upsert")
async def upsert(body: UpsertRequest, principal: Principal = Depends(require_principal)) -> UpsertResponse:
    result = await require_graph().upsert(
        principal.tenant, body.data, sources=body.sources, timeout=current_deadline().timeout()
    )
    return UpsertResponse(nodes=result.nodes, edges=result.edges)


class QueryRequest(BaseModel):
    query: str = Field(min_length=1, max_length=20_000)
    params: dict[str, Any] = {}
    limit: int = Field(default=1_000, ge=1, le=10_000)


class QueryResponse(BaseModel):
    ok: bool = True
    records: list[dict[str, Any]]


@router.post("/query")
async def query(body: QueryRequest, principal: Principal = Depends(require_principal)) -> QueryResponse:
    records = await require_graph().query(
        principal.tenant, body.query, body.params, limit=body.limit, timeout=current_deadline().timeout()
    )
    return QueryResponse(records=records)


class ProbeRequest(BaseModel):
    model: str = Field(min_length=1, description="A provider name or model alias (its first provider).")
    strict_json: bool = True
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    timeout: float | None = Field(default=None, gt=0, le=120)
    messages: list[dict[str, str]] | None = None


PROBE_MESSAGES = [{"role": "user", "content": 'Reply with the JSON object {"ok": true, "probe": "graph"}.'}]


@router.post("/probe")
async def probe(body: ProbeRequest, _: Principal = Depends(require_principal)) -> dict[str, Any]:
    provider = llm.resolve(body.model)[0]
    timeout = current_deadline().timeout(cap=body.timeout)
    mode = "json" if body.strict_json else "text"
    started = time.perf_counter()
    result: dict[str, Any] = {"ok": True, "mode": mode, "provider": provider.name}
    try:
        completion = await llm.complete(
            provider,
            body.messages or PROBE_MESSAGES,
            json_mode=body.strict_json,
            temperature=body.temperature,
            timeout=timeout,
        )
        if body.strict_json:
            result["data"] = llm.parse_json_answer(provider.name, completion.text)
        else:
            result["text"] = completion.text
    except ApiError as exc:  # a probe reports the failure instead of failing
        result.update(ok=False, error=exc.body())
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result
