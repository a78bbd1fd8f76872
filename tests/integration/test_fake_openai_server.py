"""The fake OpenAI server, driven by the real `openai` client (retries, timeouts, streaming)."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from infra.local.openai_server import (
    Callback,
    Error,
    FakeOpenAI,
    Hang,
    InvalidJson,
    Reply,
    fake_embedding,
    overlap_score,
)
from tests.fixtures.llm_server import provider_env

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
async def client(fake_llm: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=fake_llm.base_url, api_key="test-key", max_retries=0, timeout=5.0) as c:
        yield c


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# --- chat completions ------------------------------------------------------------------


async def test_reply_content_round_trips_and_the_request_is_recorded(fake_llm: FakeOpenAI, client: AsyncOpenAI):
    fake_llm.script("m", Reply("Hello, 世界"))

    answer = await client.chat.completions.create(model="m", messages=MESSAGES, temperature=0.1)

    assert answer.choices[0].message.content == "Hello, 世界"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "m" and answer.id and answer.usage is not None
    (seen,) = fake_llm.requests_for("m")
    assert seen.path == "/v1/chat/completions"
    assert seen.body["messages"] == MESSAGES and seen.body["temperature"] == 0.1
    assert seen.headers["authorization"] == "Bearer test-key"
    assert seen.status == 200 and not seen.disconnected
    assert seen.ended_at is not None and seen.ended_at >= seen.started_at


async def test_dict_content_is_sent_as_json(fake_llm: FakeOpenAI, client: AsyncOpenAI):
    fake_llm.script("m", Reply({"answer": 42, "城市": "台中"}))

    answer = await client.chat.completions.create(model="m", messages=MESSAGES)

    assert json.loads(answer.choices[0].message.content or "") == {"answer": 42, "城市": "台中"}


async def test_scripts_are_fifo_then_the_model_default_then_the_wildcard(fake_llm: FakeOpenAI, client: AsyncOpenAI):
    fake_llm.script("m", Reply("first"), InvalidJson())
    fake_llm.set_default("m", Reply("m default"))
    fake_llm.set_default("*", Reply("any model"))

    contents = [
        (await client.chat.completions.create(model=model, messages=MESSAGES)).choices[0].message.content
        for model in ("m", "m", "m", "other")
    ]

    assert contents[0] == "first"
    with pytest.raises(json.JSONDecodeError):
        json.loads(contents[1] or "")
    assert contents[2:] == ["m default", "any model"]
    fake_llm.reset()
    answer = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert answer.choices[0].message.content == "ok"  # reset forgot scripts and defaults
    assert len(fake_llm.requests) == 1  # ... and records


async def test_429_with_retry_after_is_retried_by_the_client_after_that_delay(fake_llm: FakeOpenAI):
    fake_llm.script("m", Error(429, retry_after=0.2), Reply("after retry"))

    async with AsyncOpenAI(base_url=fake_llm.base_url, api_key="k", max_retries=2) as client:
        answer = await client.chat.completions.create(model="m", messages=MESSAGES)

    assert answer.choices[0].message.content == "after retry"
    first, second = fake_llm.requests_for("m")
    assert (first.status, second.status) == (429, 200)
    assert second.started_at - first.started_at >= 0.2
    assert second.headers["x-stainless-retry-count"] == "1"


async def test_429_error_body_and_headers_reach_the_client(fake_llm: FakeOpenAI, client: AsyncOpenAI):
    fake_llm.script("m", Error(429, retry_after=0.2, message="slow down"))

    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="m", messages=MESSAGES)

    assert caught.value.response.headers["retry-after"] == "0.2"
    assert "slow down" in caught.value.message
    assert caught.value.code == "rate_limit_exceeded"


async def test_500_then_success_is_retried_by_the_client(fake_llm: FakeOpenAI):
    fake_llm.script("m", Error(500), Reply("recovered"))

    async with AsyncOpenAI(base_url=fake_llm.base_url, api_key="k", max_retries=2) as client:
        answer = await client.chat.completions.create(model="m", messages=MESSAGES)

    assert answer.choices[0].message.content == "recovered"
    assert [r.status for r in fake_llm.requests_for("m")] == [500, 200]


@pytest.mark.parametrize("step", [Hang(10), Reply("too late", latency=10)], ids=["hang", "latency"])
async def test_a_client_timeout_is_recorded_as_a_disconnect(fake_llm: FakeOpenAI, step: Hang | Reply):
    fake_llm.script("m", step)

    async with AsyncOpenAI(base_url=fake_llm.base_url, api_key="k", max_retries=0, timeout=0.3) as client:
        start = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m", messages=MESSAGES)

    fake_llm.wait_for(lambda: any(r.disconnected for r in fake_llm.requests_for("m")), timeout=1.0)
    (seen,) = fake_llm.requests_for("m")
    assert seen.status is None and seen.disconnected
    assert seen.ended_at is not None and 0.25 <= seen.ended_at - start < 1.0


async def test_hang_answers_504_when_its_time_is_up(fake_llm: FakeOpenAI, client: AsyncOpenAI):
    fake_llm.script("m", Hang(0.2))

    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="m", messages=MESSAGES)

    assert caught.value.status_code == 504
    assert fake_llm.requests_for("m")[0].status == 504


async def test_latency_is_respected(fake_llm: FakeOpenAI, client: AsyncOpenAI):
    fake_llm.script("m", Reply("slow", latency=0.3))

    start = time.monotonic()
    answer = await client.chat.completions.create(model="m", messages=MESSAGES)
    elapsed = time.monotonic() - start

    assert answer.choices[0].message.content == "slow"
    assert 0.3 <= elapsed < 1.0


async def test_concurrent_requests_with_different_latencies_answer_independently(
    fake_llm: FakeOpenAI, client: AsyncOpenAI
):
    latencies = {"a": 0.6, "b": 0.2, "c": 0.4}
    for model, latency in latencies.items():
        fake_llm.script(model, Reply(model, latency=latency))
    finished: list[str] = []

    async def ask(model: str) -> None:
        answer = await client.chat.completions.create(model=model, messages=MESSAGES)
        finished.append(answer.choices[0].message.content or "")

    start = time.monotonic()
    await asyncio.gather(*(ask(model) for model in latencies))
    elapsed = time.monotonic() - start

    assert finished == ["b", "c", "a"]
    assert 0.6 <= elapsed < 0.9  # served side by side, not one after another (1.2 s)
    for model, latency in latencies.items():
        duration = fake_llm.requests_for(model)[0].duration
        assert duration is not None and latency <= duration < latency + 0.2


async def test_stream_is_parsed_by_the_client(fake_llm: FakeOpenAI, client: AsyncOpenAI):
    fake_llm.script("m", Reply("streamed answer in pieces"))

    stream = await client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed answer in pieces"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1  # really chunked
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert fake_llm.requests_for("m")[0].status == 200


async def test_callback_answers_from_the_prompt(fake_llm: FakeOpenAI, client: AsyncOpenAI):
    def shout(body: dict) -> Reply:
        return Reply(body["messages"][-1]["content"].upper())

    fake_llm.set_default("m", Callback(shout))

    answers = [
        (await client.chat.completions.create(model="m", messages=[{"role": "user", "content": t}]))
        .choices[0]
        .message.content
        for t in ("abc", "héllo")
    ]

    assert answers == ["ABC", "HÉLLO"]


async def test_bad_request_bodies_get_a_400_and_are_recorded(fake_llm: FakeOpenAI):
    async with httpx.AsyncClient(base_url=fake_llm.root_url) as http:
        response = await http.post(
            "/v1/chat/completions", content=b"{oops", headers={"content-type": "application/json"}
        )

    assert response.status_code == 400
    assert "invalid JSON" in response.json()["error"]["message"]
    assert [r.status for r in fake_llm.requests] == [400]


async def test_models_lists_scripted_and_default_models(fake_llm: FakeOpenAI, client: AsyncOpenAI):
    fake_llm.script("alpha", Reply("x"))
    fake_llm.set_default("beta", Reply("y"))
    fake_llm.set_default("*", Reply("z"))

    models = [m.id async for m in client.models.list()]

    assert sorted(models) == ["alpha", "beta", "fake-model"]


# --- embeddings and rerank -------------------------------------------------------------


async def test_embeddings_are_deterministic_normalized_and_sized(fake_llm: FakeOpenAI, client: AsyncOpenAI):
    texts = ["The cat sat on the mat.", "貓坐在墊子上"]

    # The client asks for base64 unless told otherwise; both encodings must agree.
    default = await client.embeddings.create(model="e", input=texts)
    as_floats = await client.embeddings.create(model="e", input=texts, encoding_format="float")
    small = await client.embeddings.create(model="e", input="short", dimensions=64)

    vectors = [d.embedding for d in default.data]
    assert [len(v) for v in vectors] == [384, 384]
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-5) for v in vectors)
    for got, want in zip(vectors, (fake_embedding(t) for t in texts), strict=True):
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-6  # float32 on the wire
    assert [d.embedding for d in as_floats.data] == [fake_embedding(t) for t in texts]
    assert len(small.data[0].embedding) == 64
    assert fake_embedding(texts[0]) == fake_embedding(texts[0])


@pytest.mark.parametrize(
    ("text", "paraphrase", "unrelated"),
    [
        ("The cat sat on the mat", "A cat was sitting on the mat", "Quarterly revenue grew by ten percent"),
        ("我喜歡吃蘋果", "我愛吃蘋果", "今天股市大幅下跌"),
    ],
    ids=["english", "chinese"],
)
def test_similar_texts_embed_closer_than_unrelated(text: str, paraphrase: str, unrelated: str):
    vector = fake_embedding(text)

    assert cosine(vector, fake_embedding(paraphrase)) > cosine(vector, fake_embedding(unrelated)) + 0.3


async def test_embeddings_honour_scripts(fake_llm: FakeOpenAI, client: AsyncOpenAI):
    fake_llm.set_default("broken-embed", Error(500))

    with pytest.raises(openai.InternalServerError):
        await client.embeddings.create(model="broken-embed", input="x")

    assert fake_llm.requests_for("broken-embed")[0].path == "/v1/embeddings"


async def test_rerank_orders_by_overlap_and_honours_top_n(fake_llm: FakeOpenAI):
    documents = [
        "Berlin is in Germany",
        "The capital of France is Paris",
        "France has many cities",
        "巴黎是法國的首都",
    ]

    async with httpx.AsyncClient(base_url=fake_llm.root_url) as http:
        full = await http.post("/rerank", json={"query": "capital of France", "documents": documents})
        top = await http.post("/v1/rerank", json={"query": "法國首都", "documents": documents, "top_n": 1})

    results = full.json()["results"]
    assert [r["index"] for r in results][:2] == [1, 2]
    assert [r["relevance_score"] for r in results] == sorted((r["relevance_score"] for r in results), reverse=True)
    assert top.json()["results"] == [{"index": 3, "relevance_score": overlap_score("法國首都", documents[3])}]


async def test_rerank_is_scriptable_under_rerank(fake_llm: FakeOpenAI):
    fake_llm.script("rerank", Error(503))

    async with httpx.AsyncClient(base_url=fake_llm.root_url) as http:
        failed = await http.post("/rerank", json={"query": "q", "documents": ["d"]})
        ok = await http.post("/rerank", json={"query": "q", "documents": ["d"]})

    assert (failed.status_code, ok.status_code) == (503, 200)
    assert [r.status for r in fake_llm.requests_for("rerank")] == [503, 200]


# --- lifecycle and fixtures -------------------------------------------------------------


def test_starts_fast_and_close_stops_the_thread_and_frees_the_port():
    before = {t.ident for t in threading.enumerate()}
    start = time.monotonic()
    with FakeOpenAI() as fake:
        startup = time.monotonic() - start
        assert httpx.get(f"{fake.base_url}/models").status_code == 200
        fake.script("m", Hang(30))
        answers: list[int] = []
        hanging = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{fake.base_url}/chat/completions", json={"model": "m"}, timeout=10).status_code
            )
        )
        hanging.start()
        fake.wait_for(lambda: len(fake.requests_for("m")) == 1)
        port = fake.port
    closing = time.monotonic() - start - startup

    assert startup < 1.0
    assert closing < 3.0  # a hanging request does not hold the shutdown
    hanging.join(timeout=5)
    assert answers == [503]
    assert {t.ident for t in threading.enumerate()} <= before
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_wait_for_times_out_with_what_was_recorded(fake_llm: FakeOpenAI):
    with pytest.raises(TimeoutError, match="recorded"):
        fake_llm.wait_for(lambda: len(fake_llm.requests) > 0, timeout=0.05)


def test_provider_env_points_each_provider_at_its_own_model(fake_llm: FakeOpenAI):
    providers = json.loads(provider_env(fake_llm, "alpha", "beta", json_mode=False))

    assert [(p["name"], p["model"], p["json_mode"]) for p in providers] == [
        ("alpha", "alpha", False),
        ("beta", "beta", False),
    ]
    assert {p["base_url"] for p in providers} == {fake_llm.base_url}
