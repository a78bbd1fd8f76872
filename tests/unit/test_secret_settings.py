"""`*_SECRET` settings: only names in the environment, values read from Secrets Manager (moto, in process)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from gateway_core.secrets import SECRET_SETTINGS, SecretUnavailable, resolve_secrets
from gateway_core.settings import Settings, get_settings, reset_settings

PROVIDERS = [{"name": "openai", "base_url": "https://api.example.com/v1", "api_key": "sk-secret", "model": "m"}]


@pytest.fixture
def secretsmanager(monkeypatch):
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import base

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    with mock_aws():
        base.DEFAULT_PROVIDERS.clear()  # a provider built outside the mock would hold a real client
        parameters.clear_caches()
        yield boto3.client("secretsmanager", region_name="us-east-1")
        base.DEFAULT_PROVIDERS.clear()
        parameters.clear_caches()


def test_every_secret_setting_has_a_plain_setting_and_a_name_setting():
    for field, source in SECRET_SETTINGS.items():
        assert field in Settings.model_fields and source in Settings.model_fields
        assert source == f"{field}_secret"


def test_secret_values_replace_the_settings_and_only_names_are_in_the_environment(secretsmanager, monkeypatch):
    secretsmanager.create_secret(Name="graphrag/llm", SecretString=json.dumps(PROVIDERS))
    secretsmanager.create_secret(Name="graphrag/neo4j", SecretString="n30j-pass\n")
    secretsmanager.create_secret(Name="graphrag/falkordb", SecretString="rediss://u:p@falkor.example.com:6380")
    arn = secretsmanager.create_secret(Name="graphrag/qdrant", SecretString="qdrant-key")["ARN"]
    monkeypatch.setenv("LLM_PROVIDERS_SECRET", "graphrag/llm")
    monkeypatch.setenv("NEO4J_PASSWORD_SECRET", "graphrag/neo4j")
    monkeypatch.setenv("FALKORDB_URL_SECRET", "graphrag/falkordb")
    monkeypatch.setenv("QDRANT_API_KEY_SECRET", arn)  # an ARN works as well as a name
    monkeypatch.setenv("FALKORDB_URL", "redis://ignored:6379")
    reset_settings()
    settings = get_settings()
    assert settings.llm_providers[0].api_key == "sk-secret"
    assert settings.neo4j_password == "n30j-pass"
    assert settings.falkordb_url == "rediss://u:p@falkor.example.com:6380"
    assert settings.qdrant_api_key == "qdrant-key"
    assert settings.embeddings_api_key == "not-needed"  # no secret named: the default stays
    assert get_settings() is settings  # read once per environment


def test_without_secret_names_nothing_is_fetched():
    settings = Settings()
    assert resolve_secrets(settings, fetch=lambda name, age: pytest.fail("fetched")) is settings


def test_the_cache_age_is_passed_to_the_fetch(monkeypatch):
    seen = []
    monkeypatch.setenv("RERANKER_API_KEY_SECRET", "r")
    monkeypatch.setenv("SECRETS_CACHE_S", "42")
    settings = resolve_secrets(Settings(), fetch=lambda name, age: seen.append((name, age)) or "key")
    assert seen == [("r", 42)] and settings.reranker_api_key == "key"


def test_an_unreadable_secret_names_the_variable_not_a_value(secretsmanager, monkeypatch):
    monkeypatch.setenv("NEO4J_PASSWORD_SECRET", "graphrag/missing")
    reset_settings()
    with pytest.raises(SecretUnavailable) as caught:
        get_settings()
    assert "NEO4J_PASSWORD_SECRET" in caught.value.message
    secretsmanager.create_secret(Name="graphrag/missing", SecretString="now-here")
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    assert get_settings().neo4j_password == "now-here"  # a failure is not cached


def test_a_bad_value_is_reported_without_the_value(monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS_SECRET", "llm")
    with pytest.raises(SecretUnavailable) as caught:
        resolve_secrets(Settings(), fetch=lambda name, age: '[{"name": "x", "api_key": "sk-leak"}]')
    assert "llm_providers" in caught.value.message and "sk-leak" not in str(caught.value.body())
    with pytest.raises(SecretUnavailable, match="not JSON"):
        resolve_secrets(Settings(), fetch=lambda name, age: "sk-not-json")
