"""Contract tests of the VectorStore adapters, on real embedded engines in a tmp folder.

Every contract test runs against qdrant-client's local mode and qdrant-edge;
the server-only behaviours (unreachable, hanging, erroring server) run
against closed ports and a tiny loopback HTTP server.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway_core.errors import BadRequest, Conflict, DeadlineExceeded, NotFound, Unprocessable
from gateway_core.models.search import SearchFilter
from gateway_core.settings import Settings
from gateway_core.stores.qdrant import QdrantVectorStore
from gateway_core.stores.qdrant_edge import QdrantEdgeVectorStore
from gateway_core.stores.vector_factory import create_vector_store
from gateway_core.stores.vectors import (
    DimensionMismatch,
    VectorPoint,
    VectorStore,
    VectorStoreUnavailable,
)

pytestmark = pytest.mark.integration

ADAPTERS = {
    "client": lambda path: QdrantVectorStore(path=path),
    "edge": lambda path: QdrantEdgeVectorStore(path=path),
}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def store(adapter: str, tmp_path: Path) -> AsyncIterator[VectorStore]:
    store = ADAPTERS[adapter](str(tmp_path / "qdrant"))
    yield store
    await store.close()


def pid(label: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, label))


def chunk(
    label: str, vector: list[float], *, tenant: str = "acme", doc_id: str = "doc-1", index: int = 0, **metadata: Any
) -> VectorPoint:
    return VectorPoint(
        pid(f"{tenant}/{label}"),
        vector,
        {
            "doc_id": doc_id,
            "source": f"s3://bucket/{doc_id}",
            "chunk_index": index,
            "text": label,
            "content_hash": f"hash-{label}",
            "entity_ids": [],
            "tenant": tenant,
            "metadata": metadata,
        },
    )


async def seeded(store: VectorStore) -> VectorStore:
    await store.ensure_collection("chunks", 3)
    await store.upsert(
        "chunks",
        [
            chunk("north", [1.0, 0.0, 0.0], doc_id="doc-1", index=0, lang="en", year=2024, score=0.5, public=True),
            chunk(
                "north-east", [0.7, 0.7, 0.0], doc_id="doc-1", index=1, lang="de", year=2023, score=1.5, public=False
            ),
            chunk("east", [0.0, 1.0, 0.0], doc_id="doc-2", index=0, lang="en", year=2024, score=0.5, public=False),
            chunk("up", [0.0, 0.0, 1.0], doc_id="doc-3", index=0, lang="fr", year=2022, score=2.5, public=True),
            chunk("north", [1.0, 0.0, 0.0], tenant="globex", doc_id="doc-1"),
        ],
    )
    return store


def texts(hits: list[Any]) -> list[str]:
    return [hit.payload["text"] for hit in hits]


# --- collections --------------------------------------------------------------------


async def test_ensure_collection_is_idempotent_and_survives_reopening(adapter: str, tmp_path: Path) -> None:
    path = str(tmp_path / "qdrant")
    first = ADAPTERS[adapter](path)
    await first.ensure_collection("chunks", 4)
    await first.ensure_collection("chunks", 4)
    await first.upsert("chunks", [chunk("a", [1, 0, 0, 0])])
    await first.close()

    reopened = ADAPTERS[adapter](path)
    try:
        await reopened.ensure_collection("chunks", 4)
        assert await reopened.count("chunks", tenant="acme") == 1
        with pytest.raises(DimensionMismatch):  # the stored size, not a cached one
            await reopened.ensure_collection("chunks", 8)
    finally:
        await reopened.close()


async def test_another_vector_size_is_a_conflict_that_says_what_differs(store: VectorStore) -> None:
    await store.ensure_collection("chunks", 3)
    with pytest.raises(DimensionMismatch) as caught:
        await store.ensure_collection("chunks", 5)
    error = caught.value
    assert isinstance(error, Conflict) and error.status == 409
    assert "'chunks'" in error.message and "3-dimensional" in error.message and "5-dimensional" in error.message
    assert error.details == {"collection": "chunks", "existing_dim": 3, "requested_dim": 5}
    with pytest.raises(DimensionMismatch):  # a query vector of the wrong size too
        await store.search("chunks", [1.0, 0.0], tenant="acme", top_k=3)
    with pytest.raises(DimensionMismatch):
        await store.upsert("chunks", [chunk("short", [1.0, 0.0])])


async def test_a_missing_collection_reads_as_empty(store: VectorStore) -> None:
    assert await store.search("nothing", [1.0, 0.0, 0.0], tenant="acme", top_k=5) == []
    assert await store.count("nothing", tenant="acme") == 0
    assert await store.payloads("nothing", tenant="acme", doc_id="doc-1") == {}
    assert await store.delete("nothing", tenant="acme", doc_id="doc-1") == 0
    with pytest.raises(NotFound):
        await store.upsert("nothing", [chunk("a", [1.0, 0.0, 0.0])])


# --- search -------------------------------------------------------------------------


async def test_search_ranks_the_nearest_vector_first(store: VectorStore) -> None:
    await seeded(store)
    hits = await store.search("chunks", [0.9, 0.2, 0.0], tenant="acme", top_k=10)
    assert texts(hits)[:3] == ["north", "north-east", "east"]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].score == pytest.approx(0.976, abs=1e-3)  # cosine
    assert hits[0].id == pid("acme/north")
    assert hits[0].payload["metadata"]["lang"] == "en"
    assert len(await store.search("chunks", [0.9, 0.2, 0.0], tenant="acme", top_k=2)) == 2


async def test_search_filters_by_doc_ids(store: VectorStore) -> None:
    await seeded(store)
    query = [1.0, 0.0, 0.0]
    only = SearchFilter(doc_ids=["doc-2", "doc-3"])
    assert sorted(texts(await store.search("chunks", query, tenant="acme", top_k=10, filter=only))) == ["east", "up"]
    nothing = SearchFilter(doc_ids=[])
    assert await store.search("chunks", query, tenant="acme", top_k=10, filter=nothing) == []


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"lang": "en"}, ["east", "north"]),
        ({"year": 2024}, ["east", "north"]),
        ({"score": 1.5}, ["north-east"]),
        ({"public": True}, ["north", "up"]),
        ({"public": False}, ["east", "north-east"]),
        ({"lang": "en", "public": True}, ["north"]),
        ({"lang": "xx"}, []),
    ],
)
async def test_search_filters_by_metadata_equality(
    store: VectorStore, metadata: dict[str, Any], expected: list[str]
) -> None:
    await seeded(store)
    hits = await store.search(
        "chunks", [1.0, 1.0, 1.0], tenant="acme", top_k=10, filter=SearchFilter(metadata=metadata)
    )
    assert sorted(texts(hits)) == expected


def test_metadata_keys_cannot_reach_outside_metadata() -> None:
    with pytest.raises(ValidationError):
        SearchFilter(metadata={"x.tenant": "globex"})
    with pytest.raises(ValidationError):
        SearchFilter.model_validate({"tenant": "globex"})  # no field can widen the tenant
    assert SearchFilter.model_validate({"metadata": {"部署": "営業", "n": 1, "f": 1.5, "b": True}}).metadata == {
        "部署": "営業",
        "n": 1,
        "f": 1.5,
        "b": True,
    }


# --- tenants --------------------------------------------------------------------------


async def test_a_tenant_never_sees_or_deletes_another_tenants_points(store: VectorStore) -> None:
    await seeded(store)
    acme_hits = await store.search("chunks", [1.0, 0.0, 0.0], tenant="acme", top_k=10)
    globex_hits = await store.search("chunks", [1.0, 0.0, 0.0], tenant="globex", top_k=10)
    assert {h.payload["tenant"] for h in acme_hits} == {"acme"} and len(acme_hits) == 4
    assert [h.id for h in globex_hits] == [pid("globex/north")]
    assert await store.search("chunks", [1.0, 0.0, 0.0], tenant="initech", top_k=10) == []

    assert await store.count("chunks", tenant="acme") == 4
    assert await store.count("chunks", tenant="globex") == 1
    assert await store.count("chunks", tenant="acme", doc_id="doc-1") == 2
    assert set(await store.payloads("chunks", tenant="globex", doc_id="doc-1")) == {pid("globex/north")}

    # Another tenant's id, or its doc_id, deletes nothing.
    assert await store.delete("chunks", tenant="acme", ids=[pid("globex/north")]) == 0
    assert await store.delete("chunks", tenant="acme", doc_id="doc-1") == 2
    assert await store.count("chunks", tenant="globex", doc_id="doc-1") == 1
    with pytest.raises(ValueError):
        await store.search("chunks", [1.0, 0.0, 0.0], tenant="", top_k=10)


# --- delete, payloads, upsert ---------------------------------------------------------------


async def test_delete_by_doc_id_and_by_ids_returns_how_many_went(store: VectorStore) -> None:
    await seeded(store)
    assert await store.delete("chunks", tenant="acme", doc_id="doc-1") == 2
    assert await store.delete("chunks", tenant="acme", doc_id="doc-1") == 0
    gone, unknown = pid("acme/east"), pid("acme/never-stored")
    assert await store.delete("chunks", tenant="acme", ids=[gone, unknown]) == 1
    assert await store.delete("chunks", tenant="acme", ids=[]) == 0
    # Both given: both must hold.
    assert await store.delete("chunks", tenant="acme", doc_id="doc-2", ids=[pid("acme/up")]) == 0
    assert texts(await store.search("chunks", [1.0, 1.0, 1.0], tenant="acme", top_k=10)) == ["up"]
    with pytest.raises(ValueError):
        await store.delete("chunks", tenant="acme")
    with pytest.raises(Unprocessable):
        await store.delete("chunks", tenant="acme", ids=["not-a-uuid"])


async def test_payloads_returns_the_selected_fields_of_one_document(store: VectorStore) -> None:
    await seeded(store)
    assert await store.payloads("chunks", tenant="acme", doc_id="doc-1") == {
        pid("acme/north"): {"content_hash": "hash-north", "chunk_index": 0},
        pid("acme/north-east"): {"content_hash": "hash-north-east", "chunk_index": 1},
    }
    assert await store.payloads("chunks", tenant="acme", doc_id="doc-3", fields=("text", "source")) == {
        pid("acme/up"): {"text": "up", "source": "s3://bucket/doc-3"}
    }
    assert await store.payloads("chunks", tenant="acme", doc_id="doc-9") == {}


async def test_upsert_replaces_by_id_and_takes_large_batches(store: VectorStore) -> None:
    await store.ensure_collection("chunks", 3)
    points = [chunk(f"p{i}", [1.0, i / 600, 0.0], doc_id="big", index=i) for i in range(600)]
    await store.upsert("chunks", points)  # more than one batch
    await store.upsert("chunks", points[:10])  # re-delivery is a no-op
    assert await store.count("chunks", tenant="acme", doc_id="big") == 600
    assert len(await store.payloads("chunks", tenant="acme", doc_id="big")) == 600  # more than a scroll page

    changed = VectorPoint(points[0].id, [0.0, 0.0, 1.0], {**points[0].payload, "text": "moved"})
    await store.upsert("chunks", [changed])
    hits = await store.search("chunks", [0.0, 0.0, 1.0], tenant="acme", top_k=1)
    assert (hits[0].id, hits[0].payload["text"]) == (points[0].id, "moved")
    with pytest.raises(Unprocessable):
        await store.upsert("chunks", [VectorPoint("chunk-1", [1.0, 0.0, 0.0], {"tenant": "acme"})])


async def test_collection_names_are_checked(store: VectorStore) -> None:
    with pytest.raises(BadRequest):
        await store.ensure_collection("../escape", 3)
    with pytest.raises(BadRequest):
        await store.search("a/b", [1.0, 0.0, 0.0], tenant="acme", top_k=1)


# --- the embedded folder: shared in a process, locked against other processes ------------


async def test_stores_in_one_process_share_the_folder(adapter: str, tmp_path: Path) -> None:
    # The client registry rebuilds stores when the event loop changes, without closing the old one.
    path = str(tmp_path / "qdrant")
    first, second = ADAPTERS[adapter](path), ADAPTERS[adapter](path)
    await first.ensure_collection("chunks", 3)
    await first.upsert("chunks", [chunk("a", [1.0, 0.0, 0.0])])
    assert await second.count("chunks", tenant="acme") == 1
    await first.close()
    assert await second.count("chunks", tenant="acme") == 1  # still open for the other user
    await second.close()


HOLD_FOLDER = textwrap.dedent("""
    import asyncio, sys
    from gateway_core.stores.qdrant import QdrantVectorStore
    from gateway_core.stores.qdrant_edge import QdrantEdgeVectorStore

    async def main():
        store = {"client": QdrantVectorStore, "edge": QdrantEdgeVectorStore}[sys.argv[1]](path=sys.argv[2])
        await store.ping()
        print("ready", flush=True)
        sys.stdin.readline()
        await store.close()

    asyncio.run(main())
""")


@pytest.fixture
def folder_held_elsewhere(adapter: str, tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "qdrant")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FOLDER, adapter, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield path
    finally:
        holder.communicate(input="\n", timeout=15)
        assert holder.returncode == 0


async def test_a_folder_held_by_another_process_gives_a_clear_error(adapter: str, folder_held_elsewhere: str) -> None:
    store = ADAPTERS[adapter](folder_held_elsewhere)
    with pytest.raises(VectorStoreUnavailable) as caught:
        await store.ping()
    assert caught.value.status == 503
    assert "in use by another process" in caught.value.message
    assert "QDRANT_PATH" in caught.value.message and "qdrant" in caught.value.message
    await store.close()


# --- a Qdrant server that is away, slow or failing ---------------------------------------


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_an_unreachable_server_is_unavailable_at_once() -> None:
    store = QdrantVectorStore(url=f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    with pytest.raises(VectorStoreUnavailable) as caught:
        await store.search("chunks", [1.0, 0.0, 0.0], tenant="acme", top_k=3, timeout=10)
    assert time.monotonic() - started < 3
    assert "unreachable" in caught.value.message
    with pytest.raises(VectorStoreUnavailable):
        await store.ping()
    await store.close()


@pytest.fixture
async def fake_qdrant() -> AsyncIterator[dict[str, Any]]:
    """A loopback HTTP server that answers every request with a chosen status, or never."""
    state: dict[str, Any] = {"status": 404, "requests": []}
    handlers: set[asyncio.Task[Any]] = set()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            state["requests"].append(head.split(b"\r\n", 1)[0].decode())
            if state["status"] is None:
                await asyncio.sleep(30)  # hang: the client must give up first
            body = b'{"status": {"error": "Not found: Collection `chunks` doesn\'t exist!"}, "time": 0.0}'
            writer.write(
                b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (state["status"], len(body), body)
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    state["url"] = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        for task in handlers:  # a hanging answer must not outlive the test
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def test_a_hanging_server_hits_the_deadline(fake_qdrant: dict[str, Any]) -> None:
    fake_qdrant["status"] = None
    store = QdrantVectorStore(url=fake_qdrant["url"])
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await store.search("chunks", [1.0, 0.0, 0.0], tenant="acme", top_k=3, timeout=0.3)
    assert time.monotonic() - started < 1.5
    await store.close()


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
async def test_server_answers_map_to_our_errors(fake_qdrant: dict[str, Any]) -> None:
    store = QdrantVectorStore(url=fake_qdrant["url"], api_key="test-key")
    assert await store.search("chunks", [1.0, 0.0, 0.0], tenant="acme", top_k=3) == []  # 404
    assert fake_qdrant["requests"] == ["GET /collections/chunks HTTP/1.1"]
    fake_qdrant["status"] = 503
    with pytest.raises(VectorStoreUnavailable):
        await store.count("chunks", tenant="acme")
    await store.close()


# --- the factory ----------------------------------------------------------------------------


def test_the_factory_picks_the_adapter_without_io(tmp_path: Path) -> None:
    path = tmp_path / "not-yet"
    server = create_vector_store(Settings(qdrant_url="http://127.0.0.1:6333", qdrant_api_key="k"))
    local = create_vector_store(Settings(qdrant_path=str(path), qdrant_local_engine="client"))
    embedded = create_vector_store(Settings(qdrant_path=str(path)))  # the default
    assert isinstance(server, QdrantVectorStore) and not server.local
    assert isinstance(local, QdrantVectorStore) and local.local
    assert isinstance(embedded, QdrantEdgeVectorStore)
    assert not path.exists()
