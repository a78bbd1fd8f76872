"""Lazily created clients, reused across warm invocations (docs/architecture.md, rules 1-2).

A client is built on first use, never at import. Async clients are bound to
the event loop that created them, so the registry remembers that loop: if it
is ever asked from another loop (a test harness, a restarted local server),
loop-bound clients are rebuilt instead of failing with "attached to a
different loop". Under Lambda there is one loop, so each client is built once.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ClientRegistry:
    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._loop_bound: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.created: dict[str, int] = {}  # name -> how many times it was built (tests, metrics)

    def get(self, name: str, factory: Callable[[], T], *, loop_bound: bool = True) -> T:
        self._forget_other_loop()
        if name not in self._clients:
            self._clients[name] = factory()
            self.created[name] = self.created.get(name, 0) + 1
            if loop_bound:
                self._loop_bound.add(name)
        client: T = self._clients[name]
        return client

    def put(self, name: str, client: Any, *, loop_bound: bool = False) -> None:
        """Install a ready-made client (tests wrapping a store to inject latency)."""
        self._forget_other_loop()
        self._clients[name] = client
        if loop_bound:
            self._loop_bound.add(name)

    def peek(self, name: str) -> Any | None:
        return self._clients.get(name)

    def names(self) -> list[str]:
        """The clients held now."""
        return list(self._clients)

    def _forget_other_loop(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._loop is not loop:
            for name in self._loop_bound:
                self._clients.pop(name, None)
            self._loop_bound.clear()
            self._loop = loop

    def drop(self) -> dict[str, Any]:
        """Forget every client without closing it, and return them: the next use builds each anew.

        Before a SnapStart snapshot (snapstart.py) every connection goes, since a restored copy of a
        socket is dead; the build counts in `created` are kept, so a rebuild shows as a second build.
        """
        clients, self._clients = self._clients, {}
        self._loop_bound.clear()
        return clients

    async def aclose(self, *, timeout_s: float | None = None) -> None:
        """Close every client and forget it (local server shutdown, SnapStart's before-snapshot hook;
        never per Lambda invocation). `timeout_s` bounds each close: a dead peer must not hang it."""
        for client in self.drop().values():
            for method in ("aclose", "close"):
                closer = getattr(client, method, None)
                if closer is None:
                    continue
                try:
                    result = closer()
                    if inspect.isawaitable(result):
                        await asyncio.wait_for(result, timeout_s)
                except Exception:  # noqa: BLE001, S110 - closing a half-dead client must not fail shutdown
                    pass
                break

    def reset(self) -> None:
        """Drop every client without closing it (tests switching configuration)."""
        self._clients.clear()
        self._loop_bound.clear()
        self._loop = None
        self.created.clear()


registry = ClientRegistry()
