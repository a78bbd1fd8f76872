"""GET /documents, GET /documents/{doc_id}, POST /documents, POST /documents/estimate and
POST /documents/{doc_id}/reextract.

(DELETE /documents/{doc_id} is with the index routes, routers/retrieve.py.)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..auth import Principal, require_principal
from ..errors import NotFound
from ..services import documents_status
from ..services import ingest as ingest_service
from ..services import reextract as reextract_service
from ..services.supplied_graph import parse_supplied_graph

router = APIRouter(tags=["documents"])


class DocumentIn(BaseModel):
    doc_id: str = Field(min_length=1, max_length=1024)
    text: str = Field(min_length=1, max_length=5_000_000)
    graph: dict[str, Any] | None = Field(
        default=None,
        description="Your own graph (the extraction schema; facts optionally tied to `chunk`/`chunks` numbers "
        "or a text `span`, or given per chunk as `chunks: [{index, nodes, edges}]`): no model is asked.",
    )


class DocumentsPage(BaseModel):
    ok: bool = True
    documents: list[dict[str, Any]]
    next_cursor: str | None
    budget: dict[str, int | None] = Field(
        description="The tenant's extraction token budget: limit (null: none), used, remaining."
    )


class ReextractIn(BaseModel):
    max_chunks: int | None = Field(
        default=None, ge=1, le=100_000, description="Extract at most this many chunks in this call (the rest next)."
    )
    replace_supplied: bool = Field(
        default=False, description="Re-extract a document ingested with your own graph, replacing those facts."
    )


@router.get("/documents")
async def list_documents(
    limit: int = Query(default=50, ge=1, le=1000),
    cursor: str | None = Query(default=None, max_length=1024, description="next_cursor of the previous page"),
    principal: Principal = Depends(require_principal),
) -> DocumentsPage:
    page, next_cursor = await documents_status.list_documents(principal.tenant, limit=limit, after=cursor)
    budget = await documents_status.budget_state(principal.tenant)
    return DocumentsPage(documents=[status.public() for status in page], next_cursor=next_cursor, budget=budget)


@router.post("/documents/estimate")
async def estimate_document(body: DocumentIn, principal: Principal = Depends(require_principal)) -> dict[str, Any]:
    if body.graph is not None:
        parse_supplied_graph(body.graph)  # a dry run refuses what the upload would refuse
    estimate = await ingest_service.estimate(principal.tenant, body.doc_id, body.text, supplied=body.graph is not None)
    return {"ok": True, **estimate}


@router.post("/documents")
async def upload_document(body: DocumentIn, principal: Principal = Depends(require_principal)) -> dict[str, Any]:
    supplied = parse_supplied_graph(body.graph) if body.graph is not None else None
    status = await ingest_service.ingest_text(principal.tenant, body.doc_id, body.text, supplied)
    return {"ok": True, "document": status.public()}


@router.post(
    "/documents/{doc_id:path}/reextract",
    responses={
        202: {"description": "Not every chunk fitted in this call: progress saved, call again to continue."},
        404: {"description": "No such document in this tenant."},
        409: {"description": "A supplied graph (send replace_supplied), a run or an ingestion in progress."},
        429: {"description": "The tenant's budget is spent (budget_exhausted) or the model is rate limited."},
    },
)
async def reextract_document(
    doc_id: str,
    body: ReextractIn | None = None,
    principal: Principal = Depends(require_principal),
) -> JSONResponse:
    """Extract the document's graph again from its stored chunks; its facts switch once all are extracted."""
    options = body or ReextractIn()
    outcome = await reextract_service.reextract(
        principal.tenant, doc_id, max_chunks=options.max_chunks, replace_supplied=options.replace_supplied
    )
    budget = await documents_status.budget_state(principal.tenant)
    content = {"ok": True, "done": outcome.done, "document": outcome.status.public(), "budget": budget}
    return JSONResponse(content, status_code=200 if outcome.done else 202)


@router.get("/documents/{doc_id:path}")
async def get_document(doc_id: str, principal: Principal = Depends(require_principal)) -> dict[str, Any]:
    status = await documents_status.get(principal.tenant, doc_id)
    if status is None:
        raise NotFound(f"No document '{doc_id}' in this tenant.")
    return {"ok": True, "document": status.public()}
