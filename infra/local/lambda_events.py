"""Build API Gateway HTTP API (payload v2) events, and write the samples in infra/events/.

`python -m infra.local.lambda_events` regenerates infra/events/*.json; the tests use
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

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
SAMPLE_KEY = "local-dev-key"  # matches API_KEYS in infra/env.local.json; not a secret


def http_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    api_key: str | None = SAMPLE_KEY,
    raw_body: bytes | None = None,
) -> dict[str, Any]:
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
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "sample",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:00:00:00 +0000",
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = query
    if text is not None:
        event["body"] = text
    return event


CHAT_SAMPLES: dict[str, dict[str, Any]] = {
    "chat": http_event(
        "POST",
        "/chat",
        {"messages": [{"role": "user", "content": "Say hello in one word."}], "model": "rag-answer", "temperature": 0},
    ),
    "chat-json": http_event(
        "POST",
        "/chat",
        {"messages": [{"role": "user", "content": 'Return {"greeting": ...} as JSON.'}], "json_mode": True},
    ),
    "embed": http_event("POST", "/embed", {"texts": ["Northwind builds quiet heat pumps.", "北風公司在台中設廠。"]}),
    "rerank": http_event(
        "POST",
        "/rerank",
        {"query": "Where is the factory?", "documents": ["The factory is in Taichung.", "Lunch is at noon."]},
    ),
    "v1-chat-completions": http_event(
        "POST", "/v1/chat/completions", {"model": "rag-answer", "messages": [{"role": "user", "content": "Say hello."}]}
    ),
    "v1-chat-completions-stream": http_event(
        "POST",
        "/v1/chat/completions",
        {"model": "rag-answer", "stream": True, "messages": [{"role": "user", "content": "Say hello."}]},
    ),
    "v1-embeddings": http_event("POST", "/v1/embeddings", {"model": "default", "input": ["hello world"]}),
    "v1-models": http_event("GET", "/v1/models"),
    "health": http_event("GET", "/health", api_key=None),
    "version": http_event("GET", "/version"),
}

RETRIEVE_SAMPLES: dict[str, dict[str, Any]] = {
    "index-chunks": http_event(
        "POST",
        "/index/chunks",
        {
            "chunks": [
                {
                    "doc_id": "handbook/intro.md",
                    "text": "Northwind Thermal was founded in 2011 in Taichung.",
                    "metadata": {"lang": "en"},
                },
                {
                    "doc_id": "handbook/intro.md",
                    "text": "北風熱能的研發實驗室位於新竹。",
                    "metadata": {"lang": "zh-Hant"},
                },
            ]
        },
    ),
    "search": http_event("POST", "/search", {"query": "When was the company founded?", "top_k": 3}),
    "retrieve": http_event(
        "POST", "/retrieve", {"query": "Who founded Northwind Thermal?", "top_k": 3, "max_hops": 2, "expand_hits": True}
    ),
    "delete-document": http_event("DELETE", "/documents/handbook/intro.md"),
}

EXTRACT_SAMPLES: dict[str, dict[str, Any]] = {
    "probe": http_event("POST", "/graph/probe", {"model": "graph-extractor"}),
    "extract": http_event(
        "POST",
        "/graph/extract",
        {"context": "林小明於二〇一一年在台中創立了北風熱能公司。", "strategy": "race", "min_nodes": 2},
    ),
    "upsert": http_event(
        "POST",
        "/graph/upsert",
        {
            "data": {
                "nodes": [
                    {"id": "person:lin", "type": "人物", "name": "林小明"},
                    {
                        "id": "company:northwind",
                        "type": "Company",
                        "name": "Northwind Thermal",
                        "props": [{"key": "founded", "value": 2011}],
                    },
                ],
                "edges": [{"src": "person:lin", "dst": "company:northwind", "type": "創立"}],
            },
            "sources": ["handbook/intro.md#0"],
        },
    ),
    "query": http_event(
        "POST",
        "/graph/query",
        {"query": "MATCH (p)-[r]->(c) RETURN p.name AS who, type(r) AS rel, c.name AS what LIMIT 10"},
    ),
}


def s3_notification(
    event_name: str, bucket: str, key: str, *, etag: str | None = None, version_id: str | None = None
) -> dict[str, Any]:
    """The JSON S3 puts on the queue for one object event."""
    obj: dict[str, Any] = {"key": key.replace(" ", "+"), "sequencer": "0065A1B2C3D4E5F6"}
    if etag:
        obj.update(eTag=etag, size=1024)
    if version_id:
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-22T00:00:00.000Z",
                "eventName": event_name,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "ingest",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": obj,
                },
            }
        ]
    }


def sqs_event(*bodies: dict[str, Any], queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:ingest") -> dict[str, Any]:
    """An SQS batch as Lambda's event source mapping delivers it."""
    return {
        "Records": [
            {
                "messageId": f"sample-message-{i}",
                "receiptHandle": f"sample-receipt-{i}",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795305600000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


INGEST_SAMPLES: dict[str, dict[str, Any]] = {
    "object-created": sqs_event(
        s3_notification(
            "ObjectCreated:Put",
            "my-documents",
            "acme/handbook/intro.md",
            etag="9b2cf535f27731c974343645a3985328",
            version_id="v1",
        )
    ),
    "object-removed": sqs_event(
        s3_notification("ObjectRemoved:DeleteMarkerCreated", "my-documents", "acme/handbook/intro.md", version_id="v2")
    ),
}

SAMPLES: dict[str, dict[str, dict[str, Any]]] = {
    "chat": CHAT_SAMPLES,
    "retrieve": RETRIEVE_SAMPLES,
    "extract": EXTRACT_SAMPLES,
    "ingest": INGEST_SAMPLES,
}


def write_samples() -> list[Path]:
    written = []
    for function, samples in SAMPLES.items():
        for name, event in samples.items():
            stable = json.loads(json.dumps(event))
            if "requestContext" in stable:
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
