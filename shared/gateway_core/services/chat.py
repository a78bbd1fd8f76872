"""Chat completions over the configured providers of a model alias.

Providers of an alias are tried in order by default (fallback); `race` and
`hedge` are available for latency-critical callers. In JSON mode an answer
that is not a JSON object is not acceptable, so the next provider is tried;
if none gives one, the error carries the last raw text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..clients import llm
from ..deadline import current as current_deadline
from ..errors import ApiError, UpstreamError
from ..racing import AllProvidersFailed, Attempt, Strategy, attempt_budget, first_acceptable
from ..settings import ProviderConfig
from ..upstream import common_cause


@dataclass
class ChatResult:
    data: Any  # text, or the parsed JSON value in JSON mode
    completion: llm.Completion
    attempts: list[Attempt]

    def meta(self) -> dict[str, Any]:
        return {
            "provider": self.completion.provider,
            "model": self.completion.model,
            "latency_ms": self.completion.latency_ms,
            "usage": self.completion.usage,
            "finish_reason": self.completion.finish_reason,
            "attempts": [attempt.as_dict() for attempt in self.attempts],
        }


async def chat(
    messages: list[dict[str, Any]],
    *,
    model: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    json_mode: bool = False,
    strategy: Strategy = "sequential",
) -> ChatResult:
    candidates = llm.resolve(model)
    failures: dict[str, ApiError] = {}

    async def ask(provider: ProviderConfig) -> tuple[llm.Completion, Any]:
        left = len(candidates) - candidates.index(provider)
        timeout = attempt_budget(strategy, current_deadline().timeout(), left)
        try:
            completion = await llm.complete(
                provider, messages, temperature=temperature, max_tokens=max_tokens, json_mode=json_mode, timeout=timeout
            )
            data = llm.parse_json_answer(provider.name, completion.text) if json_mode else completion.text
        except ApiError as exc:
            failures[provider.name] = exc
            raise
        return completion, data

    try:
        outcome = await first_acceptable(candidates, ask, name=lambda p: p.name, strategy=strategy)
    except AllProvidersFailed as exc:
        raise _combined_failure(exc, failures) from None
    completion, data = outcome.value
    return ChatResult(data=data, completion=completion, attempts=outcome.attempts)


def _combined_failure(exc: AllProvidersFailed, failures: dict[str, ApiError]) -> ApiError:
    """One error for the caller: the single cause if there is one, else every provider's reason."""
    errors = list(failures.values())
    if len(errors) == 1:
        return errors[0]
    common = common_cause(failures)
    if common is not None:
        return common
    reasons = {name: error.body() for name, error in failures.items()}
    return UpstreamError(
        "Every provider failed.", details={"providers": reasons, "attempts": [a.as_dict() for a in exc.attempts]}
    )


def model_names() -> list[str]:
    """The chat models callers may name: aliases, then provider names."""
    return llm.model_names()
