"""The `graphrag` model and streamed /answer through the local API server (a real HTTP server, unbuffered)."""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest
from openai import OpenAI

from infra.local.api_server import BackgroundServer, build_app
from infra.local.openai_server import Callback, Reply
from tests.fixtures.llm_server import provider_env

KEY = "test-key-acme"
FOUNDING = "Northwind Thermal was founded in 2011 by Lin Xiaoming and Sara Holm in Taichung."
CHUNKS = {
    "handbook.md#0": FOUNDING,
    "handbook.md#1": "The company designs quiet heat pumps for apartments; its flagship model is the Breeze 5.",
    "handbook.md#2": "Quarterly revenue grew by twelve percent, mostly from exports to Sweden.",
}
PASSAGE = re.compile(r"^\[(\d+)\] \(document: [^)]*\) (.*)$", re.MULTILINE)


def cite_the_founding(body: dict) -> Reply:
    """Answer as a grounded model would: from the passage that holds the fact, cited by its number."""
    prompt = body["messages"][-1]["content"]
    n = next(n for n, text in PASSAGE.findall(prompt) if "founded in 2011" in text)
    return Reply(f"Lin Xiaoming and Sara Holm founded Northwind Thermal in 2011 [{n}].")


def index(url: str) -> None:
    chunks = [{"doc_id": cid.split("#")[0], "chunk_id": cid, "text": text} for cid, text in CHUNKS.items()]
    response = httpx.post(f"{url}/index/chunks", json={"chunks": chunks}, headers={"x-api-key": KEY}, timeout=30)
    assert response.status_code == 200, response.text


@pytest.fixture
def gateway(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha"))
    with BackgroundServer(build_app()) as server:
        index(server.url)
        yield server


@pytest.fixture
def client(gateway):
    return OpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0)


def test_graphrag_gives_the_official_client_a_grounded_answer(client, fake_llm):
    fake_llm.script("alpha", Callback(cite_the_founding))
    completion = client.chat.completions.create(
        model="graphrag", messages=[{"role": "user", "content": "Who founded Northwind Thermal?"}]
    )
    assert "founded Northwind Thermal in 2011 [" in completion.choices[0].message.content
    assert [c["chunk_id"] for c in completion.model_extra["citations"]] == ["handbook.md#0"]


def test_graphrag_streams_to_the_official_client(client, fake_llm):
    fake_llm.script("alpha", Callback(cite_the_founding))
    stream = client.chat.completions.create(
        model="graphrag", stream=True, messages=[{"role": "user", "content": "Who founded Northwind Thermal?"}]
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 2 and "".join(pieces).startswith("Lin Xiaoming and Sara Holm founded")
    assert [c["chunk_id"] for c in chunks[-1].model_extra["citations"]] == ["handbook.md#0"]


def test_graphrag_takes_earlier_turns_as_history(client, fake_llm):
    fake_llm.script("alpha", Reply("Who founded Northwind Thermal?"), Callback(cite_the_founding))
    client.chat.completions.create(
        model="graphrag",
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "What does Northwind Thermal make?"},
            {"role": "assistant", "content": "Quiet heat pumps [1]."},
            {"role": "user", "content": "Who founded it?"},
        ],
    )
    generation = fake_llm.requests_for("alpha")[-1].body["messages"][-1]["content"]
    assert "Question: Who founded Northwind Thermal?" in generation


def test_models_list_graphrag_beside_the_plain_models(client):
    assert {"graphrag", "alpha"} <= {model.id for model in client.models.list()}


def test_plain_models_keep_proxying(client, fake_llm):
    fake_llm.script("alpha", Reply("plain answer"))
    completion = client.chat.completions.create(model="alpha", messages=[{"role": "user", "content": "Hi"}])
    assert completion.choices[0].message.content == "plain answer"


def test_an_unknown_model_is_an_openai_shaped_bad_request(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.code == "unknown_model" and "Unknown model 'no-such-model'" in caught.value.message


def test_a_permanent_error_is_not_retried_by_the_official_client(fake_llm, monkeypatch):
    sent: list[httpx.Request] = []
    with BackgroundServer(build_app()) as server:  # no LLM_PROVIDERS: "not configured" is permanent
        client = OpenAI(
            base_url=server.url + "/v1",
            api_key=KEY,
            max_retries=3,
            http_client=httpx.Client(event_hooks={"request": [sent.append]}),
        )
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="alpha", messages=[{"role": "user", "content": "Hi"}])
    assert len(sent) == 1 and "No LLM provider is configured" in caught.value.message


def test_answer_stream_delivers_deltas_before_done(gateway, fake_llm):
    fake_llm.script("alpha", Callback(cite_the_founding))
    events = []
    body = {"query": "Who founded Northwind Thermal?", "stream": True}
    with httpx.stream("POST", f"{gateway.url}/answer", json=body, headers={"x-api-key": KEY}, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in response.headers  # sent in pieces, not as one buffered body
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    deltas = [event["delta"] for event in events if "delta" in event]
    assert len(deltas) > 2 and events[-1]["done"] is True and "delta" not in events[-1]
    assert "".join(deltas).startswith("Lin Xiaoming and Sara Holm founded Northwind Thermal in 2011 [")
    assert [c["chunk_id"] for c in events[-1]["citations"]] == ["handbook.md#0"]


def test_an_invalid_request_is_an_openai_shaped_400_naming_the_field(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="graphrag", messages=[])
    assert caught.value.body["param"] == "messages" and caught.value.response.headers["x-should-retry"] == "false"
