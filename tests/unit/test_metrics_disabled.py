"""With POWERTOOLS_METRICS_DISABLED (the local API server, the benchmark, the evaluation) no metrics are
printed, however many requests count them: Powertools alone prints what piles up every 100 values."""

from __future__ import annotations

from gateway_core.observability import count, metrics


@metrics.log_metrics
def invocation(event: dict[str, object], context: object) -> dict[str, object]:
    count("Requests")
    return {}


def test_a_disabled_metrics_run_prints_nothing_after_many_invocations(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for _ in range(250):
        invocation({}, None)
    assert "CloudWatchMetrics" not in capsys.readouterr().out


def test_a_disabled_metrics_run_without_a_handler_prints_nothing(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for _ in range(250):  # the local API server: the app without the Lambda handler, nothing flushes
        count("Requests")
    assert "CloudWatchMetrics" not in capsys.readouterr().out


def test_enabled_metrics_are_printed_once_per_invocation(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    for _ in range(3):
        invocation({}, None)
    assert capsys.readouterr().out.count("CloudWatchMetrics") == 3
