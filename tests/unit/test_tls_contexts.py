"""Every HTTP client of the process shares one TLS context per library (loading CA certificates costs
about 35 ms, once per client when each built its own, inside a request)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway_core import snapstart, tls
from gateway_core.clients import embeddings, llm, reranker
from gateway_core.registry import registry
from gateway_core.settings import ProviderConfig, get_settings, reset_settings


def ssl_context_of(client: Any) -> Any:
    """The context an httpx/httpx2 client's connection pool opens TLS connections with."""
    return client._transport._pool._ssl_context


@pytest.fixture
def configured(monkeypatch):
    monkeypatch.setenv("EMBEDDINGS_URL", "https://127.0.0.1:9/v1")
    monkeypatch.setenv("RERANKER_URL", "https://127.0.0.1:9/rerank")
    reset_settings()
    registry.drop()
    yield
    registry.drop()
    reset_settings()


async def test_the_embedder_and_every_llm_provider_share_one_context(configured):
    embedder = embeddings.RemoteEmbedder(get_settings())
    providers = [ProviderConfig(name=name, base_url="https://127.0.0.1:9/v1", model="m") for name in ("a", "b")]
    contexts = [embedder._client().connector._ssl]  # its own aiohttp session (built here, on this loop)
    contexts += [ssl_context_of(llm.client_for(provider)._client) for provider in providers]
    try:
        assert all(context is tls.for_httpx2() for context in contexts)
    finally:
        await embedder.close()


def test_the_reranker_uses_the_httpx_context(configured):
    assert ssl_context_of(reranker._http_client()) is tls.for_httpx()


def test_before_snapshot_forgets_the_contexts_so_a_restored_sandbox_builds_its_own(configured):
    built = tls.for_httpx2()
    snapstart.before_snapshot()
    assert tls.for_httpx2() is not built


def test_the_remote_qdrant_client_uses_the_httpx_context():
    from gateway_core.stores.qdrant import QdrantVectorStore

    store = QdrantVectorStore(url="https://127.0.0.1:9", api_key=None)
    client = store._connect()  # builds the client: no request, no socket
    assert ssl_context_of(client._client.openapi_client.client._async_client) is tls.for_httpx()
