"""OpenAI-compatible LLM providers (OpenAI, LiteLLM, vLLM, Ollama, ...).

One AsyncOpenAI client per provider, created on first use and reused. Retries
on 429/5xx with backoff honouring Retry-After are the openai client's own
(`max_retries`); every call is bounded by the request deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from .. import tls
from ..deadline import current as current_deadline
from ..errors import BadRequest, NotConfigured, UpstreamError
from ..redaction import redact_url
from ..registry import registry
from ..settings import ProviderConfig, get_settings
from ..upstream import Classifier, external_call, mapped_failure, openai_errors, retry_after_s

NOT_CONFIGURED = (
    "No LLM provider is configured. Set LLM_PROVIDERS to a JSON list of "
    '{"name", "base_url", "api_key", "model", "json_mode"} (any OpenAI-compatible endpoint), '
    "and optionally MODEL_ALIASES."
)


@dataclass
class Completion:
    provider: str
    model: str
    text: str
    latency_ms: float
    usage: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None


class InvalidJsonAnswer(UpstreamError):
    """JSON mode was asked for and the provider answered something else."""

    code = "invalid_json"

    def __init__(self, provider: str, raw: str) -> None:
        super().__init__(
            f"Provider '{provider}' did not return a JSON object.", details={"provider": provider, "raw": raw}
        )
        self.raw = raw


def providers() -> list[ProviderConfig]:
    configured = get_settings().llm_providers
    if not configured:
        raise NotConfigured(NOT_CONFIGURED)
    return configured


# The predecessor's model names: every configured provider, in order, unless MODEL_ALIASES (or a provider
# of that name) says otherwise.
BUILTIN_ALIASES = ("rag-answer", "graph-extractor")


def resolve(alias: str | None) -> list[ProviderConfig]:
    """Providers for a model alias, in order: MODEL_ALIASES, else a provider name, else a built-in alias
    (`rag-answer`, `graph-extractor`: all providers), else all for `default`."""
    configured = providers()
    by_name = {provider.name: provider for provider in configured}
    aliases = get_settings().model_aliases
    if alias is None or alias in ("", "default"):
        return configured
    if alias in aliases:
        missing = [name for name in aliases[alias] if name not in by_name]
        if missing:
            raise NotConfigured(f"Model alias '{alias}' names unknown providers: {', '.join(missing)}.")
        return [by_name[name] for name in aliases[alias]]
    if alias in by_name:
        return [by_name[alias]]
    if alias in BUILTIN_ALIASES:
        return configured
    known = sorted({*aliases, *by_name, *BUILTIN_ALIASES})
    raise BadRequest(f"Unknown model '{alias}'. Known models: {', '.join(known)}.", code="unknown_model")


def model_names() -> list[str]:
    settings = get_settings()
    builtin = BUILTIN_ALIASES if settings.llm_providers else ()
    return list(dict.fromkeys([*settings.model_aliases, *builtin, *(p.name for p in settings.llm_providers)]))


def client_for(provider: ProviderConfig) -> Any:
    def build() -> Any:
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient

        return AsyncOpenAI(
            base_url=provider.base_url,
            api_key=provider.api_key or "not-needed",
            max_retries=get_settings().llm_max_retries,
            http_client=DefaultAsyncHttpxClient(transport=_retry_within_budget(), verify=tls.for_httpx2()),
        )

    return registry.get(f"llm:{provider.name}", build)


# When the running attempt must be over (time.monotonic()); read by the transport below.
_attempt_ends: ContextVar[float | None] = ContextVar("llm_attempt_ends", default=None)


def _retry_within_budget() -> Any:
    """A transport that tells the openai client not to retry what cannot fit in the attempt's budget.

    The client honours `Retry-After` by sleeping; a wait past the deadline would only turn a
    clear 429/503 into a timeout. Marking such an answer `x-should-retry: false` (a header the
    client obeys) ends the attempt at once, so the caller can try another provider or pass the
    Retry-After on. (Built on first use: httpx2 comes with openai, imported lazily.)
    """
    import httpx2

    class RetryWithinBudget(httpx2.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            response = await super().handle_async_request(request)
            if response.status_code in (429, 503) and not _fits_in_attempt(retry_after_s(response.headers)):
                response.headers["x-should-retry"] = "false"
            return response

    return RetryWithinBudget(verify=tls.for_httpx2())


def _fits_in_attempt(wait: float | None) -> bool:
    ends = _attempt_ends.get()
    return wait is None or ends is None or time.monotonic() + wait < ends


@contextlib.contextmanager
def _attempt(budget: float) -> Iterator[None]:
    token = _attempt_ends.set(time.monotonic() + budget)
    try:
        yield
    finally:
        _attempt_ends.reset(token)


async def complete(
    provider: ProviderConfig,
    messages: list[dict[str, Any]],
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    json_mode: bool = False,
    timeout: float | None = None,
) -> Completion:
    """One chat completion from one provider, within the request's remaining budget."""

    budget = timeout if timeout is not None else current_deadline().timeout()
    options: dict[str, Any] = {}
    if temperature is not None:
        options["temperature"] = temperature
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    if json_mode:
        if provider.json_mode:
            options["response_format"] = {"type": "json_object"}
        else:  # the endpoint has no JSON mode: ask in words, and check the answer anyway
            messages = [{"role": "system", "content": "Answer with a single JSON object only."}, *messages]
    started = time.perf_counter()
    with _attempt(budget):
        async with external_call(_system(provider), budget, _errors(provider)):
            response = await client_for(provider).chat.completions.create(
                model=provider.model, messages=messages, timeout=budget, **options
            )
    choice = response.choices[0] if response.choices else None
    return Completion(
        provider=provider.name,
        model=response.model or provider.model,
        text=(choice.message.content or "") if choice else "",
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        usage=response.usage.model_dump() if response.usage else {},
        finish_reason=choice.finish_reason if choice else None,
    )


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json_answer(provider: str, text: str) -> Any:
    """The JSON value of an answer (tolerating a ```json fence), or InvalidJsonAnswer."""
    fenced = _FENCE.match(text)
    try:
        value = json.loads(fenced.group(1) if fenced else text)
    except (json.JSONDecodeError, TypeError):
        raise InvalidJsonAnswer(provider, text) from None
    if not isinstance(value, dict | list):
        raise InvalidJsonAnswer(provider, text)
    return value


class CompletionStream:
    """A streamed chat completion: `first` is the text already received, `next_text()` reads on.

    Every read is bounded by the budget given to `open_stream`; the reader calls
    `aclose()` when done (also when it stops early) to release the connection.
    """

    def __init__(self, provider: ProviderConfig, stream: Any, ends_at: float, budget: float) -> None:
        self.provider = provider.name
        self.model = provider.model
        self.first = ""
        self.finish_reason: str | None = None
        self._config = provider
        self._stream = stream
        self._chunks = stream.__aiter__()
        self._ends_at = ends_at  # event-loop time
        self._budget = budget

    async def next_text(self) -> str | None:
        """The next non-empty piece of text, or None at the end of the answer."""
        while True:
            try:
                async with asyncio.timeout_at(self._ends_at):
                    chunk = await anext(self._chunks)
            except StopAsyncIteration:
                return None
            except Exception as exc:
                raise _stream_failure(self._config, self._budget, exc) from exc
            self.model = chunk.model or self.model
            choice = chunk.choices[0] if chunk.choices else None
            if choice is None:  # e.g. a usage-only chunk
                continue
            self.finish_reason = choice.finish_reason or self.finish_reason
            if choice.delta and choice.delta.content:
                return str(choice.delta.content)

    async def aclose(self) -> None:
        # Closing a broken stream must not hide the real outcome.
        with contextlib.suppress(Exception):
            await self._stream.close()


async def open_stream(
    provider: ProviderConfig,
    messages: list[dict[str, Any]],
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    timeout: float | None = None,
) -> CompletionStream:
    """Start a streamed chat completion (`stream=True`) and wait for its first piece of text.

    Waiting for the first text means a provider that fails before answering counts as
    failed, so race/hedge/sequential can still pick another one; the rest then
    arrives through `next_text()` as the provider sends it.
    """
    budget = timeout if timeout is not None else current_deadline().timeout()
    ends_at = asyncio.get_running_loop().time() + budget
    options: dict[str, Any] = {}
    if temperature is not None:
        options["temperature"] = temperature
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    try:
        with _attempt(budget):
            async with asyncio.timeout_at(ends_at):
                stream = await client_for(provider).chat.completions.create(
                    model=provider.model, messages=messages, stream=True, timeout=budget, **options
                )
    except Exception as exc:
        raise _stream_failure(provider, budget, exc) from exc
    opened = CompletionStream(provider, stream, ends_at, budget)
    try:
        opened.first = await opened.next_text() or ""
    except BaseException:  # also cancellation (a lost race): release the connection
        await opened.aclose()
        raise
    return opened


def _stream_failure(provider: ProviderConfig, budget: float, exc: Exception) -> Exception:
    """The gateway's error for a failed streamed call (the same mapping as `complete`)."""
    return mapped_failure(_system(provider), budget, exc, _errors(provider))


def _system(provider: ProviderConfig) -> str:
    return f"Provider '{provider.name}'"


def _errors(provider: ProviderConfig) -> Classifier:
    return openai_errors(_system(provider), where=redact_url(provider.base_url), details={"provider": provider.name})
