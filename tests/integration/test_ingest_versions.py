"""Versioned bucket: late or out-of-order S3 events never replace the live version of a document.

moto's S3 keeps versions but leaves versionId out of its notifications, so these tests build the
notification S3 sends for each version (infra.local.lambda_events) and run the real ingest handler.
"""

from __future__ import annotations

import time

import pytest

from gateway_core import dependencies, runtime
from infra.local.aws import DocumentPipeline, LocalAWS
from infra.local.lambda_events import http_event, s3_notification, sqs_event
from tests.handlers import invoke, invoke_raw

ACME = "test-key-acme"
KEY = "acme/policy.md"
OLD = "The travel policy allows economy class on every flight."
NEW = "The travel policy allows business class on flights over eight hours."


@pytest.fixture
def bucket(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")
    with LocalAWS() as aws:
        pipeline = DocumentPipeline(aws).create()
        monkeypatch.setenv("IDEMPOTENCY_TABLE", pipeline.table)
        pipeline.aws.client("s3").put_bucket_versioning(
            Bucket=pipeline.bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        yield pipeline


def put(pipeline: DocumentPipeline, text: str) -> str:
    response = pipeline.aws.client("s3").put_object(
        Bucket=pipeline.bucket, Key=KEY, Body=text.encode(), ContentType="text/plain"
    )
    return response["VersionId"]


def delete(pipeline: DocumentPipeline, version_id: str | None = None) -> str:
    s3 = pipeline.aws.client("s3")
    if version_id:
        s3.delete_object(Bucket=pipeline.bucket, Key=KEY, VersionId=version_id)
        return version_id
    return s3.delete_object(Bucket=pipeline.bucket, Key=KEY)["VersionId"]  # the delete marker's id


def deliver(pipeline: DocumentPipeline, event_name: str, version_id: str) -> dict:
    event = sqs_event(s3_notification(event_name, pipeline.bucket, KEY, version_id=version_id))
    response = invoke_raw("ingest", event)
    assert response == {"batchItemFailures": []}, response
    return response


def indexed_texts() -> list[str]:
    count = runtime.run(dependencies.vector_store().count("chunks", tenant="acme", doc_id="policy.md"))
    if not count:
        return []
    response = invoke("retrieve", http_event("POST", "/search", {"query": "travel policy", "top_k": 5}, api_key=ACME))
    assert response.status == 200, response.text
    return [hit["payload"]["text"] for hit in response.json()["hits"]]


def test_a_late_event_of_an_older_version_does_not_overwrite_the_newer_one(bucket):
    old, new = put(bucket, OLD), put(bucket, NEW)
    deliver(bucket, "ObjectCreated:Put", new)
    deliver(bucket, "ObjectCreated:Put", old)  # delivered late
    assert indexed_texts() == [NEW]


def test_an_event_of_a_replaced_version_is_skipped_and_the_newer_event_indexes(bucket):
    old = put(bucket, OLD)
    new = put(bucket, NEW)
    deliver(bucket, "ObjectCreated:Put", old)  # arrives while the newer version is already current
    assert indexed_texts() == []
    deliver(bucket, "ObjectCreated:Put", new)
    assert indexed_texts() == [NEW]


def test_deleting_a_noncurrent_version_leaves_the_live_document(bucket):
    old, new = put(bucket, OLD), put(bucket, NEW)
    deliver(bucket, "ObjectCreated:Put", new)
    deliver(bucket, "ObjectRemoved:Delete", delete(bucket, old))
    assert indexed_texts() == [NEW]


def test_deleting_the_current_version_for_good_makes_the_previous_one_live(bucket):
    put(bucket, OLD)
    new = put(bucket, NEW)
    deliver(bucket, "ObjectCreated:Put", new)
    deliver(bucket, "ObjectRemoved:Delete", delete(bucket, new))
    assert indexed_texts() == [OLD]


def test_a_delete_marker_removes_the_document(bucket):
    deliver(bucket, "ObjectCreated:Put", put(bucket, OLD))
    deliver(bucket, "ObjectRemoved:DeleteMarkerCreated", delete(bucket))
    assert indexed_texts() == []


def test_a_late_delete_marker_event_leaves_a_document_uploaded_again(bucket):
    deliver(bucket, "ObjectCreated:Put", put(bucket, OLD))
    marker = delete(bucket)
    again = put(bucket, NEW)
    deliver(bucket, "ObjectCreated:Put", again)
    deliver(bucket, "ObjectRemoved:DeleteMarkerCreated", marker)  # delivered late
    assert indexed_texts() == [NEW]


def test_a_created_event_of_a_version_deleted_since_is_skipped_not_retried(bucket):
    version = put(bucket, OLD)
    delete(bucket)
    deliver(bucket, "ObjectCreated:Put", version)  # no failure: nothing to retry, nothing to DLQ
    assert indexed_texts() == []
