"""API keys, each mapped to a tenant (docs/architecture.md, "Tenants").

Keys come from API_KEYS (`key[:tenant],...`) or, in production, from a Secrets
Manager secret (API_KEYS_SECRET) or an SSM parameter (API_KEYS_PARAM) holding
the same text, fetched through Powertools Parameters with a cache. A key
without `:tenant` belongs to tenant `default`. The tenant is only ever taken
from the key, never from a request field.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from dataclasses import dataclass

from fastapi import Request

from .errors import ApiError, Unauthorized
from .observability import bind
from .settings import Settings, get_settings

DEFAULT_TENANT = "default"
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class KeyConfigError(ApiError):
    status, code = 500, "auth_misconfigured"


@dataclass(frozen=True)
class Principal:
    tenant: str


class KeyRing:
    """Key -> tenant lookup in constant time per configured key."""

    def __init__(self, entries: list[tuple[bytes, str]]) -> None:
        self._entries = entries

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        entries: list[tuple[bytes, str]] = []
        for position, item in enumerate(text.replace("\n", ",").split(","), start=1):
            item = item.strip()
            if not item:
                continue
            key, _, tenant = item.partition(":")
            tenant = tenant.strip() or DEFAULT_TENANT
            if not key.strip() or not TENANT_PATTERN.match(tenant):
                # Say where, never what: the entry holds a secret.
                raise KeyConfigError(
                    f"API key entry #{position} is malformed: expected key[:tenant] with a tenant "
                    "of letters, digits, '_' or '-' (at most 64)."
                )
            entries.append((key.strip().encode(), tenant))
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def tenants(self) -> frozenset[str]:
        """The tenants the configured keys map to."""
        return frozenset(tenant for _, tenant in self._entries)

    def tenant_for(self, presented: str) -> str | None:
        candidate = presented.encode()
        tenant = None
        for key, key_tenant in self._entries:  # no early exit: timing does not reveal the match
            if hmac.compare_digest(key, candidate):
                tenant = key_tenant
        return tenant


def _fetch_key_text(settings: Settings) -> str:
    """Blocking: may call AWS (Powertools caches the value for api_keys_cache_s)."""
    if settings.api_keys_secret:
        from aws_lambda_powertools.utilities import parameters

        return str(parameters.get_secret(settings.api_keys_secret, max_age=settings.api_keys_cache_s))
    if settings.api_keys_param:
        from aws_lambda_powertools.utilities import parameters

        return str(parameters.get_parameter(settings.api_keys_param, decrypt=True, max_age=settings.api_keys_cache_s))
    return settings.api_keys


_parsed: dict[str, KeyRing] = {}


async def load_keyring(settings: Settings | None = None) -> KeyRing:
    settings = settings or get_settings()
    if settings.api_keys_secret or settings.api_keys_param:
        try:
            text = await asyncio.to_thread(_fetch_key_text, settings)
        except Exception as exc:  # the store is down or the name is wrong
            raise KeyConfigError(
                f"Could not read the API keys from {'Secrets Manager' if settings.api_keys_secret else 'SSM'}: "
                f"{type(exc).__name__}."
            ) from exc
    else:
        text = settings.api_keys
    ring = _parsed.get(text)
    if ring is None:
        ring = KeyRing.parse(text)
        _parsed.clear()  # keep only the current key set
        _parsed[text] = ring
    return ring


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def require_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller's tenant, or 401."""
    key = presented_key(request)
    if key is None:
        raise Unauthorized("Missing API key: send it in 'X-API-Key' or 'Authorization: Bearer <key>'.")
    ring = await load_keyring()
    if not len(ring):
        raise Unauthorized("No API keys are configured on this deployment (set API_KEYS).")
    tenant = ring.tenant_for(key)
    if tenant is None:
        raise Unauthorized("Invalid API key.")
    bind(tenant=tenant)
    return Principal(tenant=tenant)
