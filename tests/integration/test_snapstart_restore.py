"""SnapStart against a real FalkorDB server: the before-snapshot hook closes the graph connections (the server
sees them go), and after the restore the next request reconnects and answers 200."""

from __future__ import annotations

import sys
import time
import types

import pytest
import redis

from gateway_core import snapstart
from gateway_core.registry import registry
from infra.local.lambda_events import http_event
from tests.handlers import invoke, load_function

QUERY = {"query": "MATCH (n) WHERE n.tenant = $tenant RETURN count(n) AS n"}


def gateway_connections(url: str) -> int:
    """Client connections the server has, other than the one asking."""
    with redis.Redis.from_url(url) as admin:
        own = admin.client_id()
        return sum(1 for client in admin.client_list() if int(client["id"]) != own)


def wait_for(predicate, timeout_s: float = 5.0) -> bool:
    ends = time.monotonic() + timeout_s
    while time.monotonic() < ends:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def lambda_hooks(monkeypatch):
    """The hooks as Lambda's runtime runs them: registered by install(), run before the snapshot in reverse
    order of registration and after the restore in order (snapshot_restore_py's documented contract)."""
    module = types.ModuleType("snapshot_restore_py")
    before: list = []
    after: list = []
    module.register_before_snapshot = lambda func, *a, **k: before.append((func, a, k)) or func
    module.register_after_restore = lambda func, *a, **k: after.append((func, a, k)) or func
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", module)
    monkeypatch.setattr(snapstart, "_installed", False)
    assert snapstart.install()

    def snapshot() -> None:
        for func, args, kwargs in reversed(before):
            func(*args, **kwargs)

    def restore() -> None:
        for func, args, kwargs in after:
            func(*args, **kwargs)

    return snapshot, restore


def test_the_snapshot_keeps_no_connection_and_the_restored_sandbox_reconnects(
    dedicated_falkordb, monkeypatch, lambda_hooks
):
    snapshot, restore = lambda_hooks
    monkeypatch.setenv("FALKORDB_URL", dedicated_falkordb.url)
    load_function("extract")
    event = http_event("POST", "/graph/query", QUERY, api_key="test-key-acme")
    assert invoke("extract", event).status == 200  # e.g. a warm-up request during init
    assert gateway_connections(dedicated_falkordb.url) >= 1

    snapshot()
    assert wait_for(lambda: gateway_connections(dedicated_falkordb.url) == 0)  # the server saw them go
    assert registry.names() == []

    sandbox = snapstart.sandbox_id
    restore()
    assert snapstart.sandbox_id != sandbox
    assert invoke("extract", event).status == 200
    assert gateway_connections(dedicated_falkordb.url) >= 1 and registry.created["graph_store"] == 2


def test_a_restored_sandbox_answers_retrieve_with_both_stores(falkordb_server, monkeypatch, lambda_hooks):
    snapshot, restore = lambda_hooks
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    body = {"query": "Who founded Northwind Thermal?", "max_hops": 2}
    first = invoke("retrieve", http_event("POST", "/retrieve", body, api_key="test-key-acme"))
    assert (first.status, first.json()["degraded"]) == (200, [])
    snapshot()
    restore()
    again = invoke("retrieve", http_event("POST", "/retrieve", body, api_key="test-key-acme"))
    assert (again.status, again.json()["degraded"]) == (200, [])
