"""The console's graph calls over HTTP: linking like /retrieve, neighbourhood with passages, tenant scope, errors."""

from __future__ import annotations

import time

import httpx
import pytest

from infra.local.api_server import BackgroundServer, build_app
from tests.integration.test_console_browser import DOCUMENTS, FOUNDING, KEY, PRODUCTS

OTHER_TENANT_KEY = "test-key-globex"


@pytest.fixture
def gateway(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"consoleapi{time.monotonic_ns()}")
    with BackgroundServer(build_app()) as server:
        for document in DOCUMENTS:
            response = httpx.post(f"{server.url}/documents", json=document, headers={"x-api-key": KEY}, timeout=60)
            assert response.status_code == 200, response.text
        yield server


def get(server, path, params, key=KEY):
    return httpx.get(f"{server.url}{path}", params=params, headers={"x-api-key": key}, timeout=30)


def test_entities_are_linked_like_a_question_by_name_or_alias(gateway):
    for text in ("Northwind Thermal", "北風熱能", "who founded Northwind Thermal?"):
        entities = get(gateway, "/graph/entities", {"q": text}).json()["entities"]
        assert entities[0]["id"] == "c:nw" and entities[0]["type"] == "Company", text
    assert get(gateway, "/graph/entities", {"q": "nothing named here"}).json()["entities"] == []


def test_the_neighbourhood_has_the_facts_and_the_passages_they_came_from(gateway):
    one = get(gateway, "/graph/neighbourhood", {"id": "p:sara", "hops": 1}).json()
    assert {node["id"] for node in one["nodes"]} == {"p:sara", "c:nw"}
    two = get(gateway, "/graph/neighbourhood", {"id": "p:sara", "hops": 2}).json()
    assert {"x:breeze", "l:tc", "p:lin"} <= {node["id"] for node in two["nodes"]}
    makes = next(edge for edge in two["edges"] if edge["type"] == "MAKES")
    [source] = makes["props"]["sources"]
    assert two["passages"][source]["text"] == PRODUCTS and two["passages"][source]["doc_id"] == "products.md"
    assert any(passage["text"] == FOUNDING for passage in two["passages"].values())
    assert two["degraded"] == []


def test_another_tenant_sees_none_of_it(gateway):
    assert get(gateway, "/graph/entities", {"q": "Northwind Thermal"}, OTHER_TENANT_KEY).json()["entities"] == []
    assert get(gateway, "/graph/neighbourhood", {"id": "c:nw"}, OTHER_TENANT_KEY).status_code == 404


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/graph/neighbourhood", {"id": "no-such-entity"}, 404),
        ("/graph/neighbourhood", {"id": "c:nw", "hops": 3}, 422),
        ("/graph/entities", {"q": ""}, 422),
    ],
)
def test_bad_requests_say_what_is_wrong(gateway, path, params, status):
    response = get(gateway, path, params)
    assert response.status_code == status and response.json()["message"]


def test_an_id_a_merge_absorbed_opens_the_survivor(gateway):
    duplicate = {"id": "company:northwind-thermal", "type": "Company", "name": "Northwind Thermal"}
    upsert = httpx.post(
        f"{gateway.url}/graph/upsert",
        json={"data": {"nodes": [duplicate], "edges": []}, "sources": ["handbook.md#0"]},
        headers={"x-api-key": KEY},
        timeout=30,
    )
    assert upsert.status_code == 200, upsert.text
    response = get(gateway, "/graph/neighbourhood", {"id": "company:northwind-thermal", "hops": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["center"], body["requested"]) == ("c:nw", "company:northwind-thermal")
    assert {"p:lin", "x:breeze"} <= {node["id"] for node in body["nodes"]}
