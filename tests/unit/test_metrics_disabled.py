"""With POWERTOOLS_METRICS_DISABLED (local runs, the benchmark, the evaluation) no metrics are printed,
however many invocations add them: Powertools alone prints them once 100 values pile up."""

from __future__ import annotations

from gateway_core.observability import log_metrics, metrics


@log_metrics
def invocation(event: dict[str, object], context: object) -> dict[str, object]:
    metrics.add_metric(name="Requests", unit="Count", value=1)
    return {}


def test_a_disabled_metrics_run_prints_nothing_after_many_invocations(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for _ in range(250):
        invocation({}, None)
    assert "CloudWatchMetrics" not in capsys.readouterr().out


def test_enabled_metrics_are_printed_once_per_invocation(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    for _ in range(3):
        invocation({}, None)
    assert capsys.readouterr().out.count("CloudWatchMetrics") == 3
