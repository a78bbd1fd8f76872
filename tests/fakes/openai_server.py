"""A fake OpenAI-compatible HTTP server on 127.0.0.1, scripted per model.

Every LLM test runs the real `openai` client against it, so retries,
timeouts and disconnects are exercised end to end. `python -m
tests.fakes.openai_server --port P` runs one in the foreground.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass(frozen=True)
class Reply:
    content: str | dict[str, Any] | list[Any] = "ok"
    latency: float = 0.0


@dataclass(frozen=True)
class Error:
    status: int
    retry_after: float | None = None
    message: str = "scripted error"
    latency: float = 0.0


@dataclass(frozen=True)
class Hang:
    seconds: float = 30.0
    latency: float = 0.0


def InvalidJson(text: str = "{not json", latency: float = 0.0) -> Reply:  # noqa: N802 - reads like a step
    return Reply(text, latency=latency)


@dataclass(frozen=True)
class Callback:
    fn: Callable[[dict[str, Any]], Any]
    latency: float = 0.0


Step = Reply | Error | Hang | Callback


@dataclass
class Recorded:
    path: str
    model: str | None
    body: dict[str, Any]
    headers: dict[str, str]
    started_at: float
    ended_at: float | None = None
    status: int | None = None
    disconnected: bool = False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fake_embedding(text: str, dim: int = 384) -> list[float]:
    """Hashed bag of character 1-3 grams: shared words (or Chinese characters) give higher cosine."""
    vector = [0.0] * dim
    normalized = re.sub(r"\s+", " ", text.lower())
    for n in (1, 2, 3):
        for i in range(len(normalized) - n + 1):
            gram = normalized[i:i + n]
            if gram.strip():
                digest = hashlib.blake2b(gram.encode(), digest_size=8).digest()
                vector[int.from_bytes(digest[:4], "little") % dim] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def overlap_score(query: str, document: str) -> float:
    q = set(re.findall(r"\w+", query.lower())) | {c for c in query if ord(c) > 0x2E80}
    d = set(re.findall(r"\w+", document.lower())) | {c for c in document if ord(c) > 0x2E80}
    return len(q & d) / (len(q) or 1)


class FakeOpenAI:
    def __init__(self, *, port: int | None = None, embedding_dim: int = 384, embedding_latency: float = 0.0) -> None:
        self.port = port or _free_port()
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root_url}/v1"
        self.embedding_dim = embedding_dim
        self.embedding_latency = embedding_latency
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Step]] = {}
        self._defaults: dict[str, Step] = {}
        self._records: list[Recorded] = []
        app = Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/rerank", self._rerank, methods=["POST"]),
            Route("/v1/rerank", self._rerank, methods=["POST"]),
        ])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-openai", daemon=True)

    # --- control -------------------------------------------------------------------------------

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def script(self, model: str, *steps: Step) -> None:
        with self._lock:
            self._scripts.setdefault(model, []).extend(steps)

    def set_default(self, model: str, step: Step) -> None:
        with self._lock:
            self._defaults[model] = step

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self._records.clear()

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._records)

    def requests_for(self, model: str) -> list[Recorded]:
        return [record for record in self.requests if record.model == model]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("the fake OpenAI server never saw what the test waited for")
            time.sleep(0.01)

    # --- serving -------------------------------------------------------------------------------------

    def _next_step(self, model: str | None, fallback: Step | None) -> Step | None:
        with self._lock:
            queue = self._scripts.get(model or "")
            if queue:
                return queue.pop(0)
            return self._defaults.get(model or "", self._defaults.get("*", fallback))

    async def _begin(self, request: Request) -> tuple[dict[str, Any], Recorded]:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {}
        record = Recorded(path=request.url.path, model=body.get("model"), body=body,
                          headers={k.lower(): v for k, v in request.headers.items()}, started_at=time.monotonic())
        with self._lock:
            self._records.append(record)
        return body, record

    async def _wait(self, request: Request, seconds: float, record: Recorded) -> bool:
        """Sleep, watching for the client to go away; False if it did."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                record.disconnected, record.ended_at = True, time.monotonic()
                return False
            await asyncio.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
        return True

    async def _play(self, request: Request, record: Recorded, step: Step, body: dict[str, Any],
                    ok: Callable[[Reply], Response]) -> Response:
        if isinstance(step, Callback):
            step = step.fn(body)
        if not await self._wait(request, step.latency, record):
            return Response(status_code=499)
        if isinstance(step, Hang):
            if not await self._wait(request, step.seconds, record):
                return Response(status_code=499)
            return self._finish(record, JSONResponse(_error_body("hang timed out"), status_code=504))
        if isinstance(step, Error):
            headers = {"retry-after": str(step.retry_after)} if step.retry_after is not None else {}
            return self._finish(record, JSONResponse(_error_body(step.message, step.status), status_code=step.status,
                                                     headers=headers))
        return self._finish(record, ok(step))

    def _finish(self, record: Recorded, response: Response) -> Response:
        record.status, record.ended_at = response.status_code, time.monotonic()
        return response

    async def _chat(self, request: Request) -> Response:
        body, record = await self._begin(request)
        step = self._next_step(record.model, Reply("ok"))
        model = record.model or "fake-model"

        def ok(reply: Reply) -> Response:
            content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content,
                                                                                       ensure_ascii=False)
            if body.get("stream"):
                return Response(_sse(model, content), media_type="text/event-stream")
            return JSONResponse(_completion(model, content))

        assert step is not None
        return await self._play(request, record, step, body, ok)

    async def _embeddings(self, request: Request) -> Response:
        body, record = await self._begin(request)
        texts = body.get("input", [])
        texts = [texts] if isinstance(texts, str) else texts
        dim = int(body.get("dimensions") or self.embedding_dim)
        step = self._next_step(record.model, Reply(latency=self.embedding_latency))

        def ok(_: Reply) -> Response:
            data = [{"object": "embedding", "index": i, "embedding": fake_embedding(t, dim)} for i, t in enumerate(texts)]
            return JSONResponse({"object": "list", "data": data, "model": record.model,
                                 "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}})

        assert step is not None
        return await self._play(request, record, step, body, ok)

    async def _rerank(self, request: Request) -> Response:
        body, record = await self._begin(request)
        record.model = "rerank"
        query, documents = body.get("query", ""), body.get("documents", [])
        step = self._next_step("rerank", Reply())

        def ok(_: Reply) -> Response:
            scored = sorted(({"index": i, "relevance_score": overlap_score(query, d)} for i, d in enumerate(documents)),
                            key=lambda item: item["relevance_score"], reverse=True)
            return JSONResponse({"results": scored[: body.get("top_n") or len(scored)]})

        assert step is not None
        return await self._play(request, record, step, body, ok)

    async def _models(self, request: Request) -> Response:
        with self._lock:
            names = sorted({*self._scripts, *self._defaults, "fake-model"} - {"*"})
        return JSONResponse({"object": "list", "data": [{"id": n, "object": "model", "owned_by": "fake"}
                                                         for n in names]})


def _error_body(message: str, status: int = 500) -> dict[str, Any]:
    return {"error": {"message": message, "type": "fake_error", "code": str(status)}}


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": max(1, len(content) // 4),
                  "total_tokens": 10 + max(1, len(content) // 4)},
    }


def _sse(model: str, content: str) -> str:
    chunk_id, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None) -> str:
        return "data: " + json.dumps({"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                                      "model": model, "choices": [{"index": 0, "delta": delta,
                                                                   "finish_reason": finish}]}) + "\n\n"

    return chunk({"role": "assistant", "content": ""}, None) + chunk({"content": content}, None) + \
        chunk({}, "stop") + "data: [DONE]\n\n"


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Run the fake OpenAI-compatible server.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--embedding-latency", type=float, default=0.0)
    args = parser.parse_args()
    server = FakeOpenAI(port=args.port or None, embedding_latency=args.embedding_latency)
    server.start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
