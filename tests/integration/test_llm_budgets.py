"""LLM calls share the request's budget so that fallbacks get their turn and rate limits answer at once."""

from __future__ import annotations

import json
import time

import pytest

from infra.local.lambda_events import http_event
from infra.local.openai_server import Error, Hang, Reply
from tests.fixtures.llm_server import provider_env
from tests.handlers import invoke

USER = [{"role": "user", "content": "Hello?"}]


def chat(body: dict, timeout_s: float = 4.5):
    return invoke("chat", http_event("POST", "/chat", body, api_key="test-key-acme"), timeout_s=timeout_s)


@pytest.fixture
def two_providers(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha", "beta"))
    monkeypatch.setenv("MODEL_ALIASES", json.dumps({"rag-answer": ["alpha", "beta"]}))
    return fake_llm


def test_a_hanging_first_provider_leaves_time_for_the_fallback(two_providers):
    two_providers.script("alpha", Hang(30))
    two_providers.script("beta", Reply("from beta"))
    # 4 s of budget: alpha gets its half, then beta answers; before, alpha took it all (504).
    response = chat({"messages": USER, "model": "rag-answer", "strategy": "sequential"})
    assert (response.status, response.json()["meta"]["provider"]) == (200, "beta")


def test_a_retry_after_beyond_the_budget_is_a_429_at_once_with_retry_after(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha"))
    fake_llm.script("alpha", Error(429, retry_after=30), Reply("too late"))
    started = time.monotonic()
    response = chat({"messages": USER})
    assert (response.status, response.headers.get("retry-after")) == (429, "30")
    assert time.monotonic() - started < 2.0  # no sleep inside the budget


def test_a_retry_after_beyond_the_budget_is_not_retried_by_the_client(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha"))
    fake_llm.script("alpha", Error(429, retry_after=30), Reply("too late"))
    chat({"messages": USER})
    assert len(fake_llm.requests_for("alpha")) == 1


def test_a_busy_first_provider_hands_over_to_the_next_at_once(two_providers):
    two_providers.script("alpha", Error(503, retry_after=60))
    two_providers.script("beta", Reply("from beta"))
    response = chat({"messages": USER, "model": "rag-answer", "strategy": "sequential"})
    assert [a["outcome"] for a in response.json()["meta"]["attempts"]] == ["error", "ok"]


def test_every_provider_busy_is_answered_with_the_soonest_retry_after(two_providers):
    two_providers.script("alpha", Error(429, retry_after=40))
    two_providers.script("beta", Error(429, retry_after=20))
    response = chat({"messages": USER, "model": "rag-answer", "strategy": "race"})
    assert (response.status, response.headers.get("retry-after")) == (429, "20")


def test_a_short_retry_after_is_still_honoured_by_the_client(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha"))
    fake_llm.script("alpha", Error(429, retry_after=0.3), Reply("after retry"))
    response = chat({"messages": USER})
    assert (response.status, response.json()["data"]) == (200, "after retry")


def extract(body: dict, timeout_s: float = 4.5):
    event = http_event("POST", "/graph/extract", body, api_key="test-key-acme")
    return invoke("extract", event, timeout_s=timeout_s)


def test_an_extraction_no_provider_answers_in_time_is_a_504_not_a_422(two_providers):
    two_providers.script("alpha", Hang(30))
    two_providers.script("beta", Hang(30))
    response = extract(
        {"context": "Lin founded Northwind.", "provider_chain": ["alpha", "beta"], "strategy": "sequential"}
    )
    assert (response.status, response.json()["error"]) == (504, "deadline_exceeded")


def test_an_extraction_every_provider_is_busy_for_is_a_429_with_retry_after(two_providers):
    two_providers.script("alpha", Error(429, retry_after=50))
    two_providers.script("beta", Error(429, retry_after=25))
    response = extract({"context": "Lin founded Northwind.", "provider_chain": ["alpha", "beta"], "strategy": "race"})
    assert (response.status, response.headers.get("retry-after")) == (429, "25")
