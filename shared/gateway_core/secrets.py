"""Secret-bearing settings read from Secrets Manager at start-up, so that only names sit in the environment.

For each setting below, a `<NAME>_SECRET` variable (a Secrets Manager secret name or ARN) wins over
`<NAME>`: `LLM_PROVIDERS_SECRET` holds the JSON list of providers, `NEO4J_PASSWORD_SECRET` the
password, `FALKORDB_URL_SECRET` a URL with credentials, and so on. The values are read once, when
the settings are first built in an execution environment (on first use, never at import), through
Powertools Parameters, whose cache (`SECRETS_CACHE_S`) also serves several settings kept in one secret.
A secret that cannot be read fails the settings with a message naming the variable, never a value;
the next use tries again. API keys keep their own, refreshed path (`API_KEYS_SECRET`, in auth).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .errors import ApiError

if TYPE_CHECKING:
    from .settings import Settings

# setting -> the setting naming the secret that holds its value
SECRET_SETTINGS: dict[str, str] = {
    "llm_providers": "llm_providers_secret",
    "embeddings_api_key": "embeddings_api_key_secret",
    "reranker_api_key": "reranker_api_key_secret",
    "qdrant_api_key": "qdrant_api_key_secret",
    "neo4j_password": "neo4j_password_secret",
    "falkordb_url": "falkordb_url_secret",
}
JSON_SETTINGS = frozenset({"llm_providers"})

Fetch = Callable[[str, int], str]


class SecretUnavailable(ApiError):
    status, code = 503, "secret_unavailable"


def fetch_secret(name: str, max_age: int) -> str:
    """Blocking: Secrets Manager through Powertools Parameters (cached for max_age seconds)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, max_age=max_age)
    return str(value)


def resolve_secrets(settings: Settings, fetch: Fetch = fetch_secret) -> Settings:
    """The settings with every `<name>_secret` read into `<name>`; the same object when none is set."""
    updates: dict[str, Any] = {}
    for field, source in SECRET_SETTINGS.items():
        name = getattr(settings, source)
        if not name:
            continue
        variable = source.upper()
        try:
            text = fetch(name, settings.secrets_cache_s).strip()
        except Exception as exc:  # wrong name, no permission, Secrets Manager unreachable
            raise SecretUnavailable(
                f"Could not read the secret named by {variable}: {type(exc).__name__}.",
                details={"variable": variable},
            ) from exc
        if field in JSON_SETTINGS:
            try:
                updates[field] = json.loads(text)
            except json.JSONDecodeError:
                raise SecretUnavailable(
                    f"The secret named by {variable} is not JSON.", details={"variable": variable}
                ) from None
        else:
            updates[field] = text
    if not updates:
        return settings
    try:
        return type(settings).model_validate({**settings.model_dump(), **updates})
    except ValidationError as exc:  # its text would show the values: name the settings only
        fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
        raise SecretUnavailable(
            f"A secret does not hold a valid value for {', '.join(fields) or 'its setting'}.",
            details={"settings": fields},
        ) from None
