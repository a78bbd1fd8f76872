"""Free Cypher is only open where tenants are isolated by structure, not by a result filter."""

from __future__ import annotations

import pytest

from infra.local.lambda_events import http_event
from tests.fixtures.environment import reconfigure
from tests.handlers import invoke

QUERY = {"query": "MATCH (n) WHERE n.tenant = $tenant RETURN count(n) AS n"}
# Nothing listens there: a query that reaches the store answers 503 at once.
UNREACHABLE_NEO4J = "bolt://127.0.0.1:1"


def query(api_key: str = "test-key-acme"):
    return invoke("extract", http_event("POST", "/graph/query", QUERY, api_key=api_key))


def test_a_shared_neo4j_database_with_several_tenants_refuses_free_cypher(monkeypatch):
    reconfigure(monkeypatch, NEO4J_URI=UNREACHABLE_NEO4J)  # the test keys name three tenants
    response = query()
    assert (response.status, response.json()["error"]) == (403, "forbidden")


def test_the_refusal_says_how_to_open_it(monkeypatch):
    reconfigure(monkeypatch, NEO4J_URI=UNREACHABLE_NEO4J)
    assert "NEO4J_DATABASE_PER_TENANT" in query().json()["message"]


@pytest.mark.parametrize(
    "variables",
    [
        {"NEO4J_DATABASE_PER_TENANT": "true"},  # a database per tenant: isolated
        {"API_KEYS": "only-key:acme"},  # one tenant: nothing to leak
    ],
)
def test_an_isolated_neo4j_deployment_lets_the_query_reach_the_store(monkeypatch, variables):
    reconfigure(monkeypatch, NEO4J_URI=UNREACHABLE_NEO4J, **variables)
    key = "only-key" if "API_KEYS" in variables else "test-key-acme"
    assert query(key).status == 503


def test_falkordb_keeps_a_graph_per_tenant_so_free_cypher_stays_open(monkeypatch):
    reconfigure(monkeypatch, FALKORDB_URL="redis://127.0.0.1:1")
    assert query().status == 503
