"""Ingestion users can see, control and afford: status, their own graphs, budgets, backpressure, resuming.

S3 -> SQS (moto) -> the real ingest handler, FalkorDB, the embedded vector store and the fake
OpenAI-compatible server (which reports usage and plays scripted 429s).
"""

from __future__ import annotations

import json
import time

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from infra.local.lambda_events import http_event
from infra.local.openai_server import Callback, Error, Reply
from tests.fixtures.environment import reconfigure
from tests.handlers import invoke, invoke_raw
from tests.integration import test_ingest_function as ingest
from tests.integration.test_ingest_function import ACME, fake_extractor, graph_rows, points, upload

pipeline, with_llm = ingest.pipeline, ingest.with_llm

SENTENCES = [
    f"Northwind Thermal opened office number {n} in Taichung, where Lin Xiaoming hired {n} engineers."
    for n in range(1, 7)
]
LONG_DOC = " ".join(SENTENCES)  # six chunks of CHUNK_SIZE=120


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setenv("CHUNK_SIZE", "120")
    monkeypatch.setenv("CHUNK_OVERLAP", "0")
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")  # a 429 reaches the ingest at once


def api(method: str, path: str, body: dict | None = None, query: dict | None = None):
    return invoke("retrieve", http_event(method, path, body, api_key=ACME, query=query))


def document(doc_id: str) -> dict:
    response = api("GET", f"/documents/{doc_id}")
    assert response.status == 200, response.text
    return response.json()["document"]


def run_queue(pipeline, *, rounds: int = 1, wait_s: float = 0.0) -> list[dict]:
    """Deliver what is on the queue `rounds` times (waiting for delayed messages), as Lambda would."""
    responses = []
    for _ in range(rounds):
        event = {"Records": []}
        deadline = time.monotonic() + max(wait_s, 0.5)
        while not event["Records"] and time.monotonic() < deadline:
            event["Records"] += pipeline.receive()["Records"]
        if not event["Records"]:
            break
        try:
            response = invoke_raw("ingest", event)
        except BatchProcessingError:  # every record failed: none is deleted
            response = {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
        pipeline.acknowledge(event, response)
        responses.append(response)
    return responses


def extraction_calls(fake) -> int:
    return len(fake.requests_for("extractor"))


def dead_letters(pipeline) -> int:
    sqs = pipeline.aws.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=pipeline.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


# --- status ------------------------------------------------------------------------


def test_an_ingested_document_reports_ready_with_its_counts_and_tokens(pipeline, with_llm, small_chunks):
    upload(pipeline, "acme/offices.md", LONG_DOC)
    run_queue(pipeline)
    status = document("offices.md")
    assert (status["state"], status["extraction"], status["chunks"]) == ("ready", "done", points(doc_id="offices.md"))
    assert status["facts"] == sum(1 for row in graph_rows("MATCH ()-[r]->() RETURN r.sources AS s") for _ in row["s"])
    assert status["tokens"] > 0 and status["extraction_calls"] == extraction_calls(with_llm)
    assert [step["state"] for step in status["history"]] == ["indexing", "extracting", "indexing", "ready"]


def test_a_failed_extraction_reports_failed_with_the_error(pipeline, with_llm, small_chunks):
    with_llm.set_default("extractor", Error(500, message="the model crashed"))
    upload(pipeline, "acme/offices.md", LONG_DOC)
    run_queue(pipeline)
    status = document("offices.md")
    assert (status["state"], "extraction_failed" in status["error"]) == ("failed", True)


def test_the_document_list_is_paged_and_scoped_to_the_tenant(pipeline, with_llm):
    for name in ("c.md", "a.md", "b.md"):
        upload(pipeline, f"acme/{name}", ingest.EN_DOC)
    upload(pipeline, "beta/x.md", ingest.EN_DOC)
    run_queue(pipeline, rounds=2)
    first = api("GET", "/documents", query={"limit": "2"}).json()
    second = api("GET", "/documents", query={"limit": "2", "cursor": first["next_cursor"]}).json()
    ids = [d["doc_id"] for d in first["documents"] + second["documents"]]
    assert (ids, second["next_cursor"]) == (["a.md", "b.md", "c.md"], None)


def test_an_unknown_document_is_404(pipeline):
    assert api("GET", "/documents/nothing.md").status == 404


# --- bring your own graph -------------------------------------------------------------

OWN_GRAPH = {
    "nodes": [
        {"id": "company:northwind", "type": "Company", "name": "Northwind Thermal", "chunk": 0},
        {"id": "place:taichung", "type": "Place", "name": "Taichung", "span": "office number 4 in Taichung"},
    ],
    "edges": [{"src": "company:northwind", "dst": "place:taichung", "type": "HAS_OFFICE_IN", "chunks": [0, 3]}],
}


def test_a_sidecar_graph_is_written_without_asking_the_model(pipeline, with_llm, small_chunks):
    upload(pipeline, "acme/offices.md.graph.json", json.dumps(OWN_GRAPH), "application/json")
    upload(pipeline, "acme/offices.md", LONG_DOC)
    run_queue(pipeline, rounds=2)
    assert extraction_calls(with_llm) == 0
    edges = graph_rows("MATCH (a)-[r]->(b) RETURN a.id AS a, type(r) AS t, r.sources AS sources")
    assert [(e["a"], e["t"], sorted(s.split("@")[0] for s in e["sources"])) for e in edges] == [
        ("company:northwind", "HAS_OFFICE_IN", ["offices.md#0", "offices.md#3"])
    ]


def test_a_sidecar_is_never_a_document_of_its_own(pipeline, with_llm, small_chunks):
    upload(pipeline, "acme/offices.md", LONG_DOC)
    upload(pipeline, "acme/offices.md.graph.json", json.dumps(OWN_GRAPH), "application/json")
    run_queue(pipeline, rounds=2)
    listed = [d["doc_id"] for d in api("GET", "/documents").json()["documents"]]
    assert (listed, points(doc_id="offices.md.graph.json")) == (["offices.md"], 0)


def test_a_document_posted_with_its_graph_asks_no_model(pipeline, with_llm, small_chunks):
    response = api("POST", "/documents", {"doc_id": "posted.md", "text": LONG_DOC, "graph": OWN_GRAPH})
    assert response.status == 200, response.text
    assert (response.json()["document"]["extraction"], extraction_calls(with_llm)) == ("supplied graph", 0)


def test_a_graph_naming_a_missing_node_is_refused_with_422(pipeline, with_llm):
    graph = {"nodes": [], "edges": [{"src": "a:x", "dst": "b:y", "type": "KNOWS"}]}
    response = api("POST", "/documents", {"doc_id": "bad.md", "text": "Some text.", "graph": graph})
    assert (response.status, response.json()["error"]) == (422, "invalid_graph")


# --- budgets ------------------------------------------------------------------------------


def test_the_estimate_counts_the_calls_and_spends_nothing(pipeline, with_llm, small_chunks):
    response = api("POST", "/documents/estimate", {"doc_id": "offices.md", "text": LONG_DOC})
    body = response.json()
    assert (body["extraction_calls"], body["chunks"], extraction_calls(with_llm)) == (6, 6, 0)
    assert body["estimated_tokens"]["total"] > 0 and points(doc_id="offices.md") == 0


def test_an_exhausted_budget_pauses_extraction_and_leaves_the_chunks_searchable(
    pipeline, with_llm, small_chunks, monkeypatch
):
    monkeypatch.setenv("EXTRACT_TOKEN_BUDGET", "1")  # the first call spends it
    monkeypatch.setenv("EXTRACT_CONCURRENCY", "1")
    upload(pipeline, "acme/offices.md", LONG_DOC)
    run_queue(pipeline)
    status = document("offices.md")
    assert (status["extraction"], status["chunks_pending"], points(doc_id="offices.md")) == ("paused (budget)", 5, 6)
    assert (extraction_calls(with_llm), dead_letters(pipeline)) == (1, 0)


def test_a_raised_budget_resumes_on_the_next_delivery_with_only_the_missing_chunks(
    pipeline, with_llm, small_chunks, monkeypatch
):
    monkeypatch.setenv("EXTRACT_CONCURRENCY", "1")
    monkeypatch.setenv("INGEST_PAUSED_RETRY_S", "0")
    reconfigure(monkeypatch, EXTRACT_TOKEN_BUDGET="1")
    upload(pipeline, "acme/offices.md", LONG_DOC)
    run_queue(pipeline)
    reconfigure(monkeypatch, EXTRACT_TOKEN_BUDGET="1000000")
    run_queue(pipeline)  # the paused record, back on the queue
    status = document("offices.md")
    assert (status["state"], status["extraction"], extraction_calls(with_llm)) == ("ready", "done", 6)


def test_extract_mode_off_indexes_without_asking_the_model(pipeline, with_llm, monkeypatch):
    monkeypatch.setenv("EXTRACT_MODE", "off")
    upload(pipeline, "acme/a.md", ingest.EN_DOC)
    run_queue(pipeline)
    assert (document("a.md")["extraction"], extraction_calls(with_llm), points(doc_id="a.md")) == ("off", 0, 1)


# --- backpressure and resuming -------------------------------------------------------------


def test_a_429_storm_delays_records_and_sends_none_to_the_dlq(pipeline, with_llm, small_chunks):
    with_llm.set_default("extractor", Error(429, retry_after=1))
    for n in range(3):
        upload(pipeline, f"acme/doc-{n}.md", ingest.EN_DOC)
    responses = run_queue(pipeline, rounds=5, wait_s=2.5)  # more deliveries than maxReceiveCount (3)
    with_llm.set_default("extractor", Callback(fake_extractor))
    run_queue(pipeline, rounds=6, wait_s=2.5)
    assert all(r == {"batchItemFailures": []} for r in responses) and dead_letters(pipeline) == 0
    assert [document(f"doc-{n}.md")["state"] for n in range(3)] == ["ready"] * 3


def test_a_deferred_record_waits_for_the_retry_after(pipeline, with_llm, small_chunks):
    with_llm.script("extractor", Error(429, retry_after=2))
    upload(pipeline, "acme/a.md", ingest.EN_DOC)
    run_queue(pipeline)
    assert document("a.md")["state"] == "queued"
    assert pipeline.receive()["Records"] == []  # not before its delay
    assert len(pipeline.receive(wait_s=3)["Records"]) == 1


def test_a_redelivery_after_a_partial_extraction_asks_only_for_the_missing_chunks(pipeline, with_llm, small_chunks):
    def extractor(body: dict) -> Reply | Error:
        if "office number 4 " in body["messages"][-1]["content"]:
            return Error(429, retry_after=0)
        return fake_extractor(body)

    def asked(status: int | None = None) -> list[str]:
        requests = with_llm.requests_for("extractor")
        return [r.body["messages"][-1]["content"] for r in requests if status is None or r.status == status]

    with_llm.set_default("extractor", Callback(extractor))
    upload(pipeline, "acme/offices.md", LONG_DOC)
    run_queue(pipeline)
    extracted_first = asked(200)
    with_llm.reset()
    with_llm.set_default("extractor", Callback(fake_extractor))
    run_queue(pipeline, wait_s=2)
    # every chunk was extracted exactly once over the two deliveries
    assert sorted(extracted_first + asked()) == sorted(SENTENCES)


def test_deleting_a_document_through_the_api_forgets_its_status(pipeline, with_llm):
    upload(pipeline, "acme/offices.md", ingest.EN_DOC)
    run_queue(pipeline)
    assert api("DELETE", "/documents/offices.md").status == 200
    assert api("GET", "/documents/offices.md").status == 404
