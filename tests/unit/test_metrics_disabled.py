"""With POWERTOOLS_METRICS_DISABLED (the local API server, the benchmark, the evaluation) no metrics are
printed, however many requests count them: Powertools alone prints what piles up every 100 values."""

from __future__ import annotations

import os
import subprocess
import sys

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


WARNS = """
from gateway_core.observability import count, metrics

@metrics.log_metrics
def invocation(event, context):
    count("Requests")  # metrics disabled: nothing is added, so nothing is there to publish
    return {}

invocation({}, None)
"""


def test_an_invocation_that_counted_nothing_warns_nothing():
    env = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "true", "PYTHONWARNINGS": "default"}
    done = subprocess.run(
        [sys.executable, "-c", WARNS], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, "Warning" in done.stderr) == (0, False), done.stderr[-1000:]
