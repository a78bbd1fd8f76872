"""Budgets are explicit: work outside a request has none until it sets its own."""

from __future__ import annotations

import contextvars

import pytest

from gateway_core.deadline import Deadline, NoDeadline, current, set_current
from tests.handlers import FakeLambdaContext


def test_work_outside_a_request_gets_no_implicit_budget():
    with pytest.raises(NoDeadline):
        contextvars.Context().run(current)


def test_a_budget_set_for_the_work_is_the_one_its_calls_get():
    def run() -> float:
        set_current(Deadline.after(120))
        return current().remaining()

    assert 119 < contextvars.Context().run(run) <= 120


def test_a_batch_budget_is_cut_to_the_functions_remaining_time():
    deadline = Deadline.for_invocation(FakeLambdaContext(timeout_s=60.0), budget=900)
    assert 59.0 < deadline.remaining() <= 59.5


def test_a_batch_budget_shorter_than_the_remaining_time_stands():
    assert 29.9 < Deadline.for_invocation(FakeLambdaContext(timeout_s=600.0), budget=30).remaining() <= 30
