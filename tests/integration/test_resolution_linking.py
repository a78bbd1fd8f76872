"""Dense linking (DENSE_LINKING=true) through the entity name index writes fill: a translation no alias names links."""

from __future__ import annotations

import time

import pytest

from infra.local.lambda_events import http_event
from tests.fixtures.environment import reconfigure
from tests.handlers import invoke

ACME = "test-key-acme"
PASSAGE = "Northwind Thermal builds heat pumps; its headquarters are in Taichung."


def call(function: str, path: str, body: dict) -> dict:
    response = invoke(function, http_event("POST", path, body, api_key=ACME))
    assert response.status == 200, response.text
    return response.json()


@pytest.fixture
def northwind(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")
    monkeypatch.setenv("DENSE_LINKING", "true")
    call("retrieve", "/index/chunks", {"chunks": [{"doc_id": "nw", "chunk_id": "nw#0", "text": PASSAGE}]})
    nodes = [
        {"id": "nw", "type": "Company", "name": "Northwind Thermal"},
        {"id": "taichung", "type": "Place", "name": "Taichung"},
    ]
    edges = [{"src": "nw", "dst": "taichung", "type": "HEADQUARTERED_IN"}]
    call("extract", "/graph/upsert", {"data": {"nodes": nodes, "edges": edges}, "sources": ["nw#0"]})


def test_a_translated_name_without_an_alias_links_through_the_name_index(northwind):
    seeds = call("retrieve", "/retrieve", {"query": "北風熱能的總部在哪裡？"})["seeds"]
    assert [(seed["id"], seed["key"]) for seed in seeds] == [("nw", "北風熱能")]


def test_a_dense_seed_counts_less_than_a_name_written_out(northwind):
    dense = call("retrieve", "/retrieve", {"query": "北風熱能的總部在哪裡？"})["seeds"][0]["score"]
    exact = call("retrieve", "/retrieve", {"query": "Where is Northwind Thermal based?"})["seeds"][0]["score"]
    assert dense < exact


def test_a_question_naming_nothing_stored_links_nothing(northwind):
    assert call("retrieve", "/retrieve", {"query": "How many people lived there at the last count?"})["seeds"] == []


def test_dense_linking_is_off_by_default(northwind, monkeypatch):
    monkeypatch.delenv("DENSE_LINKING")
    reconfigure(monkeypatch)
    assert call("retrieve", "/retrieve", {"query": "北風熱能的總部在哪裡？"})["seeds"] == []
