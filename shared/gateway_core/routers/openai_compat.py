"""OpenAI-compatible routes, so the official `openai` client works unchanged.

`stream: true` on a plain model is answered as a complete server-sent-events
body: API Gateway (HTTP API) buffers responses, so the events arrive at once,
but every client that parses SSE reads them as a normal stream.

The RAG model (RAG_MODEL_NAME, default `graphrag`) answers exactly as /answer
does for the conversation: the last user turn is the question, earlier turns
its history. Its stream relays the provider's pieces as they arrive; the
citations are `[n]` in the text and a `citations` field on the response (and
on the last chunk). Errors here are in OpenAI's shape; permanent ones carry
`x-should-retry: false` so the official client does not retry them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..auth import Principal, require_principal
from ..errors import ApiError
from ..services import answer as answer_service
from ..services import chat as chat_service
from ..services import embed as embed_service

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
RETRYABLE_CLIENT_ERRORS = (408, 409, 429)  # what the official client itself retries below 500


class OpenAIErrors(APIRoute):
    """Errors as `{"error": {message, type, code, param}}`, which the official client shows as they are."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_with_openai_errors(request: Request) -> Response:
            try:
                return await handle(request)
            except ApiError as exc:
                return openai_error(exc.status, exc.message, exc.code)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                param = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or None
                return openai_error(400, f"Invalid request: {param}: {first.get('msg')}", "invalid_request", param)

        return handle_with_openai_errors


def openai_error(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    # Permanent: a client error other than timeouts, conflicts and rate limits, or a missing configuration.
    permanent = (status < 500 and status not in RETRYABLE_CLIENT_ERRORS) or code == "not_configured"
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": code, "param": param}},
        status_code=status,
        headers={"x-should-retry": "false"} if permanent else None,
    )


router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_principal)], route_class=OpenAIErrors)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def as_text_message(self) -> dict[str, Any]:
        content = self.content
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(str(part.get("text", "")) for part in content if part.get("type") == "text")
        role = "system" if self.role == "developer" else self.role
        return {"role": role, "content": content or ""}


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    response_format: dict[str, Any] | None = None


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, principal: Principal = Depends(require_principal)
) -> dict[str, Any] | Response:
    if body.model == answer_service.rag_model_name():
        return await rag_completion(body, principal.tenant)
    json_mode = (body.response_format or {}).get("type") in ("json_object", "json_schema")
    result = await chat_service.chat(
        [message.as_text_message() for message in body.messages],
        model=body.model,
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        json_mode=json_mode,
    )
    completion = result.completion
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    finish = completion.finish_reason or "stop"
    if body.stream:
        return Response(
            _sse(completion_id, created, body.model, completion.text, finish),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )
    return _completion_body(
        completion_id, created, body.model, completion.text, finish, completion.usage, completion.provider
    )


def _completion_body(
    completion_id: str,
    created: int,
    model: str,
    text: str,
    finish: str,
    usage: dict[str, Any] | None,
    provider: str | None,
    **extra: Any,
) -> dict[str, Any]:
    """One `chat.completion` in OpenAI's shape."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": text}}],
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "system_fingerprint": provider,
        **extra,
    }


def _chunk_event(
    completion_id: str, created: int, model: str, delta: dict[str, Any], finish_reason: str | None, **extra: Any
) -> str:
    """One `chat.completion.chunk` as a server-sent event."""
    payload = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _sse(completion_id: str, created: int, model: str, text: str, finish: str) -> str:
    def chunk(delta: dict[str, Any], finish_reason: str | None) -> str:
        return _chunk_event(completion_id, created, model, delta, finish_reason)

    return (
        chunk({"role": "assistant", "content": ""}, None)
        + chunk({"content": text}, None)
        + chunk({}, finish)
        + "data: [DONE]\n\n"
    )


async def rag_completion(body: ChatCompletionRequest, tenant: str) -> dict[str, Any] | Response:
    question, history = answer_service.question_and_history([m.as_text_message() for m in body.messages])
    options = answer_service.AnswerOptions(
        history=history, temperature=body.temperature, max_tokens=body.max_completion_tokens or body.max_tokens
    )
    prepared = await answer_service.prepare(tenant, question, options)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        chunks = _rag_chunks(answer_service.answer_events(prepared), completion_id, created, body.model)
        return StreamingResponse(chunks, media_type="text/event-stream", headers={"cache-control": "no-cache"})
    result = await answer_service.answer(prepared)
    text = result.answer + _sources(result.citations)
    return _completion_body(
        completion_id,
        created,
        body.model,
        text,
        "stop",
        result.usage,
        result.provider,
        citations=result.citations,
        degraded=result.degraded,
    )


async def _rag_chunks(
    events: AsyncIterator[answer_service.Delta | answer_service.Done], completion_id: str, created: int, model: str
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        return _chunk_event(completion_id, created, model, delta, finish_reason, **extra)

    yield chunk({"role": "assistant", "content": ""})
    async for event in events:
        if isinstance(event, answer_service.Delta):
            yield chunk({"content": event.text})
            continue
        result = event.result
        if sources := _sources(result.citations):
            yield chunk({"content": sources})
        yield chunk({}, "stop", citations=result.citations, degraded=result.degraded)
    yield "data: [DONE]\n\n"


def _sources(citations: list[dict[str, Any]]) -> str:
    """A sources list after the answer, so a chat UI that knows nothing of `citations` still shows what [n] is."""
    if not citations:
        return ""
    lines = [f"[{c['n']}] {c['doc_id'] or c['chunk_id']}" for c in citations]
    return "\n\nSources:\n" + "\n".join(lines)


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    input: str | list[str]
    model: str = "default"
    encoding_format: Literal["float", "base64"] = "float"

    @field_validator("input")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if not texts or len(texts) > 2048 or any(not text.strip() for text in texts):
            raise ValueError("input must be 1 to 2048 non-empty strings (token arrays are not supported)")
        return value


@router.post("/embeddings")
async def embeddings(body: EmbeddingsRequest) -> dict[str, Any]:
    texts = [body.input] if isinstance(body.input, str) else body.input
    result = await embed_service.embed(texts)
    vectors = result.vectors
    encode = embed_service.encode_base64 if body.encoding_format == "base64" else (lambda vector: vector)
    characters = sum(len(text) for text in texts)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
        "model": body.model,
        "usage": {"prompt_tokens": characters, "total_tokens": characters},
    }


@router.get("/models")
async def models() -> dict[str, Any]:
    names = list(
        dict.fromkeys([answer_service.rag_model_name(), *chat_service.model_names(), embed_service.embedding_model()])
    )
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 0, "owned_by": "gateway"} for name in names],
    }
