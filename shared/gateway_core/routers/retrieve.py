"""POST /index/chunks, /search, /retrieve and DELETE /documents/{doc_id}."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ..auth import Principal, require_principal
from ..errors import NotFound
from ..models.graph import Subgraph
from ..models.search import SearchFilter
from ..services import index as index_service
from ..services import ingest as ingest_service
from ..services import retrieve as retrieve_service
from ..services.search import search as search_service

router = APIRouter(tags=["retrieve"])
PRESETS = retrieve_service.PRESETS


class ChunkIn(BaseModel):
    doc_id: str = Field(min_length=1, max_length=1024)
    text: str = Field(min_length=1, max_length=100_000)
    chunk_id: str | None = Field(default=None, min_length=1, max_length=1100)
    chunk_index: int | None = Field(default=None, ge=0)
    source: str | None = Field(default=None, max_length=2048)
    metadata: dict[str, str | int | float | bool] = {}
    entity_ids: list[str] = []


class IndexRequest(BaseModel):
    chunks: list[ChunkIn] = Field(min_length=1, max_length=2_000)
    collection: str | None = None
    replace: bool = Field(default=True, description="The chunks sent for a document replace all its old chunks.")


class IndexResponse(BaseModel):
    ok: bool = True
    upserted: int
    unchanged: int
    deleted: int
    dim: int
    collection: str


@router.post("/index/chunks")
async def index_chunks(body: IndexRequest, principal: Principal = Depends(require_principal)) -> IndexResponse:
    chunks = [index_service.ChunkInput(**chunk.model_dump()) for chunk in body.chunks]
    result = await index_service.index_chunks(
        principal.tenant, chunks, collection=body.collection, replace=body.replace
    )
    return IndexResponse(
        upserted=result.upserted,
        unchanged=result.unchanged,
        deleted=result.deleted,
        dim=result.dim,
        collection=result.collection,
    )


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=8_000)
    top_k: int = Field(default=5, ge=1, le=100)
    filters: SearchFilter | None = None
    collection: str | None = None


class SearchHit(BaseModel):
    id: str
    score: float
    payload: dict[str, Any]


class SearchResponse(BaseModel):
    ok: bool = True
    hits: list[SearchHit]


@router.post("/search")
async def search(body: SearchRequest, principal: Principal = Depends(require_principal)) -> SearchResponse:
    hits = await search_service(
        principal.tenant, body.query, top_k=body.top_k, filters=body.filters, collection=body.collection
    )
    return SearchResponse(hits=[SearchHit(id=h.id, score=h.score, payload=h.payload) for h in hits])


class RetrieveRequest(BaseModel):
    query: str = Field(min_length=1, max_length=8_000)
    top_k: int = Field(default=5, ge=1, le=100)
    max_hops: int | None = Field(
        default=None, ge=1, le=3, description="Hops read around the linked entities (default 2)."
    )
    include_subgraph: bool = True
    filters: SearchFilter | None = None
    expand_hits: bool = Field(
        default=False,
        description=(
            "Also put in the subgraph the facts nearest the entities the hits mention (within max_hops, at most "
            "max_facts of them)."
        ),
    )
    rerank: bool = False
    collection: str | None = None
    preset: Literal["dense", "hybrid", "graph"] = Field(
        default="graph",
        description=(
            "graph: dense, lexical and graph-ranked passages (default); hybrid: dense and lexical (BM25) "
            "fused by reciprocal rank; dense: dense search only."
        ),
    )
    max_facts: int = Field(
        default=30,
        ge=0,
        le=500,
        description="Facts the walk ranks highest in the subgraph, best first; with expand_hits, as many again at most.",
    )


class SeedOut(BaseModel):
    id: str
    name: str
    key: str = Field(description="The part of the question it was linked from (normalized).")
    score: float


class RetrieveResponse(BaseModel):
    ok: bool = True
    hits: list[dict[str, Any]]
    subgraph: Subgraph
    query_time_ms: int = Field(
        description="The whole retrieval, whole milliseconds (timings_ms has the precise stages)."
    )
    timings_ms: dict[str, float]
    degraded: list[str]
    seeds: list[SeedOut] = []


@router.post("/retrieve")
async def retrieve(body: RetrieveRequest, principal: Principal = Depends(require_principal)) -> RetrieveResponse:
    options = retrieve_service.RetrieveOptions(**body.model_dump(exclude={"query"}))
    result = await retrieve_service.retrieve(principal.tenant, body.query, options)
    return RetrieveResponse(
        hits=result.hits,
        subgraph=result.subgraph,
        query_time_ms=round(result.timings_ms["total"]),
        timings_ms=result.timings_ms,
        degraded=result.degraded,
        seeds=[SeedOut(id=s.id, name=s.name, key=s.key, score=round(s.score, 6)) for s in result.seeds],
    )


class DeleteResponse(BaseModel):
    ok: bool = True
    doc_id: str
    chunks_deleted: int
    graph: dict[str, int] | None


@router.delete("/documents/{doc_id:path}")
async def delete_document(
    doc_id: str, collection: str | None = None, principal: Principal = Depends(require_principal)
) -> DeleteResponse:
    result = await ingest_service.remove_document(principal.tenant, doc_id, collection=collection)
    if result.chunks_deleted == 0 and not result.graph:
        raise NotFound(f"No document '{doc_id}' in this tenant.")
    return DeleteResponse(doc_id=doc_id, chunks_deleted=result.chunks_deleted, graph=result.graph)
