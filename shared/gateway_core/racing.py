"""Try several providers for one answer: race, hedge or sequential (docs/architecture.md, rule 5).

The first acceptable answer returns at once and every call still in flight is
cancelled (`asyncio.gather` would wait for the slowest: the predecessor's bug).
`race` starts every provider at once, `hedge` starts the next one only after a
delay (or as soon as the running ones have all failed), `sequential` starts the
next only after the previous failed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Generic, Literal, TypeVar

P = TypeVar("P")
T = TypeVar("T")

Strategy = Literal["race", "hedge", "sequential"]


@dataclass
class Attempt:
    provider: str
    outcome: Literal["ok", "error", "cancelled"]
    started_ms: float  # since the first launch
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass
class Outcome(Generic[T]):
    provider: str
    value: T
    attempts: list[Attempt]


class AllProvidersFailed(Exception):
    def __init__(self, attempts: list[Attempt]) -> None:
        super().__init__("; ".join(f"{a.provider}: {a.error}" for a in attempts))
        self.attempts = attempts


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


async def first_acceptable(
    providers: Sequence[P],
    call: Callable[[P], Awaitable[T]],
    *,
    name: Callable[[P], str],
    strategy: Strategy = "race",
    hedge_delay: float = 0.5,
) -> Outcome[T]:
    """Return the first call that does not raise; raise AllProvidersFailed if none succeeds."""
    if not providers:
        raise AllProvidersFailed([])
    delay = {"race": 0.0, "hedge": hedge_delay, "sequential": math.inf}[strategy]
    waiting = list(providers)
    running: dict[asyncio.Task[T], tuple[P, float]] = {}
    attempts: list[Attempt] = []
    origin = time.perf_counter()
    last_launch = origin

    def launch() -> None:
        nonlocal last_launch
        provider = waiting.pop(0)
        last_launch = time.perf_counter()
        running[asyncio.ensure_future(call(provider))] = (provider, last_launch)

    def record(provider: P, started: float, outcome: Literal["ok", "error", "cancelled"], error: str | None) -> None:
        now = time.perf_counter()
        attempts.append(
            Attempt(
                name(provider), outcome, round((started - origin) * 1000, 1), round((now - started) * 1000, 1), error
            )
        )

    try:
        launch()
        while running:
            while waiting and delay == 0.0:
                launch()
            timeout = None
            if waiting and delay != math.inf:
                timeout = max(0.0, last_launch + delay - time.perf_counter())
            done, _ = await asyncio.wait(running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done:  # the hedge delay passed with nothing back yet
                launch()
                continue
            for task in done:
                provider, started = running.pop(task)
                error = task.exception()
                if error is None:
                    record(provider, started, "ok", None)
                    return Outcome(name(provider), task.result(), attempts)
                record(provider, started, "error", describe(error))
            if not running and waiting:
                launch()
        raise AllProvidersFailed(attempts)
    finally:
        for task, (provider, started) in running.items():
            task.cancel()
            record(provider, started, "cancelled", None)
        if running:
            await asyncio.gather(*running, return_exceptions=True)
