"""first_acceptable: the first success returns at once and the rest are cancelled."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway_core.racing import AllProvidersFailed, first_acceptable

# (name, seconds before answering, succeeds?)
PROVIDERS = [("a", 0.30, False), ("b", 0.30, False), ("c", 0.10, True)]


def make_call(log: dict[str, str]):
    async def call(provider):
        name, delay, ok = provider
        log[name] = "started"
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            log[name] = "cancelled"
            raise
        log[name] = "done"
        if not ok:
            raise ValueError(f"{name} failed")
        return name

    return call


async def test_race_returns_the_fastest_success_and_cancels_the_rest():
    log: dict[str, str] = {}
    started = time.perf_counter()
    outcome = await first_acceptable(PROVIDERS, make_call(log), name=lambda p: p[0], strategy="race")
    elapsed = time.perf_counter() - started
    assert outcome.provider == "c" and outcome.value == "c"
    assert elapsed < 0.2
    assert log == {"a": "cancelled", "b": "cancelled", "c": "done"}
    assert {a.provider: a.outcome for a in outcome.attempts} == {"a": "cancelled", "b": "cancelled", "c": "ok"}


async def test_sequential_tries_in_order():
    log: dict[str, str] = {}
    fast_fail = [("a", 0.01, False), ("b", 0.01, True), ("c", 0.01, True)]
    outcome = await first_acceptable(fast_fail, make_call(log), name=lambda p: p[0], strategy="sequential")
    assert outcome.provider == "b"
    assert [a.provider for a in outcome.attempts] == ["a", "b"]
    assert "c" not in log


async def test_hedge_starts_the_next_only_after_the_delay():
    log: dict[str, str] = {}
    providers = [("slow", 0.5, True), ("quick", 0.05, True)]
    outcome = await first_acceptable(providers, make_call(log), name=lambda p: p[0], strategy="hedge", hedge_delay=0.2)
    assert outcome.provider == "quick"
    quick = next(a for a in outcome.attempts if a.provider == "quick")
    assert 180 <= quick.started_ms < 300
    assert log["slow"] == "cancelled"


async def test_hedge_starts_the_next_at_once_when_the_running_one_fails():
    log: dict[str, str] = {}
    providers = [("broken", 0.01, False), ("good", 0.01, True)]
    outcome = await first_acceptable(providers, make_call(log), name=lambda p: p[0], strategy="hedge", hedge_delay=5)
    assert outcome.provider == "good"
    assert outcome.attempts[-1].started_ms < 100


async def test_all_failing_reports_each_reason():
    failing = [("a", 0.01, False), ("b", 0.02, False)]
    with pytest.raises(AllProvidersFailed) as caught:
        await first_acceptable(failing, make_call({}), name=lambda p: p[0], strategy="race")
    assert {a.provider: a.error for a in caught.value.attempts} == {"a": "a failed", "b": "b failed"}


async def test_outer_cancellation_cancels_every_call():
    log: dict[str, str] = {}
    slow = [("a", 5, True), ("b", 5, True)]
    task = asyncio.ensure_future(first_acceptable(slow, make_call(log), name=lambda p: p[0], strategy="race"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == {"a": "cancelled", "b": "cancelled"}
