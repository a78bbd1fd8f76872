"""/retrieve as the predecessor's clients read it (integer query_time_ms; citations with source, doc_id,
chunk_id, score, and node_id/edge_type for graph citations), through the real handlers on FalkorDB."""

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
}
FACTS = {  # chunk -> (src id, src name, type, dst id, dst name), in the predecessor's node shape
    "airport": [("airport", "Dodge City Regional Airport", "LOCATED IN", "kansas", "Kansas")],
    "kansas": [("kansas", "Kansas", "HAS POPULATION", "pop", "2,913,314")],
}


def call(path: str, body: dict) -> dict:
    response = invoke("retrieve", http_event("POST", path, body, api_key=KEY))
    assert response.status == 200, response.text
    return response.json()


@pytest.fixture
def corpus(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")
    call("/index/chunks", {"chunks": [{"doc_id": f"{c}.md", "chunk_id": c, "text": t} for c, t in PASSAGES.items()]})
    for chunk_id, facts in FACTS.items():
        nodes = {
            i: {"id": i, "type": "Entity", "props": [{"key": "name", "value": n}]}
            for s, sn, _, d, dn in facts
            for i, n in ((s, sn), (d, dn))
        }
        edges = [{"src": s, "dst": d, "type": t} for s, _, t, d, _ in facts]
        body = {"data": {"nodes": list(nodes.values()), "edges": edges}, "sources": [chunk_id]}
        assert invoke("extract", http_event("POST", "/graph/upsert", body, api_key=KEY)).status == 200


@pytest.fixture
def retrieved(corpus):
    return call("/retrieve", {"query": QUESTION, "top_k": 2, "max_hops": 2})


def citation_of(body: dict, chunk_id: str) -> dict:
    return next(c for hit in body["hits"] for c in hit["citations"] if c["chunk_id"] == chunk_id)


def test_query_time_ms_is_an_integer(retrieved):
    assert isinstance(retrieved["query_time_ms"], int)


def test_the_precise_total_stays_in_timings_ms(retrieved):
    assert round(retrieved["timings_ms"]["total"]) == retrieved["query_time_ms"]


def test_every_citation_says_where_the_hit_came_from(retrieved):
    assert {c["source"] for hit in retrieved["hits"] for c in hit["citations"]} <= {"vector", "graph", "hybrid"}


def test_every_citation_carries_the_hits_score(retrieved):
    assert all(c["score"] == hit["score"] for hit in retrieved["hits"] for c in hit["citations"])


def test_a_passage_only_the_graph_reached_is_a_graph_citation(retrieved):
    assert citation_of(retrieved, "kansas")["source"] == "graph"


def test_a_graph_citation_names_the_fact_that_states_the_passage(retrieved):
    cited = citation_of(retrieved, "kansas")
    assert (cited["node_id"], cited["edge_type"]) == ("kansas", "HAS_POPULATION")


def test_a_passage_found_by_search_and_the_graph_is_a_hybrid_citation(retrieved):
    assert citation_of(retrieved, "airport")["source"] == "hybrid"


def test_a_citation_names_its_document_and_chunk(retrieved):
    cited = citation_of(retrieved, "kansas")
    assert (cited["doc_id"], cited["chunk_id"]) == ("kansas.md", "kansas")


def test_dense_retrieval_cites_vector(corpus):
    body = call("/retrieve", {"query": QUESTION, "top_k": 2, "preset": "dense"})
    assert {c["source"] for hit in body["hits"] for c in hit["citations"]} == {"vector"}
