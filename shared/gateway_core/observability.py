"""Powertools Logger and Metrics shared by every function.

Per-request keys (request id, route, tenant) live in context variables, so the
local server's concurrent requests never mix their keys. API keys are never
logged: auth only ever appends the tenant; and every line passes `redact_text`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from .redaction import redact_text

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "graphrag-gateway")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "GraphRAGGateway")


class RedactingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Every formatted line, at every level, with URL credentials, tokens and keys masked: also the text of
    a library's exception that we log (`logger.exception`), which no call site can clean up beforehand."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def _redacting_record_factory(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """Records of every logger in the process (httpx, openai, neo4j, the Lambda runtime's own handler...)
    carry redacted text: the message merged with its arguments, the exception and the stack."""

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if isinstance(record.msg, str):  # Powertools' structured (dict) messages are redacted by our handler
            record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):  # kept as arguments: some formatters unpack them (uvicorn's access log)
            record.args = tuple(_redacted_argument(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted_argument(arg) for key, arg in record.args.items()}
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    return factory


def _redacted_argument(arg: object) -> object:
    if arg is None or isinstance(arg, (bool, int, float)):
        return arg
    return redact_text(str(arg))  # strings, exceptions, URLs, headers: their text


if not getattr(logging.getLogRecordFactory(), "redacting", False):  # once, even if this module is reloaded
    logging.setLogRecordFactory(_redacting_record_factory(logging.getLogRecordFactory()))
logger = Logger(service=SERVICE, utc=True, logger_handler=RedactingStreamHandler(sys.stdout))
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# An invocation that counted nothing (metrics disabled: local runs, tests, the benchmark) is not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

T = TypeVar("T")


def count(name: str, value: float = 1) -> None:
    """Add to a Count metric of this invocation (flushed by the handler's `metrics.log_metrics`).

    Nothing when POWERTOOLS_METRICS_DISABLED: Powertools would neither print nor clear what is added, and
    prints it anyway once 100 values pile up, so the local API server, the benchmark and the evaluation
    printed a metrics blob every 100 requests.
    """
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit="Count", value=value)


def bind_request(**keys: object) -> None:
    """Start a fresh set of per-request log keys in the current context."""
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(**keys)


def bind(**keys: object) -> None:
    logger.thread_safe_append_keys(**keys)


class Stopwatch:
    """Wall time per named stage, in ms, for a response's or a log line's `timings_ms`."""

    def __init__(self) -> None:
        self.timings_ms: dict[str, float] = {}
        self._origin = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings_ms[name] = _ms_since(started)

    def start(self, name: str) -> Callable[[], None]:
        """For a stage that does not fit one block (e.g. a stream): call the returned function when it ends."""
        started = time.perf_counter()

        def stop() -> None:
            self.timings_ms[name] = _ms_since(started)

        return stop

    async def time(self, name: str, work: Awaitable[T]) -> T:
        with self.stage(name):
            return await work

    def total_ms(self) -> float:
        return _ms_since(self._origin)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
