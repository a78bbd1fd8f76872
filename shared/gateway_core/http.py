"""The ASGI app every function mounts, and its Lambda handler.

`create_app(*routers)` gives one FastAPI app with the shared error format,
request context (request id, route, tenant in every log line), deadlines and
metrics. `lambda_handler(app)` wraps it in Mangum with lifespan off: Mangum
would run startup *and shutdown* on every invocation, and closing clients
there would defeat their reuse across warm invocations.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__, runtime
from .deadline import Deadline, set_current
from .errors import ApiError
from .observability import bind_request, logger, metrics
from .routers import health


class RequestContext:
    """Pure ASGI middleware: log keys, the request deadline, a 504 before Lambda's kill."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        aws_context = scope.get("aws.context")
        request_id = (
            getattr(aws_context, "aws_request_id", None)
            or _gateway_request_id(scope)
            or _header(scope, b"x-request-id")
            or uuid.uuid4().hex
        )
        bind_request(request_id=request_id, route=f"{scope['method']} {scope['path']}")
        deadline = Deadline.for_invocation(aws_context)
        set_current(deadline)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal response_started, status
            if message["type"] == "http.response.start":
                response_started, status = True, message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            async with asyncio.timeout(max(deadline.remaining(), 0.001)):
                await self.app(scope, receive, send_with_id)
        except TimeoutError:
            if response_started:
                raise
            body = {"error": "deadline_exceeded", "message": "The request did not finish within its time budget."}
            await JSONResponse(body, status_code=504)(scope, receive, send_with_id)
        finally:
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
            logger.info("request", extra={"status": status, "duration_ms": elapsed_ms})
            metrics.add_metric(name="Requests", unit="Count", value=1)
            if status >= 500:
                metrics.add_metric(name="ServerErrors", unit="Count", value=1)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))[:128]
    return None


def _gateway_request_id(scope: Scope) -> str | None:
    event = scope.get("aws.event") or {}
    return (event.get("requestContext") or {}).get("requestId")


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": ".".join(str(part) for part in error.get("loc", ())),
            "msg": error.get("msg"),
            "type": error.get("type"),
        }
        for error in exc.errors()
    ]


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    if exc.status >= 500:
        logger.warning("request failed", extra={"error": exc.code, "error_message": exc.message})
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    details = _validation_details(exc)
    first = details[0] if details else {"loc": "body", "msg": "invalid"}
    message = f"Invalid request: {first['loc']}: {first['msg']}"
    return JSONResponse({"error": "validation_error", "message": message, "details": details}, status_code=422)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    return JSONResponse(
        {"error": codes.get(exc.status_code, "http_error"), "message": str(exc.detail)},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error")
    request_id = request.headers.get("x-request-id", "")
    return JSONResponse(
        {
            "error": "internal_error",
            "message": f"Internal error. Quote request id {request_id} when reporting it."
            if request_id
            else "Internal error.",
        },
        status_code=500,
    )


def create_app(*routers: APIRouter, title: str = "GraphRAG gateway") -> FastAPI:
    app = FastAPI(title=title, version=__version__)
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(RequestContext)
    return app


def lambda_handler(app: FastAPI) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """API Gateway HTTP API (payload v2) handler for `app`, on the environment's one loop."""
    from mangum import Mangum  # imported here: only HTTP functions need it

    runtime.event_loop()
    asgi = Mangum(app, lifespan="off")

    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        runtime.event_loop()  # make the environment's loop current again if anything unset it
        return asgi(event, context)

    return handler


__all__ = ["create_app", "lambda_handler"]
