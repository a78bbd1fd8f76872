"""Cold start: what a function imports (and builds) at init, outside its handler.

Lambda runs init at full CPU before the first request is timed, and a SnapStart snapshot keeps what
init loaded; the clients themselves stay lazy (registry.py) and connect on first use. Each function's
app.py calls `preload` with what its routes or events use (docs/deploy.md, "Cold starts and SnapStart").
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Sequence

from .observability import logger
from .settings import get_settings

# Allocations between two young-generation collections (CPython's default is 700). A warm /retrieve builds
# tens of thousands of short-lived containers (the graph store's replies, the ranking's dicts) that reference
# counting frees; at 700 the collector ran dozens of times per request over objects already gone.
GC_YOUNG_THRESHOLD = 50_000


def modules_for(
    *,
    stores: bool = True,
    embeddings: bool = True,
    llm: bool = False,
    documents: bool = False,
    idempotency: bool = False,
) -> list[str]:
    """The modules the configured clients import on first use: the graph driver, the vector engine,
    the embedding client, the LLM client (`llm`), the document parsers (`documents`), Powertools
    Idempotency when IDEMPOTENCY_TABLE is set (`idempotency`)."""
    settings = get_settings()
    modules: list[str] = []
    if stores:
        modules += [
            "gateway_core.dependencies",
            "gateway_core.stores.vector_factory",
            "gateway_core.stores.graph.factory",
        ]
        if settings.qdrant_url or settings.qdrant_local_engine == "client":
            modules += ["gateway_core.stores.qdrant", "qdrant_client"]
        else:
            modules += ["gateway_core.stores.qdrant_edge"]
        if settings.neo4j_uri:
            modules += ["gateway_core.stores.graph.neo4j", "neo4j", "neo4j.exceptions", "neo4j.graph"]
        elif settings.falkordb_url:
            modules += [
                "gateway_core.stores.graph.falkordb",
                "falkordb.asyncio",
                "redis.asyncio",
                "redis.exceptions",
                "falkordb",
            ]
    if embeddings:
        modules += ["gateway_core.clients.embeddings"]
        if settings.embeddings_url:
            # The remote embedder posts with aiohttp; it opens TLS with httpx2's context (tls.py: httpcore2).
            modules += ["aiohttp", "httpcore2"]
    if llm:
        modules += ["gateway_core.clients.llm", "openai", "httpx2", "httpcore2"]
    if stores or embeddings or llm:
        modules += ["httpx", "httpcore"]  # upstream's error mapping, the reranker, Qdrant's REST client
    if documents:
        modules += ["pypdf"]  # services/documents imports it when a PDF arrives (about 100 ms)
    if idempotency and settings.idempotency_table:
        modules += ["aws_lambda_powertools.utilities.idempotency", "botocore.exceptions"]
    return list(dict.fromkeys(modules))


def _tls_contexts(*, embeddings: bool, llm: bool, stores: bool) -> list[str]:
    """The shared TLS contexts the configured HTTP clients will use (tls.py): 35 ms each."""
    from . import tls

    settings = get_settings()
    built = []
    if (embeddings and settings.embeddings_url) or llm:  # the remote embedder's and the openai client's (httpx2)
        tls.for_httpx2()
        built.append("tls:httpx2")
    if stores and (settings.qdrant_url or settings.reranker_url):  # Qdrant's REST client, the reranker (httpx)
        tls.for_httpx()
        built.append("tls:httpx")
    return built


def preload(
    *,
    stores: bool = True,
    embeddings: bool = True,
    llm: bool = False,
    documents: bool = False,
    idempotency: bool = False,
    aws_clients: Sequence[str] = (),
) -> list[str]:
    """Import `modules_for(...)`, and build the boto3 clients named in `aws_clients` (plus DynamoDB's
    with `idempotency` and a table): building one reads its service model, tens of ms, and opens no
    connection. Then freeze what exists (gc.freeze) and collect the young generation less often: the last
    step of init. Returns what was imported and built (`aws:<service>`)."""
    loaded: list[str] = []
    for name in modules_for(
        stores=stores, embeddings=embeddings, llm=llm, documents=documents, idempotency=idempotency
    ):
        try:
            importlib.import_module(name)
        except ImportError:  # an optional engine that is not installed: its first use says so
            logger.info("preload skipped", extra={"module": name})
        else:
            loaded.append(name)
    loaded += _tls_contexts(embeddings=embeddings, llm=llm, stores=stores)
    services = list(aws_clients)
    if idempotency and get_settings().idempotency_table:
        services.append("dynamodb")
    if services:
        from .clients import aws

        for service in services:
            try:
                aws.client(service)
            except Exception as exc:  # noqa: BLE001 - e.g. no region configured locally: the first use says so
                logger.info("preload skipped", extra={"client": service, "reason": type(exc).__name__})
            else:
                loaded.append(f"aws:{service}")
    # What init built (modules, the app, clients' classes) lives as long as the process: out of the
    # collector's way, a full collection no longer walks it. Without this, one warm /retrieve in 30 paid a
    # ~90 ms collection (p99 100 ms against p50 14 ms) and 24% more CPU per request (`make bench`).
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    return loaded
