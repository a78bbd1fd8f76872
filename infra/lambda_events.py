"""Build API Gateway HTTP API (payload v2) events, and write the samples in infra/events/.

`python -m infra.lambda_events` regenerates infra/events/*.json; the tests use
the same builder, so the samples and the tests cannot drift apart.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

EVENTS_DIR = Path(__file__).parent / "events"
SAMPLE_KEY = "local-dev-key"  # matches API_KEYS in infra/env.local.json; not a secret


def http_event(method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
               query: dict[str, str] | None = None, api_key: str | None = SAMPLE_KEY,
               raw_body: bytes | None = None) -> dict[str, Any]:
    all_headers = {"host": "localhost", "user-agent": "sample", "content-type": "application/json"}
    if api_key is not None:
        all_headers["x-api-key"] = api_key
    all_headers.update({key.lower(): value for key, value in (headers or {}).items()})
    encoded = raw_body is not None
    if raw_body is not None:
        text: str | None = base64.b64encode(raw_body).decode()
    elif body is None:
        text = None
    else:
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost", "domainPrefix": "local",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "sample"},
            "requestId": uuid.uuid4().hex, "routeKey": "$default", "stage": "$default",
            "time": "22/Nov/2026:00:00:00 +0000", "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = query
    if text is not None:
        event["body"] = text
    return event


CHAT_SAMPLES: dict[str, dict[str, Any]] = {
    "chat": http_event("POST", "/chat", {"messages": [{"role": "user", "content": "Say hello in one word."}],
                                         "model": "rag-answer", "temperature": 0}),
    "chat-json": http_event("POST", "/chat", {"messages": [{"role": "user", "content":
                                              "Return {\"greeting\": ...} as JSON."}], "json_mode": True}),
    "embed": http_event("POST", "/embed", {"texts": ["Northwind builds quiet heat pumps.", "北風公司在台中設廠。"]}),
    "rerank": http_event("POST", "/rerank", {"query": "Where is the factory?",
                                             "documents": ["The factory is in Taichung.", "Lunch is at noon."]}),
    "v1-chat-completions": http_event("POST", "/v1/chat/completions", {
        "model": "rag-answer", "messages": [{"role": "user", "content": "Say hello."}]}),
    "v1-chat-completions-stream": http_event("POST", "/v1/chat/completions", {
        "model": "rag-answer", "stream": True, "messages": [{"role": "user", "content": "Say hello."}]}),
    "v1-embeddings": http_event("POST", "/v1/embeddings", {"model": "default", "input": ["hello world"]}),
    "v1-models": http_event("GET", "/v1/models"),
    "health": http_event("GET", "/health", api_key=None),
    "version": http_event("GET", "/version"),
}

SAMPLES: dict[str, dict[str, dict[str, Any]]] = {"chat": CHAT_SAMPLES}


def write_samples() -> list[Path]:
    written = []
    for function, samples in SAMPLES.items():
        for name, event in samples.items():
            stable = json.loads(json.dumps(event))
            stable["requestContext"]["requestId"] = f"sample-{function}-{name}"
            stable["requestContext"]["timeEpoch"] = 1795305600000
            path = EVENTS_DIR / function / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(stable, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    for path in write_samples():
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
