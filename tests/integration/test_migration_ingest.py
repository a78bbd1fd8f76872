"""The predecessor's S3 layouts through S3 -> SQS -> the real ingest handler (moto's server, qdrant local mode).

A first key segment names the tenant only when it is a configured tenant; otherwise the object belongs to the
deployment's default tenant and its whole key is the document id."""

from __future__ import annotations

import time

import pytest

from gateway_core import dependencies, runtime
from infra.local.aws import DocumentPipeline, LocalAWS
from tests.fixtures.environment import reconfigure
from tests.handlers import invoke_raw

DOC = "# Handbook\n\nNorthwind Thermal designs quiet heat pumps for small apartments.\n"


@pytest.fixture
def pipeline(monkeypatch):
    with LocalAWS() as aws:
        built = DocumentPipeline(aws).create()
        monkeypatch.setenv("IDEMPOTENCY_TABLE", built.table)
        yield built


def ingest(pipeline: DocumentPipeline, key: str, *, remove: bool = False) -> dict:
    s3 = pipeline.aws.client("s3")
    if remove:
        s3.delete_object(Bucket=pipeline.bucket, Key=key)
    else:
        s3.put_object(Bucket=pipeline.bucket, Key=key, Body=DOC.encode(), ContentType="text/markdown")
    event: dict = {"Records": []}
    deadline = time.monotonic() + 10
    while not event["Records"] and time.monotonic() < deadline:
        event["Records"] += pipeline.receive()["Records"]
    response = invoke_raw("ingest", event)
    pipeline.acknowledge(event, response)
    return response


def points(tenant: str, doc_id: str) -> int:
    return runtime.run(dependencies.vector_store().count("chunks", tenant=tenant, doc_id=doc_id))


def test_a_configured_tenant_segment_names_the_tenant_and_leaves_the_doc_id(pipeline):
    ingest(pipeline, "acme/handbook/intro.md")
    assert points("acme", "handbook/intro.md") == 1


def test_a_folder_that_is_no_tenant_belongs_to_default_with_the_whole_key(pipeline):
    ingest(pipeline, "handbook/intro.md")  # several tenants configured: the default tenant is `default`
    assert points("default", "handbook/intro.md") == 1


def test_a_folder_is_never_a_tenant_of_its_own(pipeline):
    ingest(pipeline, "handbook/intro.md")
    assert points("handbook", "intro.md") == 0


def test_with_exactly_one_tenant_folders_belong_to_it(pipeline, monkeypatch):
    reconfigure(monkeypatch, API_KEYS="only-key:acme")
    ingest(pipeline, "handbook/intro.md")
    assert points("acme", "handbook/intro.md") == 1


def test_with_exactly_one_tenant_its_own_prefix_is_still_stripped(pipeline, monkeypatch):
    reconfigure(monkeypatch, API_KEYS="only-key:acme")
    ingest(pipeline, "acme/intro.md")
    assert points("acme", "intro.md") == 1


def test_a_key_without_a_folder_belongs_to_the_single_tenant(pipeline, monkeypatch):
    reconfigure(monkeypatch, API_KEYS="only-key:acme")
    ingest(pipeline, "intro.md")
    assert points("acme", "intro.md") == 1


def test_removing_a_foldered_object_removes_the_document_it_became(pipeline):
    ingest(pipeline, "handbook/intro.md")
    ingest(pipeline, "handbook/intro.md", remove=True)
    assert points("default", "handbook/intro.md") == 0
