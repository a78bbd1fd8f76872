"""Cold start: each function imports at init what its routes or events use, and the SnapStart hooks drop
connections before a snapshot and renew per-sandbox state after a restore (a no-op outside Lambda)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_core import coldstart, snapstart
from gateway_core.registry import registry
from gateway_core.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
WATCHED = [
    "openai",
    "aiohttp",
    "httpx2",
    "httpcore2",
    "pypdf",
    "boto3",
    "botocore.exceptions",
    "falkordb.asyncio",
    "redis.asyncio",
    "neo4j",
    "gateway_core.clients.llm",
    "gateway_core.clients.embeddings",
    "gateway_core.stores.graph.falkordb",
    "gateway_core.stores.qdrant_edge",
    "aws_lambda_powertools.utilities.idempotency",
    "snapshot_restore_py",
]
INIT = """
import json, sys
from gateway_core.registry import registry
from infra.local.invoke import load_function
load_function(sys.argv[1])
import gc
print(json.dumps({
    "modules": [m for m in json.loads(sys.argv[2]) if m in sys.modules],
    "clients": registry.names(),
    "frozen": gc.get_freeze_count(),
    "young_threshold": gc.get_threshold()[0],
}))
"""


def init(function: str, **env: str) -> dict[str, Any]:
    """A new execution environment's INIT: import functions/<function>/app.py in a fresh interpreter."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "API_KEYS": "k:acme",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "FALKORDB_URL": "redis://127.0.0.1:9",  # configured, never reached: init opens no connection
        "EMBEDDINGS_URL": "http://127.0.0.1:9/v1",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", INIT, function, json.dumps(WATCHED)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


STORES = {"falkordb.asyncio", "redis.asyncio", "gateway_core.stores.graph.falkordb", "gateway_core.stores.qdrant_edge"}
LLM = {"openai", "httpx2", "httpcore2", "aiohttp", "gateway_core.clients.llm", "gateway_core.clients.embeddings"}


@pytest.mark.parametrize(
    ("function", "expected", "absent"),
    [
        ("chat", LLM, STORES | {"pypdf", "boto3"}),  # every route calls the LLM or the embedder; few the stores
        ("retrieve", STORES | LLM | {"pypdf"}, {"boto3"}),  # /answer, uploads extract and parse PDFs
        ("extract", STORES | LLM, {"pypdf", "boto3"}),  # probe and extract call the LLM, upserts embed names
        ("ingest", STORES | LLM | {"pypdf", "boto3", "botocore.exceptions"}, set()),
    ],
)
def test_each_function_imports_what_it_uses_at_init_and_connects_to_nothing(function, expected, absent):
    result = init(function)
    loaded = set(result["modules"])
    assert (expected - loaded, absent & loaded) == (set(), set())
    assert "neo4j" not in loaded  # only the configured graph driver
    assert "snapshot_restore_py" not in loaded  # outside Lambda the hooks register nothing
    # Only boto3 clients are built at init (they open no connection until used): everything else stays lazy.
    assert result["clients"] == (["aws:s3", "aws:sqs"] if function == "ingest" else [])


@pytest.mark.parametrize("function", ["chat", "retrieve", "extract", "ingest"])
def test_each_function_ends_its_init_with_what_it_built_frozen_out_of_the_collectors_way(function):
    assert init(function)["frozen"] > 10_000  # the modules, the app and its routes: full collections skip them


@pytest.mark.parametrize("function", ["chat", "retrieve"])
def test_init_leaves_the_young_generation_collected_less_often_than_the_default(function):
    # CPython collects every 700 allocations; a warm /retrieve allocates tens of thousands that refcounting frees.
    assert init(function)["young_threshold"] == coldstart.GC_YOUNG_THRESHOLD > 700


def test_ingest_with_an_idempotency_table_also_preloads_its_persistence_and_client():
    result = init("ingest", IDEMPOTENCY_TABLE="ingest-idempotency")
    assert "aws_lambda_powertools.utilities.idempotency" in result["modules"]
    assert result["clients"] == ["aws:s3", "aws:sqs", "aws:dynamodb"]


def test_neo4j_configured_preloads_its_driver_instead():
    result = init("extract", FALKORDB_URL="", NEO4J_URI="neo4j://127.0.0.1:9")
    assert "neo4j" in result["modules"] and "falkordb.asyncio" not in result["modules"]


@pytest.fixture
def lambda_runtime(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The runtime's `snapshot_restore_py` (its documented API), as Lambda's managed Python runtime has it."""
    module = types.ModuleType("snapshot_restore_py")
    before: list[Any] = []
    after: list[Any] = []

    def register_before_snapshot(func: Any, *args: Any, **kwargs: Any) -> Any:
        before.append((func, args, kwargs))
        return func

    def register_after_restore(func: Any, *args: Any, **kwargs: Any) -> Any:
        after.append((func, args, kwargs))
        return func

    module.register_before_snapshot = register_before_snapshot  # type: ignore[attr-defined]
    module.register_after_restore = register_after_restore  # type: ignore[attr-defined]
    module.get_before_snapshot = lambda: before  # type: ignore[attr-defined]
    module.get_after_restore = lambda: after  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", module)
    monkeypatch.setattr(snapstart, "_installed", False)
    return module


def test_outside_lambda_install_registers_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # not importable, as off Lambda
    monkeypatch.setattr(snapstart, "_installed", False)
    assert snapstart.install() is False


def test_install_registers_the_two_hooks_once(lambda_runtime):
    assert snapstart.install() and snapstart.install()
    assert [f for f, _, _ in lambda_runtime.get_before_snapshot()] == [snapstart.before_snapshot]
    assert [f for f, _, _ in lambda_runtime.get_after_restore()] == [snapstart.after_restore]


def test_before_snapshot_closes_every_client_and_the_next_use_builds_a_new_one():
    client = registry.get("reranker:http", httpx.AsyncClient)  # a real client, no request made: no socket
    boto_like = registry.get("aws:s3", lambda: types.SimpleNamespace(closed=False), loop_bound=False)
    boto_like.close = lambda: setattr(boto_like, "closed", True)
    snapstart.before_snapshot()
    assert (client.is_closed, boto_like.closed, registry.names()) == (True, True, [])
    again = registry.get("reranker:http", httpx.AsyncClient)
    assert again is not client and not again.is_closed and registry.created["reranker:http"] == 2
    snapstart.before_snapshot()


def test_before_snapshot_drops_the_parameter_providers_and_their_cached_secrets():
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    DEFAULT_PROVIDERS["secrets"] = object()  # type: ignore[assignment]
    assert parameters is not None
    snapstart.before_snapshot()
    assert "secrets" not in DEFAULT_PROVIDERS


def test_after_restore_renews_randomness_the_sandbox_id_and_settings():
    random.seed(42)
    in_snapshot = random.random()
    random.seed(42)
    sandbox, settings, restores = snapstart.sandbox_id, get_settings(), snapstart.restores
    registry.get("leftover", object, loop_bound=False)
    snapstart.after_restore()
    assert random.random() != in_snapshot  # every restored copy would otherwise draw the same numbers
    assert snapstart.sandbox_id != sandbox and snapstart.restores == restores + 1
    assert get_settings() is not settings  # secrets are read again on first use
    assert registry.names() == []
