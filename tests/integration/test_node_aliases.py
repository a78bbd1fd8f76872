"""An entity's other names (aliases) are name keys linking finds: posted on the node itself, or given by the model."""

from __future__ import annotations

import time

import pytest

from infra.local.lambda_events import http_event
from infra.local.openai_server import Callback, Reply
from tests.handlers import invoke
from tests.integration import test_ingest_function as ingest
from tests.integration.test_documents import run_queue
from tests.integration.test_ingest_function import ACME, upload

pipeline, with_llm = ingest.pipeline, ingest.with_llm
QUESTION = "北風熱能的總部在哪裡？"


def call(function: str, method: str, path: str, body: dict | None = None) -> dict:
    response = invoke(function, http_event(method, path, body, api_key=ACME))
    assert response.status == 200, response.text
    return response.json()


def seeds(question: str) -> list[str]:
    return [seed["id"] for seed in call("retrieve", "POST", "/retrieve", {"query": question})["seeds"]]


@pytest.fixture
def graph(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")


def test_aliases_posted_on_the_node_itself_link_a_question_naming_one(graph):
    node = {"id": "c:nw", "type": "Company", "name": "Northwind Thermal", "aliases": ["北風熱能"]}
    call("extract", "POST", "/graph/upsert", {"data": {"nodes": [node], "edges": []}, "sources": ["nw#0"]})
    assert seeds(QUESTION) == ["c:nw"]


def test_aliases_posted_on_the_node_itself_resolve_a_later_node_with_that_name(graph):
    node = {"id": "c:nw", "type": "Company", "name": "Northwind Thermal", "aliases": "北風熱能"}
    call("extract", "POST", "/graph/upsert", {"data": {"nodes": [node], "edges": []}, "sources": ["nw#0"]})
    other = {"id": "c:zh", "type": "Company", "name": "北風熱能"}
    call("extract", "POST", "/graph/upsert", {"data": {"nodes": [other], "edges": []}, "sources": ["zh#0"]})
    rows = call("extract", "POST", "/graph/query", {"query": "MATCH (n) RETURN n.id AS id"})["records"]
    assert rows == [{"id": "c:nw"}]


# --- the extraction prompt asks for them ---------------------------------------------------


def aliasing_extractor(body: dict) -> Reply:
    """Gives the other-language name only when the prompt asks for aliases (as a model would)."""
    node = {"id": "company:northwind", "type": "Company", "name": "Northwind Thermal"}
    if "aliases" in body["messages"][0]["content"]:
        node["props"] = [{"key": "aliases", "value": ["北風熱能", "NWT"]}]
    return Reply({"nodes": [node], "edges": []})


def test_the_extraction_prompt_asks_for_one_canonical_name_and_its_aliases(pipeline, with_llm):
    upload(pipeline, "acme/a.md", ingest.EN_DOC)
    run_queue(pipeline)
    prompt = with_llm.requests_for("extractor")[0].body["messages"][0]["content"]
    assert "canonical" in prompt and '"key": "aliases"' in prompt


def test_aliases_the_model_gives_link_a_question_in_another_language(pipeline, with_llm):
    with_llm.set_default("extractor", Callback(aliasing_extractor))
    upload(pipeline, "acme/a.md", ingest.EN_DOC)
    run_queue(pipeline)
    assert seeds(QUESTION) == ["company:northwind"]
