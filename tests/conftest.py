"""Shared fixtures. Each fixture module below starts and stops its own server on 127.0.0.1."""

pytest_plugins = [
    "tests.fixtures.environment",
    "tests.fixtures.graph_servers",
    "tests.fixtures.llm_server",
]
