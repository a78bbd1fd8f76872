"""The official openai client, pointed at the local API server, works unchanged."""

from __future__ import annotations

import pytest
from openai import OpenAI

from infra.local.api_server import BackgroundServer, build_app
from infra.local.openai_server import Reply
from tests.fixtures.llm_server import provider_env


@pytest.fixture
def gateway(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha"))
    monkeypatch.setenv("MODEL_ALIASES", '{"rag-answer": ["alpha"]}')
    with BackgroundServer(build_app()) as server:
        yield OpenAI(base_url=server.url + "/v1", api_key="test-key-acme", max_retries=0)


def test_chat_completion(gateway, fake_llm):
    fake_llm.script("alpha", Reply("Hello from the gateway."))
    completion = gateway.chat.completions.create(model="rag-answer", messages=[{"role": "user", "content": "Hi"}])
    assert completion.choices[0].message.content == "Hello from the gateway."
    assert completion.model == "rag-answer"


def test_streaming_chat_completion(gateway, fake_llm):
    fake_llm.script("alpha", Reply("streamed answer"))
    stream = gateway.chat.completions.create(
        model="rag-answer", stream=True, messages=[{"role": "user", "content": "Hi"}]
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "streamed answer"


def test_embeddings_default_base64_encoding(gateway):
    response = gateway.embeddings.create(model="default", input=["quiet heat pumps", "安靜的熱泵"])
    assert len(response.data) == 2 and len(response.data[0].embedding) == 384
    assert abs(sum(v * v for v in response.data[0].embedding) - 1.0) < 1e-3


def test_embeddings_float_encoding(gateway):
    response = gateway.embeddings.create(model="default", input="hello", encoding_format="float")
    assert len(response.data[0].embedding) == 384


def test_models_lists_aliases_and_providers(gateway):
    ids = {model.id for model in gateway.models.list()}
    assert {"rag-answer", "alpha"} <= ids


def test_wrong_key_is_an_authentication_error(gateway):
    from openai import AuthenticationError

    client = gateway.with_options(api_key="wrong")
    with pytest.raises(AuthenticationError):
        client.models.list()
