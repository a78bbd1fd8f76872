"""A fake OpenAI-compatible HTTP server for tests.

It is a real server on 127.0.0.1 (uvicorn + Starlette in a background thread
with its own event loop), so the real `openai` client, its timeouts and its
retries run end to end. Tests script per-model behaviours (`Reply`, `Error`,
`Hang`, `InvalidJson`, `Callback`) and inspect what the server received.

    with FakeOpenAI() as fake:
        fake.script("gpt-x", Error(429, retry_after=0.2), Reply({"answer": 42}))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test")
        ...
        assert [r.status for r in fake.requests_for("gpt-x")] == [429, 200]

`python -m infra.local.openai_server --port P` runs one in the foreground.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import inspect
import itertools
import json
import logging
import math
import re
import socket
import struct
import threading
import time
import unicodedata
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Self, TypeAlias

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive

__all__ = [
    "ANY_MODEL",
    "DEFAULT_MODEL",
    "RERANK_MODEL",
    "Callback",
    "Error",
    "FakeOpenAI",
    "Hang",
    "InvalidJson",
    "Recorded",
    "Reply",
    "Step",
    "fake_embedding",
    "overlap_score",
]

log = logging.getLogger(__name__)

ANY_MODEL = "*"
DEFAULT_MODEL = "fake-model"
RERANK_MODEL = "rerank"

JsonBody: TypeAlias = dict[str, Any]
Endpoint: TypeAlias = Literal["chat", "embeddings", "rerank"]


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class _BaseStep:
    # Keyword-only so each step's own fields stay positional.
    latency: float = field(default=0.0, kw_only=True)


@dataclass(frozen=True)
class Reply(_BaseStep):
    """Answer 200. Chat: the message content (dict/list are JSON-encoded).
    Embeddings/rerank: a str means "compute the normal answer"; a dict/list is
    sent verbatim as the response body (to test malformed upstream answers)."""

    content: str | dict[str, Any] | list[Any] = "ok"
    finish_reason: str = field(default="stop", kw_only=True)


@dataclass(frozen=True)
class Error(_BaseStep):
    """Answer `status` with an OpenAI-shaped error body (and `Retry-After` if given)."""

    status: int = 500
    retry_after: float | None = None
    message: str = "fake upstream error"


@dataclass(frozen=True)
class Hang(_BaseStep):
    """Do not answer until the client disconnects or `seconds` pass (then 504)."""

    seconds: float = 30.0


@dataclass(frozen=True)
class InvalidJson(_BaseStep):
    """Chat: a reply whose content is not JSON. Embeddings/rerank: a body that is not JSON."""

    text: str = "{not json"


@dataclass(frozen=True)
class Callback(_BaseStep):
    """`fn(body)` picks the step for each request (sync or async)."""

    fn: Callable[[JsonBody], Step | Awaitable[Step]]


Step: TypeAlias = Reply | Error | Hang | InvalidJson | Callback
_STEP_TYPES = (Reply, Error, Hang, InvalidJson, Callback)


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it. Times are `time.monotonic()` seconds.

    `ended_at is None` while the request is in flight; `status is None` when the
    client went away before the answer (`disconnected=True`)."""

    path: str
    model: str | None
    body: Any
    headers: dict[str, str]
    started_at: float
    ended_at: float | None = None
    status: int | None = None
    disconnected: bool = False

    @property
    def finished(self) -> bool:
        return self.ended_at is not None

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


# ---------------------------------------------------------- embeddings & rerank

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]+|(?:(?![{_CJK}])[^\W_])+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def _is_cjk(token: str) -> bool:
    return bool(re.match(rf"[{_CJK}]", token))


def _features(text: str) -> list[tuple[str, float]]:
    """Words and their character trigrams; CJK runs as characters and bigrams."""
    features: list[tuple[str, float]] = []
    for token in _tokens(text):
        if _is_cjk(token):
            features.extend((f"c:{ch}", 1.0) for ch in token)
            features.extend((f"b:{token[i : i + 2]}", 1.0) for i in range(len(token) - 1))
        else:
            features.append((f"w:{token}", 1.0))
            padded = f"<{token}>"
            features.extend((f"g:{padded[i : i + 3]}", 0.5) for i in range(len(padded) - 2))
    return features


@lru_cache(maxsize=65536)
def _bucket(feature: str, dim: int) -> tuple[int, float]:
    # blake2b, not hash(): vectors must be identical across processes.
    h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return h % dim, 1.0 if (h >> 40) & 1 else -1.0


def fake_embedding(text: str, dim: int = 384) -> list[float]:
    """The server's deterministic embedding: a signed, hashed bag of n-grams, L2-normalized."""
    if dim <= 0:
        raise ValueError("dim must be positive")
    vector = [0.0] * dim
    for feature, weight in _features(text) or [("<empty>", 1.0)]:
        index, sign = _bucket(feature, dim)
        vector[index] += sign * weight
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:  # every feature cancelled out: fall back to a fixed unit vector
        return [1.0] + [0.0] * (dim - 1)
    return [x / norm for x in vector]


def _trigrams(text: str) -> set[str]:
    joined = " ".join(_tokens(text))
    return {joined[i : i + 3] for i in range(len(joined) - 2)} if len(joined) >= 3 else {joined}


def _terms(text: str) -> set[str]:
    terms: set[str] = set()
    for token in _tokens(text):
        terms.update(token if _is_cjk(token) else [token])  # CJK: one term per character
    return terms


def overlap_score(query: str, document: str) -> float:
    """Rerank score in [0, 1]: share of query terms in the document, plus char-trigram overlap."""
    q_terms, d_terms = _terms(query), _terms(document)
    recall = len(q_terms & d_terms) / len(q_terms) if q_terms else 0.0
    q_grams, d_grams = _trigrams(query), _trigrams(document)
    dice = 2 * len(q_grams & d_grams) / (len(q_grams) + len(d_grams)) if q_grams and d_grams else 0.0
    return round(0.8 * recall + 0.2 * dice, 6)


# ------------------------------------------------------------------ shared state


class _State:
    """Scripts, defaults and records, shared between the test thread and the server loop."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._scripts: dict[str, deque[Step]] = {}
        self._defaults: dict[str, Step] = {}
        self._records: dict[int, Recorded] = {}
        self._ids = itertools.count()
        self._generation = 0  # bumped on every record change, so waiters miss nothing

    def _changed(self) -> None:
        self._generation += 1
        self._lock.notify_all()

    def script(self, model: str, steps: Sequence[Step]) -> None:
        for step in steps:
            _check_step(step)
        with self._lock:
            self._scripts.setdefault(model, deque()).extend(steps)

    def set_default(self, model: str, step: Step) -> None:
        _check_step(step)
        with self._lock:
            self._defaults[model] = step

    def next_step(self, model: str | None, fallback: Step) -> Step:
        with self._lock:
            queue = self._scripts.get(model or "")
            if queue:
                return queue.popleft()
            for key in (model, ANY_MODEL):
                if key is not None and key in self._defaults:
                    return self._defaults[key]
            return fallback

    def known_models(self) -> list[str]:
        with self._lock:
            names = set(self._scripts) | set(self._defaults)
        names.discard(ANY_MODEL)
        names.add(DEFAULT_MODEL)
        return sorted(names)

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self._records.clear()
            self._changed()

    def start(self, record: Recorded) -> int:
        with self._lock:
            record_id = next(self._ids)
            self._records[record_id] = record
            self._changed()
            return record_id

    def finish(self, record_id: int, *, status: int | None, disconnected: bool = False) -> None:
        with self._lock:
            record = self._records.get(record_id)
            if record is None:  # cleared by reset() while in flight
                return
            self._records[record_id] = dataclasses.replace(
                record, ended_at=time.monotonic(), status=status, disconnected=disconnected
            )
            self._changed()

    def snapshot(self) -> list[Recorded]:
        with self._lock:
            return list(self._records.values())

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        # The predicate runs outside the lock: it usually reads `fake.requests`.
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                seen = self._generation
            if predicate():
                return
            with self._lock:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(_timeout_message(timeout, list(self._records.values())))
                if self._generation == seen:
                    self._lock.wait(remaining)


def _check_step(step: object) -> None:
    if not isinstance(step, _STEP_TYPES):
        raise TypeError(f"not a fake OpenAI step: {step!r}")


def _timeout_message(timeout: float, records: list[Recorded]) -> str:
    seen = ", ".join(f"{r.path}[{r.model}]={r.status}{'/gone' if r.disconnected else ''}" for r in records)
    return f"condition not met within {timeout}s; recorded: [{seen}]"


# ------------------------------------------------------------ per-request waits


class _Watch:
    """Sleeps that end early when the client disconnects or the server closes."""

    def __init__(self, receive: Receive, closing: asyncio.Event) -> None:
        self._gone = asyncio.ensure_future(self._until_disconnect(receive))
        self._closing = asyncio.ensure_future(closing.wait())

    @staticmethod
    async def _until_disconnect(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    @property
    def disconnected(self) -> bool:
        return self._gone.done() and not self._gone.cancelled()

    async def sleep(self, seconds: float) -> bool:
        """Wait `seconds`; False if the client went away (or the server closes) first."""
        if seconds > 0 and not self._gone.done() and not self._closing.done():
            await asyncio.wait({self._gone, self._closing}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        return not self._gone.done() and not self._closing.done()

    def close(self) -> None:
        self._gone.cancel()
        self._closing.cancel()


# ------------------------------------------------------------------- responses


def _error_body(status: int, message: str) -> JsonBody:
    kind = {
        400: ("invalid_request_error", None),
        401: ("authentication_error", "invalid_api_key"),
        403: ("permission_error", None),
        404: ("not_found_error", "model_not_found"),
        408: ("timeout_error", None),
        429: ("rate_limit_error", "rate_limit_exceeded"),
        504: ("timeout_error", None),
    }.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind[0], "param": None, "code": kind[1]}}


def _error_response(step: Error) -> Response:
    headers = {} if step.retry_after is None else {"retry-after": f"{step.retry_after:g}"}
    return JSONResponse(_error_body(step.status, step.message), status_code=step.status, headers=headers)


def _content_text(content: str | dict[str, Any] | list[Any]) -> str:
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def _count_tokens(body: JsonBody) -> int:
    total = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # content parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        total += len(str(content or "").split())
    return total


class _Ids:
    def __init__(self) -> None:
        self._next = itertools.count(1)

    def __call__(self, prefix: str) -> str:
        return f"{prefix}-fake-{next(self._next)}"


def _chat_completion(body: JsonBody, text: str, finish_reason: str, completion_id: str) -> JsonBody:
    prompt_tokens, completion_tokens = _count_tokens(body), len(text.split())
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", DEFAULT_MODEL),
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _sse_chunks(body: JsonBody, text: str, finish_reason: str, completion_id: str) -> list[str]:
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", DEFAULT_MODEL),
    }

    def chunk(delta: JsonBody, finish: str | None = None) -> JsonBody:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    pieces = re.findall(r"\S+\s*|\s+", text) or [""]
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    events.append(chunk({}, finish_reason))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = _chat_completion(body, text, finish_reason, completion_id)["usage"]
        events.append({**base, "choices": [], "usage": usage})
    return [f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events] + ["data: [DONE]\n\n"]


def _embedding_inputs(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return [" ".join(map(str, raw))]  # one pre-tokenized input
    if isinstance(raw, list) and raw:
        return [x if isinstance(x, str) else " ".join(map(str, x)) for x in raw]
    raise ValueError("'input' must be a non-empty string or list")


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":  # what the openai client asks for by default
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def _documents(raw: Any) -> list[str]:
    if not isinstance(raw, list):
        raise TypeError("'documents' must be a list")
    return [d.get("text", "") if isinstance(d, dict) else str(d) for d in raw]


# ------------------------------------------------------------------------- app


class _App:
    """The Starlette app. Each request: parse, record, pick a step, play it, record the end."""

    def __init__(self, state: _State, embedding_dim: int, embedding_latency: float) -> None:
        self.state = state
        self.embedding_dim = embedding_dim
        self.embedding_latency = embedding_latency
        self.closing: asyncio.Event | None = None  # created on the server loop
        self._ids = _Ids()
        self.asgi = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/rerank", self._rerank, methods=["POST"]),
                Route("/v1/rerank", self._rerank, methods=["POST"]),
            ]
        )

    async def _chat(self, request: Request) -> Response:
        return await self._handle(request, "chat")

    async def _embeddings(self, request: Request) -> Response:
        return await self._handle(request, "embeddings")

    async def _rerank(self, request: Request) -> Response:
        return await self._handle(request, "rerank")

    async def _models(self, request: Request) -> Response:
        record_id = self.state.start(self._record(request, None, None))
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.state.known_models()]
        self.state.finish(record_id, status=200)
        return JSONResponse({"object": "list", "data": data})

    @staticmethod
    def _record(request: Request, model: str | None, body: Any) -> Recorded:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]}
        return Recorded(request.url.path, model, body, headers, started_at=time.monotonic())

    async def _handle(self, request: Request, endpoint: Endpoint) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")  # noqa: TRY004 - answered as a 400 below
        except ValueError as exc:
            record_id = self.state.start(self._record(request, None, raw.decode("utf-8", "replace")))
            self.state.finish(record_id, status=400)
            return JSONResponse(_error_body(400, f"invalid JSON body: {exc}"), status_code=400)

        model = RERANK_MODEL if endpoint == "rerank" else body.get("model")
        model = model if isinstance(model, str) else None
        record_id = self.state.start(self._record(request, model, body))
        assert self.closing is not None
        watch = _Watch(request.receive, self.closing)
        try:
            fallback = Reply("ok", latency=self.embedding_latency if endpoint == "embeddings" else 0.0)
            step = self.state.next_step(model, fallback)
            response = await self._play(step, body, endpoint, watch)
        except Exception as exc:  # a test's Callback raised, or a bad request field
            status = 400 if isinstance(exc, (ValueError, TypeError)) else 500
            if status == 500:
                log.exception("fake OpenAI server: step failed")
            response = JSONResponse(_error_body(status, f"{type(exc).__name__}: {exc}"), status_code=status)
        finally:
            watch.close()

        if response is None and watch.disconnected:
            self.state.finish(record_id, status=None, disconnected=True)
            return Response(status_code=499)  # uvicorn drops it: nobody is listening
        if response is None:  # the server is closing: do not hold its shutdown
            response = JSONResponse(_error_body(503, "fake server shutting down"), status_code=503)
        if isinstance(response, StreamingResponse):
            response.body_iterator = self._finish_after(response.body_iterator, record_id)
        else:
            self.state.finish(record_id, status=response.status_code)
        return response

    async def _finish_after(self, chunks: AsyncIterator[Any], record_id: int) -> AsyncIterator[Any]:
        try:
            async for piece in chunks:
                yield piece
        finally:
            self.state.finish(record_id, status=200)

    async def _play(self, step: Step, body: JsonBody, endpoint: Endpoint, watch: _Watch) -> Response | None:
        while isinstance(step, Callback):
            if not await watch.sleep(step.latency):
                return None
            chosen = step.fn(body)
            step = await chosen if inspect.isawaitable(chosen) else chosen
            _check_step(step)

        if not await watch.sleep(step.latency):
            return None
        if isinstance(step, Error):
            return _error_response(step)
        if isinstance(step, Hang):
            if not await watch.sleep(step.seconds):
                return None
            return JSONResponse(_error_body(504, "fake upstream hung"), status_code=504)
        if endpoint == "chat":
            text = step.text if isinstance(step, InvalidJson) else _content_text(step.content)
            finish = step.finish_reason if isinstance(step, Reply) else "stop"
            return self._chat_response(body, text, finish)
        if isinstance(step, InvalidJson):
            return Response(step.text, media_type="application/json")
        if not isinstance(step.content, str):
            return JSONResponse(step.content)  # verbatim body chosen by the test
        return JSONResponse(self._embeddings_body(body) if endpoint == "embeddings" else self._rerank_body(body))

    def _chat_response(self, body: JsonBody, text: str, finish_reason: str) -> Response:
        completion_id = self._ids("chatcmpl")
        if body.get("stream"):
            chunks = _sse_chunks(body, text, finish_reason, completion_id)
            return StreamingResponse(_iterate(chunks), media_type="text/event-stream")
        return JSONResponse(_chat_completion(body, text, finish_reason, completion_id))

    def _embeddings_body(self, body: JsonBody) -> JsonBody:
        dim = body.get("dimensions") or self.embedding_dim
        if not isinstance(dim, int) or not 0 < dim <= 8192:
            raise ValueError("'dimensions' must be an integer in 1..8192")
        encoding = body.get("encoding_format") or "float"
        texts = _embedding_inputs(body.get("input"))
        data = [
            {"object": "embedding", "index": i, "embedding": _encode_vector(fake_embedding(t, dim), encoding)}
            for i, t in enumerate(texts)
        ]
        tokens = sum(len(t.split()) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"object": "list", "data": data, "model": body.get("model", DEFAULT_MODEL), "usage": usage}

    @staticmethod
    def _rerank_body(body: JsonBody) -> JsonBody:
        query, documents = body.get("query"), _documents(body.get("documents"))
        if not isinstance(query, str):
            raise TypeError("'query' must be a string")
        scored = sorted(
            ({"index": i, "relevance_score": overlap_score(query, doc)} for i, doc in enumerate(documents)),
            key=lambda r: (-r["relevance_score"], r["index"]),
        )
        top_n = body.get("top_n")
        return {"results": scored[:top_n] if isinstance(top_n, int) and top_n > 0 else scored}


async def _iterate(chunks: list[str]) -> AsyncIterator[str]:
    for piece in chunks:
        yield piece


# ---------------------------------------------------------------------- server


class FakeOpenAI:
    """The fake server. Use as a context manager, or call `start()` and `close()`."""

    def __init__(
        self,
        *,
        port: int | None = None,
        embedding_dim: int = 384,
        embedding_latency: float = 0.0,
        startup_timeout: float = 5.0,
    ) -> None:
        self._state = _State()
        self._app = _App(self._state, embedding_dim, embedding_latency)
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Bound now (port 0: the OS picks a free one), so the URLs are known before
        # start() and no other process can take the port in between.
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and without it
        # every keep-alive response waits 40 ms for a delayed ACK (headers and body are two writes).
        self._socket: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.bind(("127.0.0.1", port or 0))
        self.port: int = self._socket.getsockname()[1]
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root_url}/v1"

    # -- lifecycle

    def start(self) -> FakeOpenAI:
        if self._thread is not None:
            return self
        if self._socket is None:
            raise RuntimeError("a closed fake OpenAI server cannot be restarted")
        sock, self._socket = self._socket, None
        config = uvicorn.Config(
            self._app.asgi,
            lifespan="off",
            http="h11",
            loop="asyncio",
            log_config=None,  # leave the test process's logging alone
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, args=(sock,), name="fake-openai", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.005)
        return self

    def _run(self, sock: socket.socket) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._app.closing = asyncio.Event()
            assert self._server is not None
            await self._server.serve(sockets=[sock])

        try:
            asyncio.run(serve())
        finally:
            sock.close()

    def close(self) -> None:
        """Stop the server (ending any hanging request) and join its thread."""
        if self._socket is not None:  # never started
            self._socket.close()
            self._socket = None
        if self._thread is None or self._server is None:
            return
        if self._loop is not None and self._app.closing is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._app.closing.set)
            except RuntimeError:  # the loop closed in between
                pass
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError("fake OpenAI server thread did not stop")
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- scripting

    def script(self, model: str, *steps: Step) -> None:
        """Queue behaviours for requests with this model (FIFO, then the model's default)."""
        self._state.script(model, steps)

    def set_default(self, model: str, step: Step) -> None:
        """Behaviour when the model's queue is empty; `"*"` applies to any model."""
        self._state.set_default(model, step)

    def reset(self) -> None:
        """Forget scripts, defaults and records."""
        self._state.reset()

    # -- inspection

    @property
    def requests(self) -> list[Recorded]:
        """Every request so far, in arrival order (a snapshot; in-flight ones have `ended_at=None`)."""
        return self._state.snapshot()

    def requests_for(self, model: str) -> list[Recorded]:
        return [r for r in self._state.snapshot() if r.model == model]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
        """Block until `predicate()` holds (woken on every record change); TimeoutError otherwise.

        It blocks the calling thread: from async code, when the request that must
        happen still needs your event loop, use `wait_for_async`."""
        self._state.wait_for(predicate, timeout)

    async def wait_for_async(self, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(_timeout_message(timeout, self._state.snapshot()))
            await asyncio.sleep(0.01)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Run the fake OpenAI-compatible server in the foreground.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--embedding-dim", type=int, default=384)
    parser.add_argument("--embedding-latency", type=float, default=0.0)
    args = parser.parse_args()
    with FakeOpenAI(port=args.port, embedding_dim=args.embedding_dim, embedding_latency=args.embedding_latency) as fake:
        print(fake.base_url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
