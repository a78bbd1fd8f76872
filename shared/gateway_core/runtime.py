"""One event loop per execution environment (docs/architecture.md, rule 2).

Mangum reuses the current loop across invocations, and Powertools' async batch
processing does too; both find this loop through asyncio.get_event_loop().
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None


def event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
    return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on the environment's loop."""
    return event_loop().run_until_complete(coro)
