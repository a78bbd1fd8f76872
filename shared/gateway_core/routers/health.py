"""GET /health (no key) and GET /version, mounted by every function."""

from __future__ import annotations

import os
import platform

from fastapi import APIRouter, Depends

from .. import __version__
from ..auth import require_principal

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, object]:
    # Cheap on purpose: a load balancer or uptime check must not wake the stores.
    return {"ok": True, "status": "ok", "version": __version__}


@router.get("/version", dependencies=[Depends(require_principal)])
async def version() -> dict[str, object]:
    return {
        "ok": True,
        "version": __version__,
        "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
        "python": platform.python_version(),
    }
