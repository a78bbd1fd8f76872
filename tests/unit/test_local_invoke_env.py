"""The in-process invoke reads the SAM `--env-vars` file like `sam local invoke` does."""

from __future__ import annotations

import json
import os

import pytest

from infra.local.invoke import ENV_FILE, load_env_file


@pytest.fixture
def env_file(tmp_path):
    path = tmp_path / "env.json"
    path.write_text(
        json.dumps(
            {
                "Parameters": {"API_KEYS": "k:acme", "QDRANT_PATH": "/q", "GRAPH_NAME": "shared"},
                "ChatFunction": {"GRAPH_NAME": "chat-only"},
            }
        ),
        encoding="utf-8",
    )
    return path


def test_unset_and_empty_variables_are_taken_from_the_file(env_file, monkeypatch):
    monkeypatch.delenv("API_KEYS")
    monkeypatch.setenv("QDRANT_PATH", "")
    monkeypatch.delenv("GRAPH_NAME", raising=False)
    applied = load_env_file("retrieve", env_file)
    assert applied == {"API_KEYS": "k:acme", "QDRANT_PATH": "/q", "GRAPH_NAME": "shared"}


def test_variables_already_set_win_over_the_file(env_file, monkeypatch):
    monkeypatch.setenv("API_KEYS", "mine:default")
    monkeypatch.delenv("QDRANT_PATH")
    monkeypatch.delenv("GRAPH_NAME", raising=False)
    assert load_env_file("retrieve", env_file) == {"QDRANT_PATH": "/q", "GRAPH_NAME": "shared"}
    assert os.environ["API_KEYS"] == "mine:default"


def test_the_function_section_wins_over_parameters(env_file, monkeypatch):
    monkeypatch.delenv("GRAPH_NAME", raising=False)
    assert load_env_file("chat", env_file)["GRAPH_NAME"] == "chat-only"


def test_the_shipped_file_holds_the_key_of_the_sample_events():
    from infra.local.lambda_events import SAMPLE_KEY

    keys = json.loads(ENV_FILE.read_text(encoding="utf-8"))["Parameters"]["API_KEYS"]
    assert [entry.split(":")[0] for entry in keys.split(",")] == [SAMPLE_KEY]
