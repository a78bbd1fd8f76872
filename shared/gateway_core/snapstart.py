"""Lambda SnapStart for Python: what a snapshot must not keep, and what a restored sandbox renews.

With SnapStart on (template.yaml, parameter `SnapStart`), Lambda runs a function's init once when a
version is published, snapshots the memory, and starts new sandboxes from that snapshot instead of
running init again. A socket in the snapshot is dead in every copy, and anything random in it is the
same in every copy. `install()`, called by every function's app.py at init, registers two hooks with
the runtime's `snapshot_restore_py` (shipped in Lambda's managed Python runtimes, 3.12 and later):

- `before_snapshot`: closes and forgets every client the registry holds (graph pools, Qdrant and
  httpx clients of the LLM, embeddings and reranker, boto3 clients), bounded by `CLOSE_TIMEOUT_S`
  per client, and drops Powertools' parameter providers, their boto3 clients and cached values (the
  secrets read at init). Nothing reconnects here: the lazy clients rebuild on first use.
- `after_restore`: reseeds `random` (every copy would draw the same numbers), forgets the cached
  settings so that secret values are read again on first use (a snapshot may be restored long after a
  rotation), drops whatever client the registry still holds, and renews `sandbox_id`.

Both are plain functions: Lambda calls them only for a function with SnapStart on. Where the package
is missing (local runs, tests, on-demand sandboxes of older runtimes) `install()` registers nothing.
"""

from __future__ import annotations

import asyncio
import importlib
import random
import sys
import uuid

from . import runtime, tls
from .observability import logger
from .registry import registry
from .settings import reset_settings

CLOSE_TIMEOUT_S = 2.0  # per client; the snapshot's init phase has 130 s at least

sandbox_id = uuid.uuid4().hex  # unique per execution environment, renewed after each restore
restores = 0  # how many times this process was restored (tests, the benchmark)
_installed = False


def install() -> bool:
    """Register the hooks with Lambda's runtime, once; False (nothing registered) outside Lambda."""
    global _installed
    if _installed:
        return True
    try:
        # The runtime's own copy, not the layer's: the runtime's hook runner reads the registry of the
        # first `snapshot_restore_py` on sys.path, and /opt (the layer) comes before the runtime's.
        hooks = importlib.import_module("snapshot_restore_py")
    except ImportError:  # not a Lambda managed runtime: nothing will ever snapshot this process
        return False
    hooks.register_before_snapshot(before_snapshot)
    hooks.register_after_restore(after_restore)
    _installed = True
    return True


def before_snapshot() -> None:
    """Close every connection this process holds; the clients reconnect lazily after the restore."""
    clients = registry.names()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        runtime.run(registry.aclose(timeout_s=CLOSE_TIMEOUT_S))
    else:  # called from inside the loop (never by Lambda): cannot wait for the closes, drop them
        registry.drop()
    _drop_parameter_providers()
    tls.forget()  # a restored sandbox builds its own TLS contexts
    logger.info("snapstart: before snapshot", extra={"clients_closed": clients})


def after_restore() -> None:
    """Renew what each sandbox must have of its own, and forget what may have changed since the snapshot."""
    global sandbox_id, restores
    random.seed()  # from os.urandom, which is unique per sandbox after a restore
    sandbox_id = uuid.uuid4().hex
    restores += 1
    reset_settings()  # secrets are read again on first use
    _drop_parameter_providers()
    registry.drop()  # normally empty already: whatever is left reconnects on first use
    logger.info("snapstart: after restore", extra={"sandbox_id": sandbox_id})


def _drop_parameter_providers() -> None:
    """Powertools Parameters keeps one provider per store (a boto3 client with its connection pool, and
    the values read); only if this process used it."""
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()
