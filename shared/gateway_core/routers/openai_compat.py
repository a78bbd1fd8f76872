"""OpenAI-compatible routes, so the official `openai` client works unchanged.

`stream: true` is answered as a complete server-sent-events body: API Gateway
(HTTP API) buffers responses, so the events arrive at once, but every client
that parses SSE reads them as a normal stream.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..auth import require_principal
from ..services import chat as chat_service
from ..services import embed as embed_service

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_principal)])


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
async def chat_completions(body: ChatCompletionRequest) -> dict[str, Any] | Response:
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
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": completion.text}}
        ],
        "usage": completion.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "system_fingerprint": completion.provider,
    }


def _sse(completion_id: str, created: int, model: str, text: str, finish: str) -> str:
    def chunk(delta: dict[str, Any], finish_reason: str | None) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    return (
        chunk({"role": "assistant", "content": ""}, None)
        + chunk({"content": text}, None)
        + chunk({}, finish)
        + "data: [DONE]\n\n"
    )


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
    names = [*chat_service.model_names(), embed_service.embedding_model()]
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 0, "owned_by": "gateway"} for name in names],
    }
