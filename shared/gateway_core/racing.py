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


def attempt_budget(strategy: Strategy, remaining: float, providers_left: int) -> float:
    """The time one provider's attempt may take.

    Sequential fallback splits what is left evenly among the providers still to try, so a slow
    or retrying first provider cannot use up the time of the ones after it; race and hedge run
    attempts side by side, each with all of it.
    """
    if strategy == "sequential" and providers_left > 1:
        return remaining / providers_left
    return remaining


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
    race = _Race(providers, call, name, delay={"race": 0.0, "hedge": hedge_delay, "sequential": math.inf}[strategy])
    try:
        race.launch()
        while race.running:
            race.launch_due()
            done, _ = await asyncio.wait(race.running, timeout=race.wait_s(), return_when=asyncio.FIRST_COMPLETED)
            if not done:  # the hedge delay passed with nothing back yet
                race.launch()
                continue
            winner = race.collect(done)
            if winner is not None:
                return winner
            if not race.running and race.waiting:  # all running ones failed: do not wait for the delay
                race.launch()
        raise AllProvidersFailed(race.attempts)
    finally:
        await race.cancel_the_rest()


class _Race(Generic[P, T]):
    """The bookkeeping of one `first_acceptable`: who waits, who runs, what happened to each."""

    def __init__(
        self, providers: Sequence[P], call: Callable[[P], Awaitable[T]], name: Callable[[P], str], delay: float
    ) -> None:
        self.waiting = list(providers)
        self.running: dict[asyncio.Task[T], tuple[P, float]] = {}
        self.attempts: list[Attempt] = []
        self._call, self._name, self._delay = call, name, delay
        self._origin = self._last_launch = time.perf_counter()

    def launch(self) -> None:
        provider = self.waiting.pop(0)
        self._last_launch = time.perf_counter()
        self.running[asyncio.ensure_future(self._call(provider))] = (provider, self._last_launch)

    def launch_due(self) -> None:
        """With no delay (race), every waiting provider starts at once."""
        while self.waiting and self._delay == 0.0:
            self.launch()

    def wait_s(self) -> float | None:
        """How long to wait for an answer before the next provider is due (None: until one answers)."""
        if not self.waiting or self._delay == math.inf:
            return None
        return max(0.0, self._last_launch + self._delay - time.perf_counter())

    def collect(self, done: set[asyncio.Task[T]]) -> Outcome[T] | None:
        """Record finished calls; the first success is the outcome."""
        for task in done:
            provider, started = self.running.pop(task)
            error = task.exception()
            if error is None:
                self._record(provider, started, "ok", None)
                return Outcome(self._name(provider), task.result(), self.attempts)
            self._record(provider, started, "error", describe(error))
        return None

    async def cancel_the_rest(self) -> None:
        for task, (provider, started) in self.running.items():
            task.cancel()
            self._record(provider, started, "cancelled", None)
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)

    def _record(
        self, provider: P, started: float, outcome: Literal["ok", "error", "cancelled"], error: str | None
    ) -> None:
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        since_origin_ms = round((started - self._origin) * 1000, 1)
        self.attempts.append(Attempt(self._name(provider), outcome, since_origin_ms, elapsed_ms, error))
