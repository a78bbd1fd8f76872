"""GET /health and GET /version, mounted by every function; neither needs a key."""

from __future__ import annotations

from fastapi import APIRouter

from .. import __version__

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, object]:
    # Cheap on purpose: a load balancer or uptime check must not wake the stores.
    return {"ok": True, "status": "ok", "version": __version__}


@router.get("/version")
async def version() -> dict[str, object]:
    # Open like /health (the predecessor's smoke test calls it without a key), so it says the version
    # and nothing about the deployment or its configuration.
    return {"ok": True, "version": __version__}
