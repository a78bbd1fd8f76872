"""A cold start against a frozen graph server answers within the budget (the connect never blocks the loop)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from infra.local.lambda_events import http_event
from tests.handlers import invoke, load_function

QUERY = {"query": "MATCH (n) WHERE n.tenant = $tenant RETURN count(n) AS n"}


@pytest.fixture
def frozen_at_cold_start(dedicated_falkordb, monkeypatch):
    """The first request of a new environment meets a server that accepts connections and never answers."""
    monkeypatch.setenv("FALKORDB_URL", dedicated_falkordb.url)
    os.kill(dedicated_falkordb.pid, signal.SIGSTOP)
    yield
    os.kill(dedicated_falkordb.pid, signal.SIGCONT)


def test_graph_query_against_a_frozen_server_answers_504_in_time(frozen_at_cold_start):
    load_function("extract")  # the import is Lambda's INIT, not the invocation's time
    started = time.monotonic()
    response = invoke("extract", http_event("POST", "/graph/query", QUERY, api_key="test-key-acme"), timeout_s=3.0)
    # 3 s left in the Lambda minus the 0.5 s margin: the 504 comes at 2.5 s, before Lambda's own kill.
    assert (response.status, time.monotonic() - started < 2.8) == (504, True)


def test_retrieve_against_a_frozen_server_answers_with_the_vector_branch(frozen_at_cold_start):
    body = {"query": "Who founded Northwind Thermal?"}
    response = invoke("retrieve", http_event("POST", "/retrieve", body, api_key="test-key-acme"), timeout_s=3.0)
    assert (response.status, [d.split(":")[0] for d in response.json()["degraded"]]) == (200, ["graph"])
