"""One mapping from a dependency's failures to the error model, for every client and store.

`external_call` bounds a call by its budget: expiry is DeadlineExceeded (504);
whatever else the library raises goes through a classifier that names it an
UpstreamError (502: it answered, but not usefully) or Unavailable (503: it
could not be reached). An ApiError raised inside passes unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from .errors import ApiError, DeadlineExceeded, UpstreamError

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
        if isinstance(exc, openai.APIStatusError):
            return UpstreamError(
                f"{system} answered HTTP {exc.status_code}: {_short(exc.message)}",
                details={**(details or {}), "status": exc.status_code},
            )
        if isinstance(exc, openai.APIConnectionError):
            return UpstreamError(f"{system} is unreachable{f' at {where}' if where else ''}.", details=details)
        if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
            return UpstreamError(f"{system} failed: {_short(exc.message)}", details=details)
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


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
