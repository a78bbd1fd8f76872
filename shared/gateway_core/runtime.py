"""One event loop per execution environment (docs/architecture.md, rule 2).

Mangum reuses the current loop across invocations, and Powertools' async batch
processing does too; both find this loop through asyncio.get_event_loop().
The loop is uvloop's (libuv, in C) where it is installed, as in the layer: a
warm /retrieve spends a good part of its CPU in the loop and its socket calls,
and uvloop's cost less (`make bench`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop, or asyncio's own where uvloop does not run (Windows)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = new_event_loop()
    asyncio.set_event_loop(_loop)
    return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on the environment's loop."""
    return event_loop().run_until_complete(coro)
