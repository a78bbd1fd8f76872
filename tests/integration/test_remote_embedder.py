"""The remote embedder over aiohttp (issue 14): base64 float32 vectors from a real OpenAI-compatible server
on 127.0.0.1 (the fake one), its batches and order, its failures mapped as the openai client's were, its
session's life on the event loop and the proxy named in the environment."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable

import numpy
import pytest

from gateway_core.clients.embeddings import RemoteEmbedder
from gateway_core.deadline import Deadline, set_current
from gateway_core.errors import DeadlineExceeded, RateLimited, UpstreamError
from gateway_core.settings import get_settings
from infra.local.openai_server import Error, FakeOpenAI, Hang, InvalidJson, Reply, fake_embedding
from tests.fixtures.environment import reconfigure

MODEL = "embedder"
KEY = "emb-key-6f1d2c9a"  # no provider-key shape: only the embedder's own masking hides it
KNOWN = [0.5, -1.25, 3.140625, 1e-3, -2.0e-7]  # 1e-3 and -2e-7 are not float32: decoded as float32 rounds them


def b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def as_float32(values: list[float]) -> list[float]:
    return [float(numpy.float32(value)) for value in values]


@pytest.fixture
async def make(fake_llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[..., RemoteEmbedder]]:
    """`make(**env)`: an embedder of the fake server (or of EMBEDDINGS_URL in env), with a 5 s deadline."""
    built: list[RemoteEmbedder] = []

    def build(**env: str) -> RemoteEmbedder:
        reconfigure(
            monkeypatch,
            **{"EMBEDDINGS_URL": fake_llm.base_url, "EMBEDDINGS_MODEL": MODEL, "EMBEDDINGS_API_KEY": KEY, **env},
        )
        set_current(Deadline.after(5))
        built.append(RemoteEmbedder(get_settings()))
        return built[-1]

    yield build
    for embedder in built:
        await embedder.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- answers ---------------------------------------------------------------------------------------


async def test_asks_for_base64_and_decodes_it_to_the_exact_float32_values(make, fake_llm):
    embedder = make()
    fake_llm.script(MODEL, Reply({"data": [{"index": 0, "embedding": b64(KNOWN)}]}))
    assert await embedder.embed_query("q") == as_float32(KNOWN)


async def test_the_request_asks_for_base64(make, fake_llm):
    embedder = make()
    await embedder.embed_query("q")
    assert fake_llm.requests_for(MODEL)[0].body == {"model": MODEL, "input": ["q"], "encoding_format": "base64"}


async def test_the_servers_own_vectors_arrive_as_float32_of_what_it_computed(make, fake_llm):
    embedder = make()
    assert await embedder.embed_passages(["heat pumps", "熱泵"]) == [
        as_float32(fake_embedding("heat pumps")),
        as_float32(fake_embedding("熱泵")),
    ]


async def test_a_server_that_answers_float_lists_is_read_too(make, fake_llm):
    embedder = make()
    fake_llm.script(MODEL, Reply({"data": [{"index": 0, "embedding": [0.25, -1, 0.125]}]}))
    assert await embedder.embed_query("q") == [0.25, -1.0, 0.125]


async def test_vectors_follow_each_items_index_not_the_order_of_the_list(make, fake_llm):
    embedder = make()
    items = [{"index": 2, "embedding": b64([3.0])}, {"index": 0, "embedding": b64([1.0])}]
    fake_llm.script(MODEL, Reply({"data": [*items, {"index": 1, "embedding": [2.0]}]}))
    assert await embedder.embed_passages(["a", "b", "c"]) == [[1.0], [2.0], [3.0]]


async def test_passages_go_in_batches_of_embed_batch_size_in_order(make, fake_llm):
    embedder = make(EMBED_BATCH_SIZE="2")
    texts = ["one", "two", "three", "four", "five"]
    vectors = await embedder.embed_passages(texts)
    assert ([r.body["input"] for r in fake_llm.requests_for(MODEL)], vectors) == (
        [["one", "two"], ["three", "four"], ["five"]],
        [as_float32(fake_embedding(text)) for text in texts],
    )


async def test_the_query_and_passage_prefixes_are_sent(make, fake_llm):
    embedder = make(EMBEDDINGS_QUERY_PREFIX="query: ", EMBEDDINGS_PASSAGE_PREFIX="passage: ")
    await embedder.embed_query("q")
    await embedder.embed_passages(["p"])
    assert [r.body["input"] for r in fake_llm.requests_for(MODEL)] == [["query: q"], ["passage: p"]]


@pytest.mark.parametrize(
    "reply",
    [
        InvalidJson("{not json"),
        Reply({"object": "list"}),  # no data
        Reply({"data": [{"index": 0, "embedding": [0.1]}]}),  # one vector for two texts
        Reply({"data": [{"index": 0, "embedding": [0.1, 0.2]}, {"index": 1, "embedding": [0.3]}]}),  # lengths
        Reply({"data": [{"index": 0, "embedding": [0.1]}, {"index": 0, "embedding": [0.2]}]}),  # index twice
        Reply({"data": [{"index": 0, "embedding": "AAAA!"}, {"index": 1, "embedding": "AAAAAA=="}]}),  # not base64
        Reply({"data": [{"index": 0, "embedding": "AAA="}, {"index": 1, "embedding": "AAA="}]}),  # 2 bytes, not 4
        Reply({"data": [{"index": 0, "embedding": ["0.1"]}, {"index": 1, "embedding": None}]}),  # not numbers
        Reply({"data": [{"index": 0, "embedding": []}, {"index": 1, "embedding": []}]}),  # empty vectors
    ],
    ids=["not-json", "no-data", "count", "lengths", "index-twice", "base64", "bytes", "numbers", "empty"],
)
async def test_a_malformed_answer_is_an_upstream_error(make, fake_llm, reply):
    embedder = make()
    fake_llm.script(MODEL, reply)
    with pytest.raises(UpstreamError):
        await embedder.embed_passages(["a", "b"])


# --- failures --------------------------------------------------------------------------------------


async def test_a_429_with_retry_after_is_retried_after_that_wait(make, fake_llm):
    embedder = make()
    fake_llm.script(MODEL, Error(429, retry_after=0.3), Reply("ok"))
    await embedder.embed_query("q")
    first, second = fake_llm.requests_for(MODEL)
    assert (first.status, second.status, second.started_at - first.ended_at >= 0.3) == (429, 200, True)


async def test_a_retry_after_longer_than_the_deadline_is_a_429_at_once_with_its_retry_after(make, fake_llm):
    embedder = make()
    fake_llm.script(MODEL, Error(429, retry_after=30))
    started = time.monotonic()
    with pytest.raises(RateLimited) as raised:
        await embedder.embed_query("q")
    assert (raised.value.headers, time.monotonic() - started < 1) == ({"Retry-After": "30"}, True)


async def test_a_500_answered_every_time_ends_as_502_after_the_retries(make, fake_llm):
    embedder = make(LLM_MAX_RETRIES="1")
    fake_llm.set_default(MODEL, Error(500))
    with pytest.raises(UpstreamError, match="answered HTTP 500: Error code: 500 - fake upstream error"):
        await embedder.embed_query("q")
    assert len(fake_llm.requests_for(MODEL)) == 2


async def test_a_closed_port_is_unreachable(make):
    embedder = make(EMBEDDINGS_URL=f"http://127.0.0.1:{closed_port()}/v1", LLM_MAX_RETRIES="0")
    with pytest.raises(UpstreamError, match=r"^The embedding endpoint is unreachable\.$"):
        await embedder.embed_query("q")


async def test_a_slow_endpoint_is_a_deadline_error_within_the_budget(make, fake_llm):
    embedder = make()
    fake_llm.script(MODEL, Hang(10))
    set_current(Deadline.after(0.5))
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await embedder.embed_query("q")
    assert time.monotonic() - started < 0.8


async def test_the_api_key_is_sent_as_a_bearer_token(make, fake_llm):
    embedder = make()
    await embedder.embed_query("q")
    assert fake_llm.requests_for(MODEL)[0].headers["authorization"] == f"Bearer {KEY}"


async def test_the_api_key_never_appears_in_the_error_message_even_when_the_endpoint_echoes_it(make, fake_llm):
    embedder = make()
    fake_llm.script(MODEL, Error(401, message=f"invalid api key {KEY} (Authorization: Bearer {KEY})"))
    with pytest.raises(UpstreamError) as raised:
        await embedder.embed_query("q")
    assert KEY not in str(raised.value.body())


# --- session and proxy -----------------------------------------------------------------------------


async def test_the_session_is_built_on_first_use_on_the_running_loop_and_closed_by_close(make):
    embedder = make()
    assert embedder._session is None  # building the embedder (outside any loop, at init) opens nothing
    await embedder.embed_query("q")
    session = embedder._session
    assert session is not None and session._loop is asyncio.get_running_loop() and not session.closed
    await embedder.embed_query("q")
    assert embedder._session is session  # reused across calls (warm invocations)
    await embedder.close()
    assert (session.closed, embedder._session) == (True, None)
    assert len(await embedder.embed_query("q")) > 0  # used after close: a new session
    assert embedder._session is not session


async def test_the_proxy_named_in_the_environment_carries_the_request(make, monkeypatch):
    answer = json.dumps({"data": [{"index": 0, "embedding": b64(KNOWN)}]}).encode()
    request_lines: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:  # answers itself
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        request_lines.append(head.split(b"\r\n")[0])
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    embedder = make(EMBEDDINGS_URL="http://embeddings.invalid/v1", LLM_MAX_RETRIES="0")
    async with server:
        assert await embedder.embed_query("q") == as_float32(KNOWN)
    assert request_lines == [b"POST http://embeddings.invalid/v1/embeddings HTTP/1.1"]


async def test_no_proxy_naming_the_endpoints_host_bypasses_the_proxy(make, fake_llm, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")  # would be unreachable
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    embedder = make(LLM_MAX_RETRIES="0")
    assert await embedder.embed_query("q") == as_float32(fake_embedding("q"))


async def test_a_proxy_that_cannot_be_reached_is_unreachable(make, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    embedder = make(EMBEDDINGS_URL="http://embeddings.invalid/v1", LLM_MAX_RETRIES="0")
    with pytest.raises(UpstreamError, match=r"^The embedding endpoint is unreachable\.$"):
        await embedder.embed_query("q")
