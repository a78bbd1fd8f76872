"""POST /graph/probe, /graph/extract, /graph/upsert, /graph/query; GET /graph/merges, DELETE /graph/merges/{id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, field_validator

from ..auth import Principal, require_principal
from ..models.graph import GraphData
from ..racing import Strategy
from ..services import extract as extract_service
from ..services import graph as graph_service
from ..services import probe as probe_service

router = APIRouter(prefix="/graph", tags=["graph"])


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
    dropped: list[dict[str, Any]] = Field(
        default=[], description="Each node, edge or property of the answer left out, with its reason."
    )


@router.post("/extract")
async def extract(body: ExtractRequest, _: Principal = Depends(require_principal)) -> ExtractResponse:
    options = extract_service.ExtractOptions(**body.model_dump(exclude={"context"}))
    result = await extract_service.extract_graph(body.context, options)
    return ExtractResponse(
        data=result.graph,
        provider=result.provider,
        schema_hash=result.schema_hash,
        attempts=result.attempts,
        dropped=result.dropped,
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
    result = await graph_service.upsert(principal.tenant, body.data, body.sources)
    return UpsertResponse(nodes=result.nodes, edges=result.edges)


class QueryRequest(BaseModel):
    query: str = Field(min_length=1, max_length=20_000)
    params: dict[str, Any] = {}
    limit: int = Field(default=1_000, ge=1, le=10_000)

    @field_validator("params")
    @classmethod
    def _parameter_names(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Names (and map keys inside values) are backtick-quoted by the drivers: 1-64 characters, no backtick."""
        stack: list[Any] = [params]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                for key in value:
                    if not 0 < len(key) <= 64 or "`" in key:
                        raise ValueError(f"parameter name {key[:64]!r}: use 1-64 characters without backticks")
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
        return params


class QueryResponse(BaseModel):
    ok: bool = True
    records: list[dict[str, Any]]


@router.post("/query")
async def query(body: QueryRequest, principal: Principal = Depends(require_principal)) -> QueryResponse:
    records = await graph_service.query(principal.tenant, body.query, body.params, limit=body.limit)
    return QueryResponse(records=records)


class MergeOut(BaseModel):
    merge_id: str
    survivor: str = Field(description="The node the absorbed id now resolves to.")
    absorbed: str = Field(description="The id that was merged into the survivor (kept in its `merged_from`).")
    reason: str = Field(description="`name` or `alias` (a shared normalized key) or `similarity` (name embeddings).")
    evidence: str = Field(description="The shared key, or the cosine of the two names' embeddings.")
    node: dict[str, Any] = Field(description="The absorbed node as it arrived: id, type, name, props.")
    added_aliases: list[str]
    sources: list[str]
    state: str = Field(description="`active`, or `undone`.")
    created_at: str
    undone_at: str | None = None


class MergesResponse(BaseModel):
    ok: bool = True
    merges: list[MergeOut]


@router.get("/merges")
async def merges(principal: Principal = Depends(require_principal)) -> MergesResponse:
    """Every entity merge made at write time (oldest first), undone ones included, to audit."""
    found = await graph_service.merges(principal.tenant)
    return MergesResponse(merges=[MergeOut(**vars(record)) for record in found])


class UndoResponse(BaseModel):
    ok: bool = True
    merge: MergeOut


@router.delete("/merges/{merge_id}")
async def undo_merge(merge_id: str, principal: Principal = Depends(require_principal)) -> UndoResponse:
    """Undo a merge: the absorbed id is its own node again, with the facts written for it (404 unknown, 409 undone)."""
    record = await graph_service.undo_merge(principal.tenant, merge_id)
    return UndoResponse(merge=MergeOut(**vars(record)))


class ProbeRequest(BaseModel):
    model: str = Field(min_length=1, description="A provider name or model alias (its first provider).")
    strict_json: bool = True
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    timeout: float | None = Field(default=None, gt=0, le=120)
    messages: list[dict[str, str]] | None = None


@router.post("/probe")
async def probe(body: ProbeRequest, _: Principal = Depends(require_principal)) -> dict[str, Any]:
    return await probe_service.probe(probe_service.ProbeOptions(**body.model_dump()))
