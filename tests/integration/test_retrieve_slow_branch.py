"""A slow branch of /retrieve is cut at its budget and reported; the other branches still answer."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.integration.test_retrieve_function import DOC_EN, call, index, upsert_graph


@pytest.fixture
def frozen_graph(dedicated_falkordb, monkeypatch):
    """A graph that held the facts, then froze (SIGSTOP): connections open, no answer ever comes."""
    monkeypatch.setenv("FALKORDB_URL", dedicated_falkordb.url)
    index("northwind.md", DOC_EN)
    upsert_graph()
    os.kill(dedicated_falkordb.pid, signal.SIGSTOP)
    yield
    os.kill(dedicated_falkordb.pid, signal.SIGCONT)


def ask(timeout_s: float = 3.0):
    started = time.monotonic()
    response = call("POST", "/retrieve", {"query": "Who founded Northwind Thermal?"}, timeout_s=timeout_s)
    return response, time.monotonic() - started


def test_a_frozen_graph_still_gets_the_vector_hits(frozen_graph):
    response, _ = ask()
    assert (response.status, response.json()["hits"][0]["citations"][0]["doc_id"]) == (200, "northwind.md")


def test_a_frozen_graph_is_reported_as_degraded(frozen_graph):
    response, _ = ask()
    assert [item.split(":")[0] for item in response.json()["degraded"]] == ["graph"]


def test_a_frozen_graph_costs_no_more_than_the_budget(frozen_graph):
    _, elapsed = ask(timeout_s=3.0)  # 3 s left in the Lambda, 0.5 s margin: the answer comes before 2.5 s
    assert elapsed < 2.5
