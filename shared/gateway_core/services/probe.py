"""Probe one provider: does it answer, in JSON mode if asked, and how fast (`/graph/probe`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..clients import llm
from ..deadline import current as current_deadline
from ..errors import ApiError
from ..observability import Stopwatch

PROBE_MESSAGES = [{"role": "user", "content": 'Reply with the JSON object {"ok": true, "probe": "graph"}.'}]


@dataclass(frozen=True)
class ProbeOptions:
    model: str
    strict_json: bool = True
    temperature: float | None = 0.0
    timeout: float | None = None
    messages: list[dict[str, str]] | None = None


async def probe(options: ProbeOptions) -> dict[str, Any]:
    """The probe's report; a failing provider is reported (`ok: false`, `error`), not raised."""
    provider = llm.resolve(options.model)[0]
    timeout = current_deadline().timeout(cap=options.timeout)
    watch = Stopwatch()
    report: dict[str, Any] = {"ok": True, "mode": "json" if options.strict_json else "text", "provider": provider.name}
    try:
        completion = await llm.complete(
            provider,
            options.messages or PROBE_MESSAGES,
            json_mode=options.strict_json,
            temperature=options.temperature,
            timeout=timeout,
        )
        if options.strict_json:
            report["data"] = llm.parse_json_answer(provider.name, completion.text)
        else:
            report["text"] = completion.text
    except ApiError as exc:
        report.update(ok=False, error=exc.body())
    report["latency_ms"] = watch.total_ms()
    return report
