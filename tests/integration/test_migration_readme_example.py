"""The predecessor's README example: "who works at Acme and what skills do they have", with max_hops 2.

Its graph: people WORK_AT Acme, each HAS_SKILL skills. The question names Acme only; the skills are two
hops from it, so `max_hops: 2` (hops from the linked entities) must reach them.
"""

from __future__ import annotations

import time

import pytest

from infra.local.lambda_events import http_event
from tests.handlers import invoke

KEY = "test-key-acme"
GRAPH = {
    "nodes": [
        {"id": "company:acme", "type": "Company", "props": [{"key": "name", "value": "Acme Corp"}]},
        {"id": "person:alice", "type": "Person", "props": [{"key": "name", "value": "Alice"}]},
        {"id": "person:bob", "type": "Person", "props": [{"key": "name", "value": "Bob"}]},
        {"id": "skill:python", "type": "Skill", "props": [{"key": "name", "value": "Python"}]},
        {"id": "skill:graphs", "type": "Skill", "props": [{"key": "name", "value": "Graph databases"}]},
    ],
    "edges": [
        {"src": "person:alice", "dst": "company:acme", "type": "WORKS_AT"},
        {"src": "person:bob", "dst": "company:acme", "type": "WORKS_AT"},
        {"src": "person:alice", "dst": "skill:python", "type": "HAS_SKILL"},
        {"src": "person:bob", "dst": "skill:graphs", "type": "HAS_SKILL"},
    ],
}
TEXT = "Alice and Bob work at Acme Corp. Alice writes Python; Bob designs graph databases."


@pytest.fixture
def acme(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")
    chunks = {"chunks": [{"doc_id": "team.md", "chunk_id": "team.md#0", "text": TEXT}]}
    assert invoke("retrieve", http_event("POST", "/index/chunks", chunks, api_key=KEY)).status == 200
    upsert = {"data": GRAPH, "sources": ["team.md#0"]}
    assert invoke("extract", http_event("POST", "/graph/upsert", upsert, api_key=KEY)).status == 200


def test_two_hops_from_acme_reach_the_skills(acme):
    body = {"query": "Who works at Acme Corp and what skills do they have?", "max_hops": 2}
    response = invoke("retrieve", http_event("POST", "/retrieve", body, api_key=KEY))
    nodes = {node["id"] for node in response.json()["subgraph"]["nodes"]}
    assert {"skill:python", "skill:graphs"} <= nodes
