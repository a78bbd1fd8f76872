"""Powertools Logger and Metrics shared by every function.

Per-request keys (request id, route, tenant) live in context variables, so the
local server's concurrent requests never mix their keys. API keys are never
logged: auth only ever appends the tenant.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "graphrag-gateway")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "GraphRAGGateway")

logger = Logger(service=SERVICE, utc=True)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def bind_request(**keys: object) -> None:
    """Start a fresh set of per-request log keys in the current context."""
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(**keys)


def bind(**keys: object) -> None:
    logger.thread_safe_append_keys(**keys)
