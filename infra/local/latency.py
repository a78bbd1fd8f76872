"""Wrap a real client so chosen async methods take longer (injected latency)."""

from __future__ import annotations

import asyncio
from typing import Any


class Delayed:
    def __init__(self, target: Any, seconds: float, methods: tuple[str, ...]) -> None:
        self._target, self._seconds, self._methods = target, seconds, methods

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in self._methods:
            return attribute

        async def delayed(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(self._seconds)
            return await attribute(*args, **kwargs)

        return delayed
