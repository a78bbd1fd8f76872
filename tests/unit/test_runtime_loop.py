"""The execution environment's one loop is uvloop's (the layer ships it) and stays the same across invocations."""

from __future__ import annotations

import asyncio

import uvloop

from gateway_core import runtime


async def running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_the_environment_loop_is_uvloop() -> None:
    assert isinstance(runtime.event_loop(), uvloop.Loop)


def test_invocations_share_the_loop_until_it_is_closed() -> None:
    first = runtime.event_loop()
    assert runtime.run(running_loop()) is first
    assert runtime.event_loop() is first
    first.close()
    assert runtime.event_loop() is not first
