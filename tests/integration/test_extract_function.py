"""The extract function through its real handler: racing providers, upsert, safe queries."""

from __future__ import annotations

import time

import pytest

from infra.local.lambda_events import http_event
from infra.local.openai_server import Error, Hang, InvalidJson, Reply
from tests.fixtures.llm_server import provider_env
from tests.handlers import invoke

ACME = "test-key-acme"
TEXT = "Lin Xiaoming founded Northwind Thermal in Taichung in 2011."
VALID = {
    "nodes": [
        {"id": "person:lin", "type": "Person", "name": "Lin Xiaoming"},
        {"id": "company:northwind", "type": "Company", "name": "Northwind Thermal"},
    ],
    "edges": [{"src": "person:lin", "dst": "company:northwind", "type": "FOUNDED"}],
}
ZH_TEXT = "林小明於二〇一一年在台中創立了北風熱能公司。"
ZH_GRAPH = {
    "nodes": [
        {"id": "person:lin", "type": "人物", "name": "林小明"},
        {"id": "company:bf", "type": "公司", "name": "北風熱能"},
        {"id": "place:taichung", "type": "地點", "name": "台中"},
    ],
    "edges": [
        {"src": "person:lin", "dst": "company:bf", "type": "創立"},
        {"src": "company:bf", "dst": "place:taichung", "type": "位於"},
    ],
}


def graph_call(path: str, body: object, key: str = ACME, **kwargs: object):
    return invoke("extract", http_event("POST", f"/graph/{path}", body, api_key=key), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def three_providers(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "A", "B", "C"))
    monkeypatch.setenv("LLM_MAX_RETRIES", "1")
    return fake_llm


@pytest.fixture
def with_graph(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")


def script_the_race(fake):
    # A is rate limited, and its retry (after the openai client's backoff, at most 0.5 s) hangs; C answers
    # well after that retry started, long before A's and B's 2 s.
    fake.script("A", Error(429, retry_after=0.0), Hang(2.0))
    fake.script("B", InvalidJson("{nodes: oops", latency=2.0))
    fake.script("C", Reply(VALID, latency=0.8))


def test_race_returns_the_first_valid_graph_and_cancels_the_others(three_providers):
    for name in ("A", "B", "C"):  # warm-up: imports and every provider's client, as in a warm Lambda
        three_providers.script(name, Reply(VALID))
        assert graph_call("extract", {"context": TEXT, "provider_chain": [name]}).status == 200
    three_providers.reset()
    script_the_race(three_providers)
    started = time.monotonic()
    response = graph_call("extract", {"context": TEXT, "strategy": "race"})
    elapsed = time.monotonic() - started
    assert response.status == 200, response.text
    body = response.json()
    assert body["provider"] == "C" and body["data"]["edges"][0]["type"] == "FOUNDED"
    assert 0.8 <= elapsed < 1.5  # C's latency, not the 2 s of the others
    assert body["schema_hash"].startswith("sha256:")
    assert {a["provider"]: a["outcome"] for a in body["attempts"]} == {"A": "cancelled", "B": "cancelled", "C": "ok"}
    three_providers.wait_for(
        lambda: all(any(r.disconnected for r in three_providers.requests_for(name)) for name in ("A", "B"))
    )


def test_sequential_tries_the_providers_in_order(three_providers):
    three_providers.script("A", Error(500), Error(500))
    three_providers.script("B", InvalidJson("not json"))
    three_providers.script("C", Reply(VALID))
    body = graph_call("extract", {"context": TEXT, "strategy": "sequential", "repair_if_invalid": False}).json()
    assert body["provider"] == "C"
    assert [(a["provider"], a["outcome"]) for a in body["attempts"]] == [("A", "error"), ("B", "error"), ("C", "ok")]
    a_end = max(r.ended_at for r in three_providers.requests_for("A"))
    assert three_providers.requests_for("B")[0].started_at >= a_end - 0.01


def test_hedge_starts_the_next_provider_only_after_the_delay(three_providers, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(three_providers, "A", "B"))
    # Warm both clients first: a cold client's first use (imports, TLS context) would delay A's request.
    graph_call("extract", {"context": TEXT, "strategy": "race"})
    three_providers.reset()
    three_providers.script("A", Reply(VALID, latency=1.0))
    three_providers.script("B", Reply(VALID, latency=0.1))
    body = graph_call("extract", {"context": TEXT, "strategy": "hedge", "hedge_delay_s": 0.3}).json()
    assert body["provider"] == "B"
    gap = three_providers.requests_for("B")[0].started_at - three_providers.requests_for("A")[0].started_at
    assert 0.28 <= gap < 0.5


def test_all_providers_failing_is_422_with_each_reason(three_providers):
    three_providers.script("A", Error(400, message="bad model"))
    three_providers.script("B", InvalidJson("nope"), InvalidJson("still nope"))
    three_providers.script("C", Reply({"nodes": [], "edges": []}))
    response = graph_call("extract", {"context": TEXT, "strategy": "race"})
    assert response.status == 422, response.text
    reasons = response.json()["details"]["providers"]
    assert set(reasons) == {"A", "B", "C"}
    assert "400" in reasons["A"] and "JSON" in reasons["B"] and "0 nodes" in reasons["C"]


def test_repair_fixes_malformed_json_with_one_call(three_providers, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(three_providers, "A"))
    three_providers.script("A", InvalidJson("{'nodes': [}"), Reply(VALID))
    body = graph_call("extract", {"context": TEXT}).json()
    assert body["provider"] == "A" and len(body["data"]["nodes"]) == 2
    assert len(three_providers.requests_for("A")) == 2


def test_strict_prunes_invalid_items_and_dangling_edges(three_providers, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(three_providers, "A"))
    messy = {
        "entities": [
            {"id": "a", "type": "Person", "name": "A"},
            {"id": "b", "type": "bad type!", "name": "B"},
            {"name": "Northwind", "type": "Company", "properties": {"founded": 2011}},
        ],
        "relations": [
            {"source": "a", "target": "company:northwind", "type": "FOUNDED"},
            {"src": "a", "dst": "ghost", "type": "KNOWS"},
        ],
    }
    three_providers.script("A", Reply(messy))
    data = graph_call("extract", {"context": TEXT, "strict": True}).json()["data"]
    assert {n["id"] for n in data["nodes"]} == {"a", "company:northwind"}
    assert [(e["src"], e["dst"]) for e in data["edges"]] == [("a", "company:northwind")]
    assert data["nodes"][1]["props"] == [{"key": "founded", "value": 2011}]


def test_extract_respects_the_request_deadline(three_providers, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(three_providers, "A"))
    # The only provider hangs far beyond the 1.0 s budget (1.5 s Lambda time minus the 0.5 s margin), so it can
    # neither answer nor fail before the deadline: the request ran out of time, which is a 504, never a 422
    # ("no acceptable graph" is for providers that answered, or failed, within the budget).
    three_providers.script("A", Hang(10))
    started = time.monotonic()
    response = graph_call("extract", {"context": TEXT, "max_attempts": 1}, timeout_s=1.5)
    assert time.monotonic() - started < 1.45
    assert response.status == 504, response.text
    assert response.json()["error"] == "deadline_exceeded"


def test_extract_without_llm_is_503():
    response = graph_call("extract", {"context": TEXT})
    assert response.status == 503 and "LLM_PROVIDERS" in response.json()["message"]


# --- upsert and query ---------------------------------------------------------------------------------


def test_upsert_is_idempotent_and_query_reads_it_back(with_graph):
    first = graph_call("upsert", {"data": VALID, "sources": ["doc#0"]}).json()
    second = graph_call("upsert", {"data": VALID, "sources": ["doc#0"]}).json()
    assert (first["nodes"], first["edges"]) == (second["nodes"], second["edges"]) == (2, 1)
    records = graph_call(
        "query", {"query": "MATCH (n:Entity) RETURN n.id AS id, n.sources AS sources ORDER BY id"}
    ).json()["records"]
    assert records == [{"id": "company:northwind", "sources": ["doc#0"]}, {"id": "person:lin", "sources": ["doc#0"]}]


def test_an_edge_to_a_node_outside_the_batch_merges_that_node(with_graph):
    edge_only = {"nodes": [], "edges": [{"src": "x:1", "dst": "x:2", "type": "LINKS"}]}
    assert graph_call("upsert", {"data": edge_only}).status == 200
    records = graph_call("query", {"query": "MATCH (a)-[r:LINKS]->(b) RETURN a.id AS a, b.id AS b"}).json()
    assert records["records"] == [{"a": "x:1", "b": "x:2"}]


@pytest.mark.parametrize(
    "bad",
    [
        {"nodes": [{"id": "n", "type": "Person`) DETACH DELETE n //", "name": "x"}], "edges": []},
        {"nodes": [{"id": "n", "type": "Per.son", "name": "x"}], "edges": []},
        {"nodes": [{"id": "n", "type": "1Person", "name": "x"}], "edges": []},
        {"nodes": [], "edges": [{"src": "a", "dst": "b", "type": "KNOWS]->(x) DELETE x //"}]},
        {"nodes": [], "edges": [{"src": "a", "dst": "b", "type": "KN:OWS"}]},
        {
            "nodes": [{"id": "n", "type": "Person", "props": [{"key": "a`}) SET n.pwned = 1 //", "value": 1}]}],
            "edges": [],
        },
        {"nodes": [{"id": "n", "type": "Person", "props": [{"key": "tenant", "value": "globex"}]}], "edges": []},
    ],
)
def test_injection_through_labels_types_and_keys_is_422(bad, with_graph):
    response = graph_call("upsert", {"data": bad})
    assert response.status == 422, response.text
    count = graph_call("query", {"query": "MATCH (n) RETURN count(n) AS n"}).json()["records"]
    assert count == [{"n": 0}]


@pytest.mark.parametrize(
    "query",
    [
        "CREATE (n:Entity {id: 'x'})",
        "MATCH (n) DETACH DELETE n",
        "match (n) set n.name = 'x' return n",
        "MATCH (n) REMOVE n.name RETURN n",
        "MERGE (n:Entity {id: 'x'}) RETURN n",
        "MATCH (n) /* harmless? */ DELETE n",
        "CALL db.idx.fulltext.createNodeIndex('Entity', 'name')",
        "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
        "DROP INDEX ON :Entity(id)",
    ],
)
def test_write_queries_are_refused_before_the_database(query, with_graph):
    response = graph_call("query", {"query": query})
    assert response.status == 400, response.text
    assert response.json()["error"] == "bad_request"


def test_query_results_stay_in_the_callers_tenant(with_graph):
    graph_call("upsert", {"data": VALID})
    records = graph_call("query", {"query": "MATCH (n) RETURN count(n) AS n"}, key="test-key-globex").json()
    assert records["records"] == [{"n": 0}]


def test_tenant_cannot_be_passed_as_a_parameter(with_graph):
    response = graph_call(
        "query",
        {"query": "MATCH (n) WHERE n.tenant = $tenant RETURN n", "params": {"tenant": "acme"}},
        key="test-key-globex",
    )
    assert response.status == 400


def test_upsert_without_a_graph_store_is_503():
    response = graph_call("upsert", {"data": VALID})
    assert response.status == 503 and "FALKORDB_URL" in response.json()["message"]


# --- Chinese end to end, probe ------------------------------------------------------------------------------


def test_chinese_text_extracts_upserts_and_is_found_by_retrieve(three_providers, with_graph, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(three_providers, "A"))
    three_providers.script("A", Reply(ZH_GRAPH))
    extracted = graph_call("extract", {"context": ZH_TEXT}).json()
    assert {n["name"] for n in extracted["data"]["nodes"]} == {"林小明", "北風熱能", "台中"}
    assert graph_call("upsert", {"data": extracted["data"], "sources": ["zh.md#0"]}).status == 200
    chunks = [{"doc_id": "zh.md", "text": ZH_TEXT, "entity_ids": ["person:lin", "company:bf"]}]
    assert invoke("retrieve", http_event("POST", "/index/chunks", {"chunks": chunks}, api_key=ACME)).status == 200
    body = invoke(
        "retrieve", http_event("POST", "/retrieve", {"query": "北風熱能是誰創立的？", "max_hops": 2}, api_key=ACME)
    ).json()
    assert "林小明" in body["hits"][0]["text"]
    assert ("person:lin", "創立", "company:bf") in {(e["src"], e["type"], e["dst"]) for e in body["subgraph"]["edges"]}


def test_probe_reports_json_and_text_modes(three_providers):
    three_providers.script("A", Reply({"ok": True}), Reply("plain words"), InvalidJson("nope"))
    json_probe = graph_call("probe", {"model": "A"}).json()
    assert json_probe["ok"] and json_probe["mode"] == "json" and json_probe["data"] == {"ok": True}
    text_probe = graph_call("probe", {"model": "A", "strict_json": False}).json()
    assert text_probe["text"] == "plain words" and text_probe["latency_ms"] >= 0
    failed = graph_call("probe", {"model": "A"}).json()
    assert failed["ok"] is False and failed["error"]["error"] == "invalid_json"
