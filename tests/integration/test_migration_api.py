"""The predecessor's documented calls that need no graph: /version without a key, its model names
(`rag-answer`, `graph-extractor`) in /chat, /graph/probe, provider_chain and through the official openai client."""

from __future__ import annotations

import pytest
from openai import OpenAI

from infra.local.api_server import BackgroundServer, build_app
from infra.local.lambda_events import http_event
from infra.local.openai_server import Reply
from tests.fixtures.llm_server import provider_env
from tests.handlers import invoke

ACME = "test-key-acme"
USER = [{"role": "user", "content": "Hello?"}]
GRAPH = {"nodes": [{"id": "person:ann", "type": "Person", "props": [{"key": "name", "value": "Ann Lee"}]}]}


@pytest.fixture
def two_providers(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha", "beta"))
    return fake_llm


def post(function: str, path: str, body: object):
    return invoke(function, http_event("POST", path, body, api_key=ACME))


# --- /version ---------------------------------------------------------------------------------------


def test_version_answers_without_a_key():
    assert invoke("chat", http_event("GET", "/version", api_key=None)).status == 200


def test_version_says_the_version_and_nothing_about_the_deployment():
    body = invoke("chat", http_event("GET", "/version", api_key=None)).json()
    assert set(body) == {"ok", "version"}


# --- built-in aliases ---------------------------------------------------------------------------------


def test_chat_with_rag_answer_uses_the_first_provider(two_providers):
    two_providers.script("alpha", Reply("from alpha"))
    response = post("chat", "/chat", {"messages": USER, "model": "rag-answer"})
    assert response.json()["meta"]["provider"] == "alpha"


def test_rag_answer_falls_back_through_every_provider_in_order(two_providers):
    from infra.local.openai_server import Error

    two_providers.script("alpha", Error(400, message="down"))
    two_providers.script("beta", Reply("from beta"))
    response = post("chat", "/chat", {"messages": USER, "model": "rag-answer", "strategy": "sequential"})
    assert response.json()["meta"]["provider"] == "beta"


def test_probe_accepts_graph_extractor(two_providers):
    two_providers.script("alpha", Reply({"ok": True}))
    assert post("extract", "/graph/probe", {"model": "graph-extractor"}).json()["ok"] is True


def test_provider_chain_accepts_graph_extractor(two_providers):
    two_providers.script("alpha", Reply(GRAPH))
    two_providers.script("beta", Reply(GRAPH))
    body = {"context": "Ann Lee is a person.", "provider_chain": ["graph-extractor"], "strategy": "sequential"}
    assert post("extract", "/graph/extract", body).json()["provider"] == "alpha"


def test_model_aliases_override_a_built_in_alias(two_providers, monkeypatch):
    monkeypatch.setenv("MODEL_ALIASES", '{"rag-answer": ["beta"]}')
    two_providers.script("beta", Reply("from beta"))
    response = post("chat", "/chat", {"messages": USER, "model": "rag-answer"})
    assert response.json()["meta"]["provider"] == "beta"


def test_an_unknown_model_still_answers_400_naming_the_built_in_aliases(two_providers):
    response = post("chat", "/chat", {"messages": USER, "model": "no-such-model"})
    assert (response.status, "graph-extractor" in response.json()["message"]) == (400, True)


# --- the official openai client -------------------------------------------------------------------------


@pytest.fixture
def client(two_providers):
    with BackgroundServer(build_app()) as server:
        yield OpenAI(base_url=server.url + "/v1", api_key=ACME, max_retries=0)


def test_models_list_the_built_in_aliases(client):
    assert {"rag-answer", "graph-extractor"} <= {model.id for model in client.models.list()}


def test_the_openai_client_chats_with_rag_answer(client, two_providers):
    two_providers.script("alpha", Reply("Hello from rag-answer."))
    completion = client.chat.completions.create(model="rag-answer", messages=USER)
    assert completion.choices[0].message.content == "Hello from rag-answer."


def test_the_openai_client_chats_with_graph_extractor(client, two_providers):
    two_providers.script("alpha", Reply("Hello from graph-extractor."))
    completion = client.chat.completions.create(model="graph-extractor", messages=USER)
    assert completion.choices[0].message.content == "Hello from graph-extractor."
