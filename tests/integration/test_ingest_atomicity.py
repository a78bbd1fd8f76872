"""A document version becomes visible completely or not at all; a redelivery finishes it."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from infra.local.openai_server import Callback, Error, Reply
from tests.handlers import invoke_raw
from tests.integration import test_ingest_function as ingest
from tests.integration.test_ingest_function import deliver, graph_rows, points, upload

# The S3 -> SQS pipeline and the fake extractor of the ingest tests.
pipeline, with_llm = ingest.pipeline, ingest.with_llm

SENTENCES = [
    f"Northwind Thermal opened office number {n} in Taichung, where Lin Xiaoming hired {n} engineers."
    for n in range(1, 9)
]
DOC_V1 = " ".join(SENTENCES[:4])
DOC_V2 = " ".join(SENTENCES)


@pytest.fixture
def remote_embedder(fake_llm, monkeypatch):
    """Embeddings from the fake server, two texts per call, no client retries: one scripted error fails a batch."""
    monkeypatch.setenv("EMBEDDINGS_URL", fake_llm.base_url)
    monkeypatch.setenv("EMBEDDINGS_MODEL", "embedder")
    monkeypatch.setenv("EMBED_BATCH_SIZE", "2")
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("CHUNK_SIZE", "120")
    monkeypatch.setenv("CHUNK_OVERLAP", "0")
    return fake_llm


def deliver_failing(pipeline) -> dict:
    """Run the ingest handler on the announced record and expect it to fail (a batch of one fails whole)."""
    event = {"Records": []}
    while not event["Records"]:
        event["Records"] += pipeline.receive()["Records"]
    with pytest.raises(BatchProcessingError):
        invoke_raw("ingest", event)
    return event


def facts_from(doc_id: str) -> int:
    """Relations stated by the document's chunks (a relation counts once per chunk stating it)."""
    rows = graph_rows("MATCH ()-[r]->() RETURN r.sources AS sources")
    return sum(1 for row in rows for source in row["sources"] if source.startswith(f"{doc_id}#"))


def test_a_new_document_failing_halfway_leaves_no_chunk_and_no_fact(pipeline, with_llm, remote_embedder):
    remote_embedder.script("embedder", Reply("ok"), Error(500))
    upload(pipeline, "acme/offices.md", DOC_V2)
    deliver_failing(pipeline)
    assert (points(doc_id="offices.md"), facts_from("offices.md")) == (0, 0)


def test_the_redelivery_of_a_failed_document_indexes_all_of_it(pipeline, with_llm, remote_embedder):
    upload(pipeline, "acme/reference.md", DOC_V2)
    deliver(pipeline)
    remote_embedder.script("embedder", Reply("ok"), Error(500))
    upload(pipeline, "acme/offices.md", DOC_V2)
    event = deliver_failing(pipeline)
    invoke_raw("ingest", event)  # SQS delivers the failed record again
    complete = (points(doc_id="reference.md"), facts_from("reference.md"))
    assert (points(doc_id="offices.md"), facts_from("offices.md")) == complete


def test_a_new_version_failing_halfway_leaves_the_old_version_whole(pipeline, with_llm, remote_embedder):
    upload(pipeline, "acme/offices.md", DOC_V1)
    deliver(pipeline)
    old_points, old_facts = points(doc_id="offices.md"), facts_from("offices.md")
    remote_embedder.script("embedder", Reply("ok"), Error(500))
    upload(pipeline, "acme/offices.md", DOC_V2)
    deliver_failing(pipeline)
    assert (points(doc_id="offices.md"), facts_from("offices.md")) == (old_points, old_facts)


def test_a_failed_extraction_cancels_the_others_before_the_handler_returns(pipeline, with_llm, monkeypatch):
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("CHUNK_SIZE", "120")
    monkeypatch.setenv("CHUNK_OVERLAP", "0")

    def extractor(body: dict) -> Reply | Error:
        fails = "office number 3 " in body["messages"][-1]["content"]
        return Error(500) if fails else Reply({"nodes": [], "edges": []}, latency=5.0)

    with_llm.set_default("extractor", Callback(extractor))
    upload(pipeline, "acme/offices.md", DOC_V2)
    deliver_failing(pipeline)
    # The slow extractions were cancelled (their requests closed), not left running into the next invocation.
    with_llm.wait_for(lambda: all(r.finished for r in with_llm.requests_for("extractor")), timeout=1.0)
