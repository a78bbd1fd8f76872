"""Request budgets (docs/architecture.md, rule 4).

Each request gets a budget from the Lambda context's remaining time (minus a
safety margin) or REQUEST_TIMEOUT_S; every downstream call receives what is
left as its own timeout, so the request answers before Lambda would kill it.
Work outside a request (an ingest batch, a tool) sets its own budget with
`set_current`: there is no implicit default, so no task runs unbounded or
with a budget meant for someone else.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .errors import DeadlineExceeded
from .settings import get_settings

_current: ContextVar[Deadline | None] = ContextVar("deadline", default=None)


@dataclass(frozen=True)
class Deadline:
    expires_at: float  # time.monotonic()

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + max(seconds, 0.0))

    @classmethod
    def for_invocation(cls, lambda_context: Any | None, *, budget: float | None = None) -> Deadline:
        """`budget` (default REQUEST_TIMEOUT_S), cut to the Lambda's remaining time minus the margin."""
        settings = get_settings()
        budget = settings.request_timeout_s if budget is None else budget
        remaining_ms = getattr(lambda_context, "get_remaining_time_in_millis", None)
        if callable(remaining_ms):
            budget = min(budget, remaining_ms() / 1000 - settings.deadline_margin_s)
        return cls.after(budget)

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def timeout(self, cap: float | None = None) -> float:
        """Seconds a downstream call may take; raises once the budget is spent."""
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded("The request ran out of time before it could finish.")
        return min(left, cap) if cap else left


class NoDeadline(RuntimeError):
    """A downstream call was made with no budget set: a bug in the caller, never a user error."""


def current() -> Deadline:
    """The running request's (or batch's) deadline, set by whoever started the work."""
    deadline = _current.get()
    if deadline is None:
        raise NoDeadline("No deadline is set: start the work under deadline.set_current(Deadline...).")
    return deadline


def set_current(deadline: Deadline) -> None:
    _current.set(deadline)
