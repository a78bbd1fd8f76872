"""POST /chat, /embed, /rerank: the gateway's own chat-side API."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, field_validator

from ..auth import require_principal
from ..racing import Strategy
from ..services import chat as chat_service
from ..services import embed as embed_service

router = APIRouter(tags=["chat"], dependencies=[Depends(require_principal)])


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field(max_length=200_000)


class ChatRequest(BaseModel):
    messages: list[Message] = Field(min_length=1, max_length=200)
    model: str | None = Field(default=None, description="A model alias (MODEL_ALIASES) or provider name.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=65_536)
    json_mode: bool = False
    strategy: Strategy = "sequential"


class ChatResponse(BaseModel):
    ok: bool = True
    data: Any
    meta: dict[str, Any]


@router.post("/chat")
async def chat(body: ChatRequest) -> ChatResponse:
    result = await chat_service.chat(
        [message.model_dump() for message in body.messages],
        model=body.model,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        json_mode=body.json_mode,
        strategy=body.strategy,
    )
    return ChatResponse(data=result.data, meta=result.meta())


class EmbedRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=256)
    kind: Literal["passage", "query"] = "passage"

    @field_validator("texts")
    @classmethod
    def _not_blank(cls, texts: list[str]) -> list[str]:
        for index, text in enumerate(texts):
            if not text.strip():
                raise ValueError(f"texts[{index}] is empty")
            if len(text) > 32_000:
                raise ValueError(f"texts[{index}] is longer than 32000 characters")
        return texts


class EmbedResponse(BaseModel):
    ok: bool = True
    vectors: list[list[float]]
    dim: int
    model: str


@router.post("/embed")
async def embed(body: EmbedRequest) -> EmbedResponse:
    result = await embed_service.embed(body.texts, body.kind)
    return EmbedResponse(vectors=result.vectors, dim=result.dim, model=result.model)


class RerankRequest(BaseModel):
    query: str = Field(min_length=1, max_length=8_000)
    documents: list[str] = Field(min_length=1, max_length=1_000)
    top_n: int | None = Field(default=None, ge=1)


class RerankResult(BaseModel):
    index: int
    score: float
    text: str


class RerankResponse(BaseModel):
    ok: bool = True
    results: list[RerankResult]
    reranker: str


@router.post("/rerank")
async def rerank(body: RerankRequest) -> RerankResponse:
    result = await embed_service.rerank(body.query, body.documents, body.top_n)
    return RerankResponse(
        results=[RerankResult(index=i, score=score, text=body.documents[i]) for i, score in result.ranking],
        reranker=result.reranker,
    )
