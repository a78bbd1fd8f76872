"""S3 -> SQS -> the real ingest handler, with moto's server, qdrant local mode, FalkorDB and a fake LLM."""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest

from gateway_core import dependencies, runtime
from infra.local.aws import DocumentPipeline, LocalAWS
from infra.local.lambda_events import http_event
from infra.local.openai_server import Callback, Reply
from tests.fixtures.llm_server import provider_env
from tests.handlers import invoke, invoke_raw

ACME = "test-key-acme"
ENTITIES = {  # name in the text -> (id, type)
    "Lin Xiaoming": ("person:lin", "Person"),
    "Northwind Thermal": ("company:northwind", "Company"),
    "Breeze 5": ("product:breeze-5", "Product"),
    "Taichung": ("place:taichung", "Place"),
    "林小明": ("person:lin", "人物"),
    "北風熱能": ("company:northwind", "公司"),
    "新竹": ("place:hsinchu", "地點"),
}
EN_DOC = (
    "# Northwind Thermal\n\nNorthwind Thermal was founded by Lin Xiaoming in Taichung in 2011. "
    "The company designs quiet heat pumps for small apartments.\n\n"
    "## Products\n\nIts flagship product is the Breeze 5, a heat pump that is quieter than a library.\n"
)
ZH_DOC = "北風熱能由林小明創立。公司的研發實驗室位於新竹，專門開發安靜的熱泵。員工餐廳每天中午開放。"


def fake_extractor(body: dict) -> Reply:
    """Answer like an extractor: the known entities the chunk names, linked in order."""
    text = body["messages"][-1]["content"]
    found = list(dict.fromkeys(ENTITIES[name] for name in ENTITIES if name in text))
    nodes = [
        {"id": eid, "type": etype, "name": next(n for n, v in ENTITIES.items() if v[0] == eid and n in text)}
        for eid, etype in found
    ]
    edges = [{"src": a["id"], "dst": b["id"], "type": "RELATED_TO"} for a, b in itertools.pairwise(nodes)]
    return Reply({"nodes": nodes, "edges": edges})


@pytest.fixture
def pipeline(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")
    with LocalAWS() as aws:
        built = DocumentPipeline(aws).create()
        monkeypatch.setenv("IDEMPOTENCY_TABLE", built.table)
        yield built


@pytest.fixture
def with_llm(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "extractor"))
    fake_llm.set_default("extractor", Callback(fake_extractor))
    return fake_llm


def upload(pipeline: DocumentPipeline, key: str, body: str | bytes, content_type: str = "text/markdown") -> None:
    data = body.encode() if isinstance(body, str) else body
    pipeline.aws.client("s3").put_object(Bucket=pipeline.bucket, Key=key, Body=data, ContentType=content_type)


def deliver(pipeline: DocumentPipeline, expected: int = 1) -> tuple[dict, dict]:
    """Receive what S3 announced and run the ingest handler on it, as the event source mapping would."""
    event = {"Records": []}
    deadline = time.monotonic() + 10
    while len(event["Records"]) < expected and time.monotonic() < deadline:
        event["Records"] += pipeline.receive()["Records"]
    assert len(event["Records"]) == expected, event
    response = invoke_raw("ingest", event)
    pipeline.acknowledge(event, response)
    return event, response


def points(tenant: str = "acme", doc_id: str | None = None) -> int:
    return runtime.run(dependencies.vector_store().count("chunks", tenant=tenant, doc_id=doc_id))


def graph_rows(query: str) -> list[dict]:
    response = invoke("extract", http_event("POST", "/graph/query", {"query": query}, api_key=ACME))
    assert response.status == 200, response.text
    return response.json()["records"]


def graph_counts() -> tuple[int, int]:
    nodes = graph_rows("MATCH (n) RETURN count(n) AS n")[0]["n"]
    edges = graph_rows("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
    return nodes, edges


def retrieve(query: str) -> dict:
    response = invoke("retrieve", http_event("POST", "/retrieve", {"query": query, "expand_hits": True}, api_key=ACME))
    assert response.status == 200, response.text
    return response.json()


def test_an_uploaded_document_is_found_by_retrieve_with_its_graph(pipeline, with_llm):
    upload(pipeline, "acme/handbook/northwind.md", EN_DOC)
    _, response = deliver(pipeline)
    assert response == {"batchItemFailures": []}
    body = retrieve("Which product is the flagship of the company?")
    top = body["hits"][0]
    assert "Breeze 5" in top["text"]
    assert top["citations"][0]["doc_id"] == "handbook/northwind.md"
    assert top["citations"][0]["uri"] == "s3://documents/acme/handbook/northwind.md"
    assert {"product:breeze-5", "company:northwind"} <= {n["id"] for n in body["subgraph"]["nodes"]}
    assert all(s.startswith("handbook/northwind.md#") for e in body["subgraph"]["edges"] for s in e["props"]["sources"])


def test_the_same_message_twice_leaves_identical_counts(pipeline, with_llm):
    upload(pipeline, "acme/a.md", EN_DOC)
    event, _ = deliver(pipeline)
    before = (points(), graph_counts())
    calls = len(with_llm.requests)
    assert invoke_raw("ingest", event) == {"batchItemFailures": []}
    assert (points(), graph_counts()) == before
    assert len(with_llm.requests) == calls  # idempotency: not even re-extracted


def test_without_the_idempotency_table_redelivery_is_still_harmless(pipeline, with_llm, monkeypatch):
    from tests.fixtures.environment import reconfigure

    reconfigure(monkeypatch, IDEMPOTENCY_TABLE="")
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    upload(pipeline, "acme/a.md", EN_DOC)
    event, _ = deliver(pipeline)
    before = (points(), graph_counts())
    assert invoke_raw("ingest", event) == {"batchItemFailures": []}
    assert (points(), graph_counts()) == before


def test_an_updated_object_leaves_no_old_chunk_or_fact(pipeline, with_llm):
    upload(pipeline, "acme/a.md", EN_DOC)
    deliver(pipeline)
    upload(pipeline, "acme/a.md", "# Northwind Thermal\n\nNorthwind Thermal moved to Kaohsiung in 2024.\n")
    deliver(pipeline)
    texts = [hit["text"] for hit in retrieve("Breeze 5 flagship heat pump quieter than a library")["hits"]]
    assert texts and all("Breeze" not in text and "Lin Xiaoming" not in text for text in texts)
    assert graph_rows("MATCH (n {id: 'product:breeze-5'}) RETURN n.id AS id") == []
    assert points(doc_id="a.md") == 1


def test_a_removed_object_leaves_no_chunk_and_no_fact_only_it_stated(pipeline, with_llm):
    upload(pipeline, "acme/a.md", EN_DOC)
    upload(pipeline, "acme/b.md", "Lin Xiaoming still advises Northwind Thermal.")
    deliver(pipeline, expected=2)
    pipeline.aws.client("s3").delete_object(Bucket=pipeline.bucket, Key="acme/a.md")
    _, response = deliver(pipeline)
    assert response == {"batchItemFailures": []}
    assert points(doc_id="a.md") == 0 and points(doc_id="b.md") == 1
    edges = graph_rows("MATCH (a)-[r]->(b) RETURN a.id AS a, b.id AS b, r.sources AS sources")
    assert [(e["a"], e["b"]) for e in edges] == [("person:lin", "company:northwind")]
    assert all(s.startswith("b.md#") for s in edges[0]["sources"]), edges
    assert graph_rows("MATCH (n {id: 'product:breeze-5'}) RETURN n.id AS id") == []


def test_a_batch_with_two_poison_records_reports_exactly_those(pipeline, with_llm):
    for i in range(8):
        upload(pipeline, f"acme/doc-{i}.txt", f"Document {i} says Northwind Thermal makes the Breeze 5.", "text/plain")
    event = {"Records": []}
    while len(event["Records"]) < 8:
        event["Records"] += pipeline.receive()["Records"]
    not_s3 = dict(event["Records"][0], messageId="poison-not-s3", body=json.dumps({"hello": "world"}))
    missing_body = json.loads(event["Records"][1]["body"])
    missing_body["Records"][0]["s3"]["object"]["key"] = "acme/never-uploaded.md"
    missing = dict(event["Records"][1], messageId="poison-missing", body=json.dumps(missing_body))
    event["Records"][3:3] = [not_s3]
    event["Records"].append(missing)
    response = invoke_raw("ingest", event)
    assert sorted(item["itemIdentifier"] for item in response["batchItemFailures"]) == [
        "poison-missing",
        "poison-not-s3",
    ]
    assert points() == 8


def test_an_undecodable_file_fails_alone_with_its_reason(pipeline, with_llm, caplog):
    upload(pipeline, "acme/bad.bin", bytes(range(256)) * 4, "application/octet-stream")
    upload(pipeline, "acme/good.md", EN_DOC)
    event, response = deliver(pipeline, expected=2)
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    bad = next(r["messageId"] for r in event["Records"] if "bad.bin" in r["body"])
    assert failed == {bad}
    assert points(doc_id="good.md") == 1  # EN_DOC is shorter than one chunk


def test_chinese_and_english_documents_are_found_in_their_language(pipeline, with_llm):
    upload(pipeline, "acme/en.md", EN_DOC)
    upload(pipeline, "acme/zh.md", ZH_DOC)
    deliver(pipeline, expected=2)
    zh = retrieve("研發實驗室在哪裡？")
    assert "新竹" in zh["hits"][0]["text"] and zh["hits"][0]["citations"][0]["doc_id"] == "zh.md"
    assert "person:lin" in {n["id"] for n in zh["subgraph"]["nodes"]}
    en = retrieve("Who founded Northwind Thermal?")
    assert "founded by Lin Xiaoming" in en["hits"][0]["text"]


def test_without_an_llm_chunks_are_indexed_and_the_graph_is_skipped(pipeline, caplog):
    upload(pipeline, "acme/a.md", EN_DOC)
    _, response = deliver(pipeline)
    assert response == {"batchItemFailures": []}
    assert points(doc_id="a.md") == 1  # EN_DOC is shorter than one chunk
    assert graph_counts() == (0, 0)


def test_keys_without_a_tenant_segment_belong_to_default(pipeline, with_llm):
    upload(pipeline, "loose-file.md", EN_DOC)
    deliver(pipeline)
    assert points(tenant="default", doc_id="loose-file.md") == 1
    assert points() == 0


def test_s3_test_events_are_accepted_and_ignored(pipeline):
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "documents"})
    event = {
        "Records": [
            {
                "messageId": "t1",
                "receiptHandle": "r",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": pipeline.queue_arn,
                "awsRegion": "us-east-1",
            }
        ]
    }
    assert invoke_raw("ingest", event) == {"batchItemFailures": []}


def test_sample_events_are_valid_sqs_wrapped_s3_notifications():
    from gateway_core.ingest_events import parse_record
    from infra.local.lambda_events import EVENTS_DIR

    for name in ("object-created.json", "object-removed.json"):
        event = json.loads((EVENTS_DIR / "ingest" / name).read_text(encoding="utf-8"))
        parsed = [e for record in event["Records"] for e in parse_record(record["body"])]
        assert parsed and re.match(r"(created|removed)", parsed[0].action)
