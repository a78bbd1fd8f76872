"""Bad input is one clear 4xx in the JSON error format, on every function's app, never a 500 or a hang.

Through the real Lambda handlers (API Gateway event -> Mangum -> the app), with a real FalkorDB behind
/graph/* so that what the guard lets through really reaches a store.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from infra.local.api_server import BackgroundServer, build_app
from infra.local.lambda_events import http_event
from tests.fixtures.environment import reconfigure
from tests.handlers import invoke

ACME = "test-key-acme"
MAX = 6_000_000


@pytest.fixture(autouse=True)
def with_graph(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")


def post(function: str, path: str, raw: bytes, headers: dict[str, str] | None = None):
    event = http_event("POST", path, api_key=ACME, raw_body=raw, headers=headers)
    return invoke(function, event)


QUERY = "/graph/query"
CASES = {
    # name: (function, path, raw body, headers, status, error code)
    "not json": ("extract", QUERY, b"hello", None, 422, "validation_error"),
    "not utf-8": ("extract", QUERY, b'{"query":"RETURN \xff"}', None, 422, "validation_error"),
    "utf-16": ("retrieve", "/search", '{"query":"x"}'.encode("utf-16"), None, 422, "validation_error"),
    "NaN": ("extract", QUERY, b'{"query":"RETURN $a","params":{"a":NaN}}', None, 422, "validation_error"),
    "duplicate keys": ("extract", QUERY, b'{"query":"RETURN 1","query":"RETURN 2"}', None, 422, "validation_error"),
    "a 5000-digit number": (
        "extract",
        QUERY,
        b'{"query":"RETURN 1","params":{"a":' + b"9" * 5000 + b"}}",
        None,
        422,
        "validation_error",
    ),
    "100k nested arrays": ("extract", QUERY, b"[" * 100_000 + b"]" * 100_000, None, 422, "validation_error"),
    "100k unclosed arrays": ("chat", "/chat", b"[" * 100_000, None, 422, "validation_error"),
    "500 nested arrays in params": (
        "extract",
        QUERY,
        b'{"query":"RETURN $a","params":{"a":' + b"[" * 500 + b"]" * 500 + b"}}",
        None,
        422,
        "validation_error",
    ),
    "500 nested maps in params": (
        "extract",
        QUERY,
        b'{"query":"RETURN $a","params":{"a":' + b'{"a":' * 500 + b"1" + b"}" * 500 + b"}}",
        None,
        422,
        "validation_error",
    ),
    "text/plain": (
        "extract",
        QUERY,
        b'{"query":"RETURN 1"}',
        {"content-type": "text/plain"},
        415,
        "unsupported_media_type",
    ),
    "a form": (
        "retrieve",
        "/search",
        b"query=x",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
    ),
    "json in latin-1": (
        "extract",
        QUERY,
        b'{"query":"RETURN 1"}',
        {"content-type": "application/json; charset=latin-1"},
        415,
        "unsupported_media_type",
    ),
    "lone surrogate in a param": (
        "extract",
        QUERY,
        b'{"query":"RETURN $a","params":{"a":"\\ud800"}}',
        None,
        422,
        "validation_error",
    ),
    "lone surrogate as a param name": (
        "extract",
        QUERY,
        b'{"query":"RETURN 1","params":{"\\udc00":1}}',
        None,
        422,
        "validation_error",
    ),
    "NUL in a query": ("extract", QUERY, b'{"query":"RETURN \\u0000 1"}', None, 422, "validation_error"),
    "NUL in a param": (
        "extract",
        QUERY,
        b'{"query":"RETURN $a","params":{"a":"x\\u0000"}}',
        None,
        422,
        "validation_error",
    ),
    "NUL in a node name": (
        "extract",
        "/graph/upsert",
        b'{"data":{"nodes":[{"id":"a","type":"T","name":"x\\u0000"}]}}',
        None,
        422,
        "validation_error",
    ),
    "NUL in a chunk": (
        "retrieve",
        "/index/chunks",
        b'{"chunks":[{"doc_id":"d","text":"x\\u0000y"}]}',
        None,
        422,
        "validation_error",
    ),
    "empty param name": ("extract", QUERY, b'{"query":"RETURN 1","params":{"":1}}', None, 422, "validation_error"),
    "backtick param name": (
        "extract",
        QUERY,
        b'{"query":"RETURN 1","params":{"a`b":1}}',
        None,
        422,
        "validation_error",
    ),
    "backtick map key in a param": (
        "extract",
        QUERY,
        b'{"query":"RETURN $a","params":{"a":{"x`y":1}}}',
        None,
        422,
        "validation_error",
    ),
    "a body over MAX_BODY_BYTES": (
        "extract",
        QUERY,
        b'{"query":"RETURN 1","params":{"a":"' + b"x" * MAX + b'"}}',
        None,
        413,
        "payload_too_large",
    ),
    "Content-Length over MAX_BODY_BYTES": (
        "retrieve",
        "/search",
        b'{"query":"x"}',
        {"content-length": str(MAX + 1)},
        413,
        "payload_too_large",
    ),
}


@pytest.mark.parametrize("function, path, raw, headers, status, code", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_clear_client_error(function, path, raw, headers, status, code):
    started = time.perf_counter()
    response = post(function, path, raw, headers)
    assert (response.status, response.json()["error"]) == (status, code), response.text[:300]
    assert response.json()["message"]
    assert time.perf_counter() - started < 5


def test_the_message_names_the_field_and_the_character():
    response = post("extract", QUERY, b'{"query":"RETURN $a","params":{"a":["ok","\\ud83d"]}}')
    assert (
        response.json()["message"] == "Invalid request: body.params.a.1: contains a lone surrogate (not valid Unicode)"
    )


def test_a_utf8_byte_order_mark_is_tolerated():
    response = post("extract", QUERY, b'\xef\xbb\xbf{"query":"RETURN 1 AS one"}')
    assert (response.status, response.json()["records"]) == (200, [{"one": 1}])


def test_a_valid_pair_of_surrogates_and_a_json_charset_are_fine():
    body = '{"query":"RETURN $a AS a","params":{"a":"\\ud83d\\ude00 北風"}}'.encode()
    response = post("extract", QUERY, body, {"content-type": "application/json; charset=UTF-8"})
    assert (response.status, response.json()["records"]) == (200, [{"a": "😀 北風"}])


def test_a_body_exactly_at_the_limit_is_read(monkeypatch):
    reconfigure(monkeypatch, MAX_BODY_BYTES="100")
    body = b'{"query":"RETURN 1 AS one"}'
    body += b" " * (100 - len(body))
    assert post("extract", QUERY, body).status == 200
    assert post("extract", QUERY, body + b" ").status == 413


def test_a_nul_in_a_path_parameter_is_422():
    response = invoke("retrieve", http_event("DELETE", "/documents/a%00b", api_key=ACME))
    assert (response.status, response.json()["details"][0]["loc"]) == (422, "path")


def test_variants_of_one_id_upserted_are_one_node():
    nodes = [{"id": " cafe\u0301:1", "type": "Place"}, {"id": "café:1\n", "type": "Place"}]
    edges = [{"src": "café:1 ", "dst": "cafe\u0301:1", "type": "NEAR"}]
    assert (
        post("extract", "/graph/upsert", json.dumps({"data": {"nodes": nodes, "edges": edges}}).encode()).status == 200
    )
    query = {"query": "MATCH (n:Entity) RETURN collect(n.id) AS ids"}
    response = post("extract", QUERY, json.dumps(query).encode())
    assert response.json()["records"] == [{"ids": ["café:1"]}]


def test_a_streamed_body_without_content_length_stops_at_the_limit(monkeypatch):
    """Over real HTTP (chunked, no Content-Length): the guard answers 413 once the bytes read pass the limit."""
    reconfigure(monkeypatch, MAX_BODY_BYTES="1000")

    def chunks():
        yield b'{"query":"'
        for _ in range(50):
            yield b"x" * 100
        yield b'"}'

    with BackgroundServer(build_app()) as server:
        headers = {"x-api-key": ACME, "content-type": "application/json"}
        response = httpx.post(f"{server.url}/search", content=chunks(), headers=headers, timeout=10)
    assert "content-length" not in response.request.headers
    assert (response.status_code, response.json()["error"]) == (413, "payload_too_large")
