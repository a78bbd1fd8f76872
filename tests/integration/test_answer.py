"""POST /answer through the retrieve function's real handler, with the fake LLM server and real FalkorDB."""

from __future__ import annotations

import json
import re
import time

import pytest

from gateway_core.registry import registry
from infra.local.lambda_events import http_event
from infra.local.openai_server import Callback, Error, Hang, Reply
from tests.fixtures.environment import reconfigure
from tests.fixtures.llm_server import provider_env
from tests.handlers import invoke

ACME = "test-key-acme"

DOC_EN = {
    "handbook.md#0": "Northwind Thermal was founded in 2011 by Lin Xiaoming and Sara Holm in Taichung.",
    "handbook.md#1": "The company designs quiet heat pumps for apartments; its flagship model is the Breeze 5.",
    "handbook.md#2": "Quarterly revenue grew by twelve percent, mostly from exports to Sweden.",
}
DOC_ZH = {
    "手冊.md#0": "北風熱能公司的研發實驗室位於新竹，負責開發新一代靜音熱泵。",
    "手冊.md#1": "公司的員工餐廳每天中午十二點開放。",
}
GRAPH = {
    "nodes": [
        {"id": "company:northwind", "type": "Company", "name": "Northwind Thermal"},
        {"id": "person:lin-xiaoming", "type": "Person", "name": "Lin Xiaoming"},
    ],
    "edges": [{"src": "person:lin-xiaoming", "dst": "company:northwind", "type": "FOUNDED"}],
}
PASSAGE = re.compile(r"^\[(\d+)\] \(document: [^)]*\) (.*)$", re.MULTILINE)


def call(body: dict, key: str = ACME):
    return invoke("retrieve", http_event("POST", "/answer", body, api_key=key))


def index(chunks: dict[str, str]) -> None:
    body = {
        "chunks": [
            {"doc_id": chunk_id.split("#")[0], "chunk_id": chunk_id, "text": text, "source": f"s3://docs/{chunk_id}"}
            for chunk_id, text in chunks.items()
        ]
    }
    response = invoke("retrieve", http_event("POST", "/index/chunks", body, api_key=ACME))
    assert response.status == 200, response.text


def prompt_of(request) -> str:
    return request.body["messages"][-1]["content"]


def number_of(prompt: str, text: str) -> int:
    """The number the prompt gave the passage holding `text` (whatever the ranking)."""
    return next(int(n) for n, passage in PASSAGE.findall(prompt) if text in passage)


@pytest.fixture
def llm(fake_llm, monkeypatch):
    reconfigure(monkeypatch, LLM_PROVIDERS=provider_env(fake_llm, "alpha"), LLM_MAX_RETRIES="0")
    return fake_llm


@pytest.fixture
def with_graph(falkordb_server, monkeypatch):
    reconfigure(monkeypatch, FALKORDB_URL=falkordb_server.url, GRAPH_NAME=f"kg{time.monotonic_ns()}")
    response = invoke(
        "extract", http_event("POST", "/graph/upsert", {"data": GRAPH, "sources": ["handbook.md#0"]}, api_key=ACME)
    )
    assert response.status == 200, response.text


def test_passages_and_graph_facts_reach_the_prompt(llm, with_graph):
    index(DOC_EN)
    llm.script("alpha", Reply("Lin Xiaoming founded it [1]."))
    response = call({"query": "Who founded Northwind Thermal?"})
    assert response.status == 200, response.text
    prompt = prompt_of(llm.requests_for("alpha")[0])
    founding = number_of(prompt, "founded in 2011")
    assert f"- Lin Xiaoming FOUNDED Northwind Thermal [{founding}]" in prompt
    assert "Question: Who founded Northwind Thermal?" in prompt


def test_cited_numbers_map_to_the_chunks_they_numbered(llm):
    index(DOC_EN)

    def cite_founding_and_revenue(body: dict) -> Reply:
        prompt = body["messages"][-1]["content"]
        founded, revenue = number_of(prompt, "founded in 2011"), number_of(prompt, "revenue grew")
        return Reply(f"Founded in 2011 [{founded}]; revenue grew 12% [{revenue}, {founded}].")

    llm.script("alpha", Callback(cite_founding_and_revenue))
    body = call({"query": "When was Northwind founded and how did revenue grow?", "top_k": 3}).json()
    assert [c["chunk_id"] for c in body["citations"]] == ["handbook.md#0", "handbook.md#2"]
    assert body["citations"][0]["doc_id"] == "handbook.md" and body["provider"] == "alpha"


def test_a_citation_names_where_its_document_came_from(llm):
    index(DOC_EN)
    llm.script("alpha", Reply("Founded in 2011 [1]."))
    body = call({"query": "When was Northwind founded?", "top_k": 1}).json()
    assert body["citations"][0]["source"] == f"s3://docs/{body['citations'][0]['chunk_id']}"


def test_a_cited_number_not_in_the_context_is_dropped(llm):
    index(DOC_EN)
    llm.script("alpha", Reply("In 2011 [1], in Taichung [7][2]."))
    body = call({"query": "When and where was Northwind founded?", "top_k": 2}).json()
    assert [c["n"] for c in body["citations"]] == [1, 2]


def test_empty_retrieval_answers_without_calling_the_llm(llm):
    body = call({"query": "Who founded Northwind Thermal?"}).json()
    assert body["citations"] == [] and "nothing relevant" in body["answer"] and llm.requests == []


def test_llm_errors_degrade_to_the_passages_with_a_200(llm):
    index(DOC_EN)
    llm.set_default("alpha", Error(500))
    response = call({"query": "Who founded Northwind Thermal?"})
    body = response.json()
    assert response.status == 200 and body["degraded"][-1].startswith("llm: Provider 'alpha' answered HTTP 500")
    assert "founded in 2011" in body["answer"] and len(body["citations"]) == len(body["hits"]) > 0


def test_a_hanging_llm_degrades_before_the_request_deadline(llm, monkeypatch):
    reconfigure(monkeypatch, REQUEST_TIMEOUT_S="4")
    index(DOC_EN)
    llm.set_default("alpha", Hang(30))
    started = time.monotonic()
    response = call({"query": "Who founded Northwind Thermal?"})
    assert response.status == 200 and "llm:" in response.json()["degraded"][-1] and time.monotonic() - started < 4


def test_no_llm_configured_answers_with_the_passages():
    index(DOC_EN)
    body = call({"query": "Who founded Northwind Thermal?"}).json()
    assert body["degraded"][-1].startswith("llm: No LLM provider is configured") and "[1]" in body["answer"]


def test_a_chinese_question_gets_a_chinese_grounded_answer(llm):
    index(DOC_EN)
    index(DOC_ZH)

    def answer_in_chinese(body: dict) -> Reply:
        lab = number_of(body["messages"][-1]["content"], "研發實驗室")
        return Reply(f"研發實驗室位於新竹[{lab}]。")

    llm.script("alpha", Callback(answer_in_chinese))
    body = call({"query": "北風熱能的研發實驗室在哪裡？"}).json()
    assert "新竹" in body["answer"] and [c["chunk_id"] for c in body["citations"]] == ["手冊.md#0"]


def test_a_follow_up_is_rewritten_before_retrieval(llm):
    index(DOC_EN)
    llm.script("alpha", Reply("Who founded Northwind Thermal?"), Reply("Lin Xiaoming and Sara Holm [1]."))
    history = [
        {"role": "user", "content": "What does Northwind Thermal make?"},
        {"role": "assistant", "content": "Quiet heat pumps [1]."},
    ]
    body = call({"query": "Who founded it?", "history": history}).json()
    rewrite, generation = llm.requests_for("alpha")
    assert "Last question: Who founded it?" in prompt_of(rewrite)
    assert body["question"] == "Who founded Northwind Thermal?"
    assert "Question: Who founded Northwind Thermal?" in prompt_of(generation)


def test_a_follow_up_still_retrieves_when_the_llm_is_down(llm):
    index(DOC_EN)
    llm.set_default("alpha", Error(503))
    history = [{"role": "user", "content": "Tell me about Northwind Thermal's founders."}]
    response = call({"query": "When was that?", "history": history})
    body = response.json()
    assert response.status == 200 and body["degraded"][0].startswith("rewrite: ") and body["hits"]


def test_an_unknown_model_is_the_callers_error(llm):
    index(DOC_EN)
    response = call({"query": "Who founded Northwind Thermal?", "model": "no-such-model"})
    assert response.status == 400 and response.json()["error"] == "unknown_model"


def test_stream_through_the_buffered_handler_still_ends_with_done(llm):
    index(DOC_EN)
    llm.script("alpha", Reply("Founded in 2011 [1]."))
    response = call({"query": "When was Northwind founded?", "stream": True})
    events = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert response.headers["content-type"].startswith("text/event-stream") and '"done": true' in events[-1]


def test_the_chat_function_creates_the_stores_only_when_the_rag_model_is_asked(llm):
    llm.script("alpha", Reply("plain"))
    messages = [{"role": "user", "content": "Who founded Northwind Thermal?"}]
    plain = invoke(
        "chat", http_event("POST", "/v1/chat/completions", {"model": "alpha", "messages": messages}, api_key=ACME)
    )
    assert plain.status == 200 and registry.peek("vector_store") is None
    rag = invoke(
        "chat", http_event("POST", "/v1/chat/completions", {"model": "graphrag", "messages": messages}, api_key=ACME)
    )
    assert rag.status == 200 and registry.peek("vector_store") is not None


def sse_events(text: str) -> list[dict]:
    return [json.loads(line.removeprefix("data: ")) for line in text.splitlines() if line.startswith("data: ")]


def test_a_stream_falls_back_to_the_next_provider_before_its_first_word(fake_llm, monkeypatch):
    reconfigure(monkeypatch, LLM_PROVIDERS=provider_env(fake_llm, "alpha", "beta"), LLM_MAX_RETRIES="0")
    index(DOC_EN)
    fake_llm.script("alpha", Error(500))
    fake_llm.script("beta", Reply("Founded in 2011 [1]."))
    events = sse_events(call({"query": "When was Northwind founded?", "stream": True}).text)
    assert "".join(e.get("delta", "") for e in events) == "Founded in 2011 [1]." and events[-1]["provider"] == "beta"


def test_a_stream_whose_llm_fails_ends_with_the_passages_and_degraded(llm):
    index(DOC_EN)
    llm.set_default("alpha", Error(500))
    events = sse_events(call({"query": "Who founded Northwind Thermal?", "stream": True}).text)
    assert "founded in 2011" in events[0]["delta"] and events[-1]["degraded"][-1].startswith("llm: Provider 'alpha'")


def test_the_streams_last_event_carries_the_graph_facts_retrieved(llm, with_graph):
    index(DOC_EN)
    llm.script("alpha", Reply("Lin Xiaoming founded it [1]."))
    done = sse_events(call({"query": "Who founded Northwind Thermal?", "stream": True}).text)[-1]
    assert done["done"] is True
    edges = [(e["src"], e["type"], e["dst"], e["props"]["sources"]) for e in done["subgraph"]["edges"]]
    assert ("person:lin-xiaoming", "FOUNDED", "company:northwind", ["handbook.md#0"]) in edges
    names = {node["id"]: node["props"]["name"] for node in done["subgraph"]["nodes"]}
    assert names["person:lin-xiaoming"] == "Lin Xiaoming"
