"""One mapping from a dependency's failures to the error model, for every client and store.

`external_call` bounds a call by its budget: expiry is DeadlineExceeded (504);
whatever else the library raises goes through a classifier that names it an
UpstreamError (502: it answered, but not usefully) or Unavailable (503: it
could not be reached). An ApiError raised inside passes unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from .errors import ApiError, DeadlineExceeded, RateLimited, Unavailable, UpstreamError
from .redaction import redact_text

# A dependency's exception -> the gateway's error, or None when it is not the dependency's failure.
Classifier = Callable[[Exception], ApiError | None]


@asynccontextmanager
async def external_call(system: str, budget: float, classify: Classifier) -> AsyncIterator[None]:
    """Bound the block by `budget` seconds and map its failures; `system` names the dependency in messages."""
    deadline = asyncio.timeout(budget)
    try:
        async with deadline:
            yield
    except ApiError:
        raise
    except TimeoutError as exc:
        raise DeadlineExceeded(f"{system} did not answer within {budget:.1f} s.") from exc
    except Exception as exc:
        mapped = classify(exc)
        if mapped is None:
            raise
        raise mapped from exc


def mapped_failure(system: str, budget: float, exc: Exception, classify: Classifier) -> Exception:
    """The same mapping for an error caught elsewhere (e.g. while reading a stream)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, TimeoutError):
        return DeadlineExceeded(f"{system} did not answer within {budget:.1f} s.")
    return classify(exc) or exc


def openai_errors(system: str, *, where: str | None = None, details: dict[str, Any] | None = None) -> Classifier:
    """Failures of the official openai client (LLM providers, embedding endpoints)."""

    def classify(exc: Exception) -> ApiError | None:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return DeadlineExceeded(f"{system} did not answer in time.")
        if isinstance(exc, openai.APIStatusError) and exc.status_code in (429, 503):
            return come_back_later(system, exc.status_code, exc.response.headers, details)
        if isinstance(exc, openai.APIStatusError):
            return UpstreamError(
                f"{system} answered HTTP {exc.status_code}: {short(exc.message)}",
                details={**(details or {}), "status": exc.status_code},
            )
        if isinstance(exc, openai.APIConnectionError):
            return UpstreamError(f"{system} is unreachable{f' at {where}' if where else ''}.", details=details)
        if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
            return UpstreamError(f"{system} failed: {short(exc.message)}", details=details)
        return None

    return classify


def httpx_errors(system: str) -> Classifier:
    """Failures of a plain httpx call (the reranker endpoint)."""

    def classify(exc: Exception) -> ApiError | None:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return DeadlineExceeded(f"{system} did not answer in time.")
        if isinstance(exc, httpx.HTTPError):
            return UpstreamError(f"{system} is unreachable: {type(exc).__name__}.")
        return None

    return classify


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds a `Retry-After` (or `retry-after-ms`) header asks to wait; None when absent or unreadable."""
    if (millis := headers.get("retry-after-ms")) is not None:
        with contextlib.suppress(ValueError):
            return max(0.0, float(millis) / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    return None


def come_back_later(system: str, status: int, headers: Mapping[str, str], details: dict[str, Any] | None) -> ApiError:
    """429 stays a 429 (rate limited), 503 an Unavailable; both carry Retry-After on to our caller."""
    wait = retry_after_s(headers)
    extra = {"Retry-After": str(max(1, math.ceil(wait)))} if wait is not None else {}
    kind: type[ApiError] = RateLimited if status == 429 else Unavailable
    message = f"{system} answered HTTP {status}" + (f" and asks to retry in {wait:.0f} s." if wait is not None else ".")
    return kind(message, details={**(details or {}), "status": status}, headers=extra)


def common_cause(failures: Mapping[str, ApiError]) -> ApiError | None:
    """When every provider failed the same transient way, that way is the answer (not a generic 502/422).

    All late -> DeadlineExceeded (504); all asking to come back later -> the soonest Retry-After (429/503).
    """
    errors = list(failures.values())
    if not errors:
        return None
    reasons = {name: error.body() for name, error in failures.items()}
    if all(isinstance(error, DeadlineExceeded) for error in errors):
        return DeadlineExceeded("No provider answered in time.", details={"providers": reasons})
    if all(error.headers.get("Retry-After") for error in errors):
        soonest = min(errors, key=lambda error: int(error.headers["Retry-After"]))
        return type(soonest)(
            "Every provider asks to retry later.", details={"providers": reasons}, headers=soonest.headers
        )
    return None


def short(text: str, limit: int = 200) -> str:
    text = redact_text(text)  # an endpoint's error may echo the URL or key it was called with
    return text if len(text) <= limit else text[: limit - 3] + "..."
