"""Credentials inside configured URLs never reach an error body or a log line, at any level."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gateway_core.observability import logger
from infra.local.falkordb_server import free_port
from infra.local.lambda_events import http_event
from infra.local.openai_server import Error
from tests.fixtures.environment import reconfigure
from tests.handlers import invoke

ACME = "test-key-acme"
SECRET = "s3cret-Zq9"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The real log handler's output (every level), redirected for the test."""
    handler = logger.registered_handler
    stream = io.StringIO()
    previous, level = handler.setStream(stream), logger.log_level
    logger.setLevel("DEBUG")
    try:
        yield stream
    finally:
        handler.setStream(previous)  # type: ignore[arg-type]
        logger.setLevel(level)


def test_a_falkordb_password_is_in_no_error_body_and_no_log_line(monkeypatch, log_lines):
    reconfigure(monkeypatch, FALKORDB_URL=f"redis://admin:{SECRET}@127.0.0.1:{free_port()}")
    response = invoke("extract", http_event("POST", "/graph/query", {"query": "RETURN 1"}, api_key=ACME))
    assert response.status == 503
    assert "***@127.0.0.1" in response.json()["message"]
    assert SECRET not in response.text
    assert SECRET not in log_lines.getvalue()


def test_a_provider_key_in_its_base_url_is_in_no_error_body_and_no_log_line(monkeypatch, log_lines):
    provider = {
        "name": "p",
        "base_url": f"http://user:{SECRET}@127.0.0.1:{free_port()}/v1?api_key={SECRET}",
        "model": "m",
    }
    reconfigure(monkeypatch, LLM_PROVIDERS=json.dumps([provider]), LLM_MAX_RETRIES="0")
    body = {"messages": [{"role": "user", "content": "hi"}]}
    response = invoke("chat", http_event("POST", "/chat", body, api_key=ACME))
    assert response.status == 502
    assert SECRET not in response.text
    assert SECRET not in log_lines.getvalue()


def test_a_library_exception_logged_at_debug_is_redacted(log_lines):
    try:
        raise ConnectionError(f"Error connecting to redis://default:{SECRET}@db:6379 (Bearer {SECRET}123)")
    except ConnectionError:
        logger.debug("connect failed", exc_info=True)
    logger.debug(f"retrying http://127.0.0.1/v1?token={SECRET}")
    output = log_lines.getvalue()
    assert "redis://***@db:6379" in output
    assert SECRET not in output


def test_a_qdrant_password_is_in_no_error_body_and_no_log_line(monkeypatch, log_lines):
    reconfigure(monkeypatch, QDRANT_URL=f"http://admin:{SECRET}@127.0.0.1:{free_port()}")
    response = invoke("retrieve", http_event("POST", "/search", {"query": "northwind"}, api_key=ACME))
    assert response.status == 503
    assert SECRET not in response.text
    assert SECRET not in log_lines.getvalue()


def test_a_provider_error_that_echoes_the_key_is_redacted(fake_llm, monkeypatch, log_lines):
    provider = {"name": "p", "base_url": fake_llm.base_url, "api_key": f"sk-proj-{SECRET}0123456789", "model": "p"}
    reconfigure(monkeypatch, LLM_PROVIDERS=json.dumps([provider]), LLM_MAX_RETRIES="0")
    fake_llm.script("p", Error(401, message=f"Incorrect API key provided: sk-proj-{SECRET}0123456789"))
    body = {"messages": [{"role": "user", "content": "hi"}]}
    response = invoke("chat", http_event("POST", "/chat", body, api_key=ACME))
    assert response.status == 502
    assert "Incorrect API key provided: ***" in response.json()["message"]
    assert SECRET not in response.text
    assert SECRET not in log_lines.getvalue()


def test_a_library_logger_through_any_handler_is_redacted():
    """Not only our handler: e.g. the Lambda runtime's own handler on the root logger sees redacted records."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    library = logging.getLogger("httpx.fake_library")
    library.addHandler(handler)
    library.setLevel(logging.DEBUG)
    try:
        library.debug("HTTP Request: POST %s", f"http://127.0.0.1/v1?api_key={SECRET}")
        try:
            raise OSError(f"cannot reach redis://admin:{SECRET}@db:6379")
        except OSError as exc:
            library.warning("connection failed: %s", exc, exc_info=True)
    finally:
        library.removeHandler(handler)
    output = stream.getvalue()
    assert "api_key=***" in output and "redis://***@db:6379" in output
    assert SECRET not in output
