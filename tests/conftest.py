"""Shared fixtures, and the `unit` / `integration` markers set by folder.

Each fixture module below starts and stops its own server on 127.0.0.1. Tests under
tests/unit are marked `unit` and may not start a server (a listening socket fails the
test); tests under tests/integration are marked `integration`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.environment",
    "tests.fixtures.graph_servers",
    "tests.fixtures.llm_server",
]

TESTS = Path(__file__).resolve().parent
MARKERS_BY_FOLDER = {"unit": pytest.mark.unit, "integration": pytest.mark.integration}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.path).resolve().relative_to(TESTS).parts[0]
        marker = MARKERS_BY_FOLDER.get(folder)
        if marker is None:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/unit or tests/integration")
        item.add_marker(marker)


@contextmanager
def _no_listening_sockets(item: pytest.Item) -> Iterator[None]:
    """For unit tests: any socket that starts listening (a server, also in a fixture) fails the test."""
    if item.get_closest_marker("unit") is None:
        yield
        return
    listen = socket.socket.listen

    def refuse(self: socket.socket, *args: object) -> None:
        raise AssertionError(f"{item.nodeid} started a server; move it to tests/integration")

    socket.socket.listen = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.listen = listen  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _no_listening_sockets(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _no_listening_sockets(item):
        return (yield)
