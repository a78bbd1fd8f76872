"""The main job (make demo) as a test, and the local API server (make dev) over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from infra.demo import run as demo
from infra.local.api_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def redis_servers() -> int:
    """FalkorDB servers started by this process (servers of other processes on the machine do not count)."""
    result = subprocess.run(
        ["ps", "-o", "args=", "--ppid", str(os.getpid())], capture_output=True, text=True, check=False
    )
    return sum("falkordb" in line and "redis-server" in line for line in result.stdout.splitlines())


def summary(result: demo.DemoResult) -> list[tuple[list[str], list[str]]]:
    return [
        ([hit["text"] for hit in a["retrieve"]["hits"]], sorted(n["id"] for n in a["retrieve"]["subgraph"]["nodes"]))
        for a in result.answers
    ]


def test_the_demo_flow_answers_with_citations_and_graph_facts_and_is_idempotent(tmp_path):
    before = redis_servers()
    first = demo.run_demo(demo.Progress(quiet=True), data_dir=tmp_path)
    documents = demo.sample_documents()
    assert [path.name for path in documents] == ["northwind-en.md", "northwind-zh-hant.md"]
    assert [report["key"] for report in first.ingest_reports] == [f"demo/{path.name}" for path in documents]
    shipped = [json.loads(path.with_suffix(".graph.json").read_text(encoding="utf-8")) for path in documents]
    assert first.graph_loaded == {
        "nodes": sum(len(entry["nodes"]) for graph in shipped for entry in graph["chunks"]),
        "edges": sum(len(entry["edges"]) for graph in shipped for entry in graph["chunks"]),
    }
    for expected, answer in zip(demo.questions(), first.answers):
        body = answer["retrieve"]
        assert body["degraded"] == []
        top_texts = " ".join(hit["text"] for hit in body["hits"])
        assert all(s in top_texts for s in expected["expect_in_hits"]), (expected["question"], top_texts)
        assert all(hit["citations"][0]["doc_id"] for hit in body["hits"])
        node_ids = {node["id"] for node in body["subgraph"]["nodes"]}
        assert set(expected["expect_entities"]) <= node_ids, (expected["question"], node_ids)
    second = demo.run_demo(demo.Progress(quiet=True), data_dir=tmp_path)
    assert summary(second) == summary(first)
    assert redis_servers() == before  # the demo stopped the FalkorDB it started


def test_shipped_graphs_still_match_the_chunks_of_their_documents():
    from gateway_core.services.chunking import chunk_text, content_hash
    from gateway_core.services.documents import parse_document

    for path in demo.sample_documents():
        shipped = json.loads(path.with_suffix(".graph.json").read_text(encoding="utf-8"))
        text = parse_document(path.read_bytes(), filename=path.name).text
        hashes = [
            content_hash(c.text) for c in chunk_text(text, size=shipped["chunk_size"], overlap=shipped["chunk_overlap"])
        ]
        assert [entry["content_hash"] for entry in shipped["chunks"]] == hashes, path.name


@pytest.fixture
def dev_server(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "API_KEYS": "dev-test-key:default",
        "QDRANT_PATH": str(tmp_path / "qdrant"),
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    env.pop("FALKORDB_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.dev_server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, "the dev server exited"
        assert time.monotonic() < deadline, "the dev server did not come up"
        time.sleep(0.2)
    yield url
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)


def test_make_dev_serves_every_route_over_http(dev_server):
    before_docs = httpx.get(f"{dev_server}/docs", timeout=5)
    assert before_docs.status_code == 200 and "swagger" in before_docs.text.lower()
    headers = {"x-api-key": "dev-test-key"}
    upsert = httpx.post(
        f"{dev_server}/graph/upsert",
        headers=headers,
        timeout=30,
        json={
            "data": {
                "nodes": [
                    {"id": "p", "type": "Person", "name": "Lin Xiaoming"},
                    {"id": "c", "type": "Company", "name": "Northwind Thermal"},
                ],
                "edges": [{"src": "p", "dst": "c", "type": "FOUNDED"}],
            }
        },
    )
    assert upsert.status_code == 200, upsert.text
    index = httpx.post(
        f"{dev_server}/index/chunks",
        headers=headers,
        timeout=60,
        json={"chunks": [{"doc_id": "d", "text": "Lin Xiaoming founded Northwind Thermal in 2011."}]},
    )
    assert index.status_code == 200, index.text
    retrieve = httpx.post(
        f"{dev_server}/retrieve", headers=headers, timeout=30, json={"query": "Who founded Northwind Thermal?"}
    ).json()
    assert retrieve["hits"][0]["citations"][0]["doc_id"] == "d" and retrieve["degraded"] == []
    assert {"p", "c"} <= {node["id"] for node in retrieve["subgraph"]["nodes"]}
    query = httpx.post(
        f"{dev_server}/graph/query",
        headers=headers,
        timeout=30,
        json={"query": "MATCH (a)-[r]->(b) RETURN a.name AS who, type(r) AS rel"},
    ).json()
    assert query["records"] == [{"who": "Lin Xiaoming", "rel": "FOUNDED"}]
    assert httpx.get(f"{dev_server}/v1/models", headers=headers, timeout=5).status_code == 200
