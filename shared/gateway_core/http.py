"""The ASGI app every function mounts, and its Lambda handler.

`create_app(*routers)` gives one FastAPI app with the shared error format,
request context (request id, route, tenant in every log line), deadlines and
metrics. `lambda_handler(app)` wraps it in Mangum with lifespan off: Mangum
would run startup *and shutdown* on every invocation, and closing clients
there would defeat their reuse across warm invocations.
"""

from __future__ import annotations

import asyncio
import json
import re
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
from .observability import bind_request, count, logger, metrics
from .redaction import redact_text
from .routers import health
from .settings import get_settings


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
            count("Requests")
            if status >= 500:
                count("ServerErrors")


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Characters no route accepts in any string or key: NUL (C-string truncation in stores) and lone surrogates
# (not encodable as UTF-8, so every store or client downstream would fail on them).
_FORBIDDEN_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


class InvalidBody(Exception):
    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return JSONResponse(body, status_code=self.status)


class BodyGuard:
    """Pure ASGI middleware: a body reaches a route only if it is small enough, JSON, UTF-8 and sane.

    413 when Content-Length (or, without it, the bytes streamed so far) passes `MAX_BODY_BYTES`, before
    reading the rest; 415 for a body that is not `application/json`; 422 for bytes that are not UTF-8 JSON
    (also NaN, numbers too long to convert, duplicate keys, nesting past `MAX_JSON_DEPTH`: checked without
    recursion); 422 for a NUL or a lone surrogate in any string or key, or in the path. The route then reads the same bytes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        try:
            _check_string(scope["path"], (), root="path")  # e.g. DELETE /documents/a%00b
            _check_length(_header(scope, b"content-length"), settings.max_body_bytes)
            body = await _read_body(receive, settings.max_body_bytes)
            if scope["method"] in BODY_METHODS:
                _check_content_type(_header(scope, b"content-type"), body)
            if body:
                _check_json(body, settings.max_json_depth)
        except InvalidBody as invalid:
            await invalid.response()(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _too_large(limit: int) -> InvalidBody:
    return InvalidBody(413, "payload_too_large", f"The request body is larger than {limit:,} bytes.")


def _check_length(value: str | None, limit: int) -> None:
    if value is None:
        return
    if not value.strip().isdigit():
        raise InvalidBody(400, "bad_request", "The Content-Length header is not a number.")
    if int(value) > limit:
        raise _too_large(limit)


async def _read_body(receive: Receive, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise _too_large(limit)
        parts.append(part)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _check_content_type(value: str | None, body: bytes) -> None:
    if value is None:
        if body:
            raise InvalidBody(
                415, "unsupported_media_type", "Send the body as JSON with Content-Type: application/json."
            )
        return
    media_type, _, parameters = value.partition(";")
    if media_type.strip().lower() != "application/json":
        raise InvalidBody(
            415,
            "unsupported_media_type",
            f"Content-Type {media_type.strip()[:64]!r} is not supported: send JSON with Content-Type: application/json.",
        )
    charset = re.search(r"charset\s*=\s*\"?([\w.:-]+)", parameters, re.IGNORECASE)
    if charset and charset.group(1).lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise InvalidBody(
            415, "unsupported_media_type", f"Charset {charset.group(1)[:32]!r} is not supported: send UTF-8."
        )


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"duplicate key {duplicate[:64]!r}")
    return value


def _not_json(message: str) -> InvalidBody:
    """A body that is not acceptable JSON: a 422 like any other invalid body (FastAPI's own status for it)."""
    return InvalidBody(422, "validation_error", message, [{"loc": "body", "msg": message, "type": "json_invalid"}])


def _check_json(body: bytes, max_depth: int) -> None:
    try:
        text = body.decode("utf-8-sig")  # a UTF-8 byte order mark is tolerated, as FastAPI did
    except UnicodeDecodeError as exc:
        raise _not_json(f"The body is not UTF-8 (byte {exc.start}).") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise _not_json(f"The body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
    except RecursionError:
        raise _not_json(f"The body is nested more than {max_depth} levels deep.") from None
    except ValueError as exc:  # NaN/Infinity, a duplicate key, an integer too long to convert
        raise _not_json(f"The body is not valid JSON: {str(exc)[:200]}.") from None
    _check_values(value, max_depth)


def _check_values(value: Any, max_depth: int) -> None:
    """Depth, NULs and lone surrogates, walked with an explicit stack (the input decides the depth)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if len(path) > max_depth:
            raise _not_json(f"The body is nested more than {max_depth} levels deep.")
        if isinstance(item, str):
            _check_string(item, path)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_string(key, (*path, key))
                stack.append((child, (*path, key)))
        elif isinstance(item, list):
            stack.extend((child, (*path, index)) for index, child in enumerate(item))


def _check_string(text: str, path: tuple[str | int, ...], root: str = "body") -> None:
    found = _FORBIDDEN_CHARACTERS.search(text)
    if found is None:
        return
    what = "a NUL character" if found.group() == "\x00" else "a lone surrogate (not valid Unicode)"
    loc = ".".join([root, *(str(part)[:64].encode("utf-8", "backslashreplace").decode() for part in path)])
    message = f"Invalid request: {loc}: contains {what}"
    raise InvalidBody(
        422, "validation_error", message, [{"loc": loc, "msg": f"contains {what}", "type": "string_characters"}]
    )


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
    body = exc.body()
    body["message"] = redact_text(exc.message)  # a dependency's error may quote its URL or key
    if exc.status >= 500:
        logger.warning("request failed", extra={"error": exc.code, "error_message": body["message"]})
    return JSONResponse(body, status_code=exc.status, headers=exc.headers or None)


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
    app.add_middleware(BodyGuard)
    app.add_middleware(RequestContext)  # outermost: the guard's answers are logged and get a request id
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


def preload(*, stores: bool = True, embeddings: bool = True, llm: bool = False, documents: bool = False) -> None:
    """Import at init what the function's routes import on first use (coldstart.preload), so the first
    request does not pay it. Only imports: no network, no client created."""
    from . import coldstart

    coldstart.preload(stores=stores, embeddings=embeddings, llm=llm, documents=documents)
