"""A document's graph follows what was supplied or extracted for its version, and nothing else stays.

S3 -> SQS (moto) -> the real ingest handler, FalkorDB, the embedded vector store and the fake
OpenAI-compatible server.
"""

from __future__ import annotations

import io
import json

import pytest

from gateway_core.observability import logger
from infra.local.lambda_events import http_event
from infra.local.openai_server import Callback, Error, Reply
from tests.handlers import invoke
from tests.integration import test_ingest_function as ingest
from tests.integration.test_documents import LONG_DOC, api, document, run_queue
from tests.integration.test_ingest_atomicity import DOC_V2, deliver_failing
from tests.integration.test_ingest_function import ACME, graph_rows, upload

pipeline, with_llm = ingest.pipeline, ingest.with_llm


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setenv("CHUNK_SIZE", "120")
    monkeypatch.setenv("CHUNK_OVERLAP", "0")
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")


def own_graph(*edges: dict) -> dict:
    nodes = [
        {"id": "company:northwind", "type": "Company", "name": "Northwind Thermal"},
        {"id": "place:taichung", "type": "Place", "name": "Taichung"},
        {"id": "person:lin", "type": "Person", "name": "Lin Xiaoming"},
    ]
    return {"nodes": nodes, "edges": list(edges)}


OFFICE = {"src": "company:northwind", "dst": "place:taichung", "type": "HAS_OFFICE_IN", "chunks": [0, 3]}
HIRED = {"src": "company:northwind", "dst": "person:lin", "type": "EMPLOYS", "chunk": 1}
LIVES = {"src": "person:lin", "dst": "place:taichung", "type": "LIVES_IN", "chunk": 2}


def relation_types() -> list[str]:
    return sorted(row["t"] for row in graph_rows("MATCH ()-[r]->() RETURN type(r) AS t"))


# --- 1. a changed graph for unchanged chunks ----------------------------------------------


def test_a_fact_dropped_from_the_sidecar_disappears_though_the_document_is_unchanged(pipeline, with_llm, small_chunks):
    upload(pipeline, "acme/offices.md", LONG_DOC)
    upload(pipeline, "acme/offices.md.graph.json", json.dumps(own_graph(OFFICE, HIRED)), "application/json")
    run_queue(pipeline, rounds=2)
    upload(pipeline, "acme/offices.md.graph.json", json.dumps(own_graph(OFFICE)), "application/json")
    run_queue(pipeline)
    assert relation_types() == ["HAS_OFFICE_IN"]


def test_a_deleted_sidecar_takes_its_facts_and_the_model_extracts_the_document(pipeline, with_llm, small_chunks):
    upload(pipeline, "acme/offices.md", LONG_DOC)
    upload(pipeline, "acme/offices.md.graph.json", json.dumps(own_graph(OFFICE, HIRED)), "application/json")
    run_queue(pipeline, rounds=2)
    pipeline.aws.client("s3").delete_object(Bucket=pipeline.bucket, Key="acme/offices.md.graph.json")
    run_queue(pipeline)
    assert (set(relation_types()), document("offices.md")["extraction"]) == ({"RELATED_TO"}, "done")


def test_a_deleted_sidecar_takes_its_facts_without_a_model(pipeline, small_chunks):
    upload(pipeline, "acme/offices.md", LONG_DOC)
    upload(pipeline, "acme/offices.md.graph.json", json.dumps(own_graph(OFFICE, HIRED)), "application/json")
    run_queue(pipeline, rounds=2)
    pipeline.aws.client("s3").delete_object(Bucket=pipeline.bucket, Key="acme/offices.md.graph.json")
    run_queue(pipeline)
    assert (relation_types(), document("offices.md")["facts"]) == ([], 0)


def test_a_fact_dropped_from_a_posted_graph_disappears(pipeline, with_llm, small_chunks):
    for graph in (own_graph(OFFICE, HIRED), own_graph(OFFICE)):
        response = api("POST", "/documents", {"doc_id": "posted.md", "text": LONG_DOC, "graph": graph})
        assert response.status == 200, response.text
    assert relation_types() == ["HAS_OFFICE_IN"]


def test_a_fact_added_to_a_posted_graph_appears_with_its_chunk_as_source(pipeline, with_llm, small_chunks):
    for graph in (own_graph(OFFICE), own_graph(OFFICE, LIVES)):
        response = api("POST", "/documents", {"doc_id": "posted.md", "text": LONG_DOC, "graph": graph})
        assert response.status == 200, response.text
    edges = graph_rows("MATCH ()-[r:LIVES_IN]->() RETURN r.sources AS sources")
    assert [[s.split("@")[0] for s in e["sources"]] for e in edges] == [["posted.md#2"]]


def test_the_facts_count_follows_a_changed_posted_graph(pipeline, with_llm, small_chunks):
    for graph in (own_graph(OFFICE, HIRED), own_graph(HIRED)):
        response = api("POST", "/documents", {"doc_id": "posted.md", "text": LONG_DOC, "graph": graph})
        assert response.status == 200, response.text
    assert document("posted.md")["facts"] == 1


# --- 2. merges of a version that fails ------------------------------------------------------


@pytest.fixture
def merging(with_llm, monkeypatch):
    """An extractor naming Northwind Thermal `company:northwind`, except in texts about NWT (`org:nwt`, alias NWT);
    embeddings from the fake server, two texts per call, so one scripted error fails a version."""
    monkeypatch.setenv("EMBEDDINGS_URL", with_llm.base_url)
    monkeypatch.setenv("EMBEDDINGS_MODEL", "embedder")
    monkeypatch.setenv("EMBED_BATCH_SIZE", "2")

    def extractor(body: dict) -> Reply:
        text = body["messages"][-1]["content"]
        if "NWT" in text:
            node = {"id": "org:nwt", "type": "Company", "name": "Northwind Thermal", "props": {"aliases": ["NWT"]}}
        else:
            node = {"id": "company:northwind", "type": "Company", "name": "Northwind Thermal"}
        place = {"id": "place:taichung", "type": "Place", "name": "Taichung"}
        return Reply({"nodes": [node, place], "edges": [{"src": node["id"], "dst": place["id"], "type": "IN"}]})

    with_llm.set_default("extractor", Callback(extractor))
    return with_llm


def merges() -> list[dict]:
    response = invoke("extract", http_event("GET", "/graph/merges", None, api_key=ACME))
    assert response.status == 200, response.text
    return list(response.json()["merges"])


def fail_a_version_that_merges(pipeline, merging) -> None:
    upload(pipeline, "acme/reference.md", "Northwind Thermal makes heat pumps in Taichung.")
    run_queue(pipeline)
    merging.script("embedder", Reply("ok"), Error(500))
    upload(pipeline, "acme/nwt.md", DOC_V2.replace("Northwind Thermal", "NWT"))
    deliver_failing(pipeline)


def test_a_merge_made_by_a_failed_version_is_not_listed(pipeline, merging, small_chunks):
    fail_a_version_that_merges(pipeline, merging)
    assert merges() == []


def test_a_failed_version_leaves_the_survivor_without_the_ids_and_aliases_it_merged(pipeline, merging, small_chunks):
    fail_a_version_that_merges(pipeline, merging)
    rows = graph_rows("MATCH (n {id: 'company:northwind'}) RETURN n.merged_from AS merged, n.aliases AS aliases")
    assert [(row["merged"] or [], row["aliases"] or []) for row in rows] == [([], [])]


def test_the_redelivery_of_a_failed_version_records_its_merge_again(pipeline, merging, small_chunks):
    fail_a_version_that_merges(pipeline, merging)
    run_queue(pipeline, wait_s=1)
    assert [(m["absorbed"], m["survivor"], m["added_aliases"]) for m in merges()] == [
        ("org:nwt", "company:northwind", ["NWT"])
    ]


# --- 3. items dropped from extracted graphs ---------------------------------------------------

SECRET_TEXT = "Northwind Thermal was founded by Lin Xiaoming in Taichung."


def sloppy_extractor(body: dict) -> Reply:
    """A valid node, one with an unusable type, and an edge to a node the answer does not list."""
    nodes = [
        {"id": "company:northwind", "type": "Company", "name": "Northwind Thermal"},
        {"id": "person:lin", "type": "Per.son", "name": "Lin Xiaoming"},
    ]
    return Reply({"nodes": nodes, "edges": [{"src": "company:northwind", "dst": "place:taichung", "type": "IN"}]})


def test_items_dropped_from_extracted_graphs_are_counted_in_the_status(pipeline, with_llm):
    with_llm.set_default("extractor", Callback(sloppy_extractor))
    upload(pipeline, "acme/a.md", SECRET_TEXT)
    run_queue(pipeline)
    status = document("a.md")
    assert (status["state"], status["dropped"]) == ("ready", 2)


def test_items_dropped_from_extracted_graphs_are_logged_with_reasons_and_no_text(pipeline, with_llm, monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", out)
    with_llm.set_default("extractor", Callback(sloppy_extractor))
    upload(pipeline, "acme/a.md", SECRET_TEXT)
    run_queue(pipeline)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if "graph items dropped" in line]
    assert [(line["doc_id"], line["dropped"], line["reasons"]) for line in lines] == [
        ("a.md", 2, {"node: type: Value error, … is not an identifier": 1, "edge: not a node of the answer": 1})
    ]
    logged = "\n".join(line for line in out.getvalue().splitlines() if "dropped" in line)
    assert not any(text in logged for text in ("Lin Xiaoming", "Per.son", "place:taichung"))
