"""The browser console: GET /console and its assets (no key), and the keyed graph browsing it uses.

The page and its files are static, shipped in the layer (`gateway_core/console/`, third-party
libraries vendored there): loading them needs no key and makes no request elsewhere. Every data call
the page makes carries the key the person types in, kept in the tab's sessionStorage only.

- `GET /console`, `GET /console/{asset}` (and `HEAD`, headers only): the page, its script, style and vendored libraries, with a
  strict Content-Security-Policy (no inline script or style, nothing but this origin), `nosniff`,
  `no-referrer` and no framing.
- `GET /graph/entities?q=`: the entities a text names (the linking `/retrieve` uses).
- `GET /graph/neighbourhood?id=&hops=`: one entity's facts and neighbours, one or two hops out, with
  the passages they were extracted from (an id a merge absorbed answers with its survivor as `center`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from ..auth import Principal, require_principal
from ..errors import NotFound
from ..services import explore

ASSETS = Path(__file__).resolve().parent.parent / "console"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["console"])


def _asset_files() -> dict[str, Path]:
    """Every servable file by its path under /console/ (a fixed list: no path from a request reaches the disk)."""
    return {
        path.relative_to(ASSETS).as_posix(): path
        for path in sorted(ASSETS.rglob("*"))
        if path.is_file() and path.suffix in CONTENT_TYPES and path.name != "index.html"
    }


def _file_response(path: Path, request: Request) -> Response:
    body = path.read_bytes()
    if request.method == "HEAD":  # the same status and headers as GET, its length, no body
        headers = {**SECURITY_HEADERS, "Content-Length": str(len(body))}
        return Response(media_type=CONTENT_TYPES[path.suffix], headers=headers)
    return Response(body, media_type=CONTENT_TYPES[path.suffix], headers=SECURITY_HEADERS)


@router.api_route("/console", methods=["GET", "HEAD"], include_in_schema=False)
async def console_page(request: Request) -> Response:
    return _file_response(ASSETS / "index.html", request)


@router.api_route("/console/{asset:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def console_asset(asset: str, request: Request) -> Response:
    if asset == "":  # /console/, as people type it: the page's relative links need /console
        return RedirectResponse("../console", status_code=308, headers=SECURITY_HEADERS)
    path = _asset_files().get(asset)
    if path is None:
        raise NotFound(f"No console file '{asset[:200]}'.")
    return _file_response(path, request)


@router.get("/graph/entities")
async def graph_entities(
    q: str = Query(min_length=1, max_length=1000, description="A name, or any text naming entities"),
    limit: int = Query(default=20, ge=1, le=100),
    principal: Principal = Depends(require_principal),
) -> dict[str, Any]:
    entities = await explore.find_entities(principal.tenant, q, limit=limit)
    return {
        "ok": True,
        "entities": [{"id": e.id, "name": e.name, "type": e.type, "key": e.key, "score": e.score} for e in entities],
    }


@router.get("/graph/neighbourhood")
async def graph_neighbourhood(
    id: str = Query(min_length=1, max_length=1024, description="The entity's id"),
    hops: int = Query(default=1, ge=1, le=2),
    principal: Principal = Depends(require_principal),
) -> dict[str, Any]:
    found = await explore.neighbourhood(principal.tenant, id, hops=hops)
    if found is None:
        raise NotFound(f"No entity '{id[:200]}' in this tenant's graph.")
    return {
        "ok": True,
        "center": found.center,
        "requested": found.requested,
        "nodes": [node.model_dump() for node in found.subgraph.nodes],
        "edges": [edge.model_dump() for edge in found.subgraph.edges],
        "passages": found.passages,
        "degraded": found.degraded,
        # What is drawn at most: an entity with `fan_out` neighbours here may have more.
        "limits": {"fan_out": explore.NEIGHBOURHOOD_FAN_OUT, "facts": explore.NEIGHBOURHOOD_LIMIT},
    }
