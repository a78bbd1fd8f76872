"""boto3 clients (sync; called through asyncio.to_thread), built once per environment.

AWS_ENDPOINT_URL, boto3's own setting, points them at moto_server locally.
"""

from __future__ import annotations

from typing import Any

from ..registry import registry


def client(service: str) -> Any:
    def build() -> Any:
        import boto3

        return boto3.client(service)

    # boto3 clients are thread-safe and not tied to an event loop.
    return registry.get(f"aws:{service}", build, loop_bound=False)
