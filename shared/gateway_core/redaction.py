"""Secrets out of anything rendered: URLs, error messages, log lines.

`redact_url` hides a URL's userinfo (`redis://user:pass@host` -> `redis://***@host`) and the values of
secret-looking query keys (`?api_key=...`); `redact_text` does the same for every URL inside free text,
and also hides bearer tokens, `sk-...` style API keys and `password=...` / `"api_key": "..."` pairs.
Both are pure string functions (no URL parsing that could raise), so they are safe on any text.
"""

from __future__ import annotations

import re

MASK = "***"

_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/?#@'\"<>]*(?:@[^\s/?#@'\"<>]*)*@")
_SECRET_KEY = r"(?:api[_\-]?key|apikey|key|token|access[_\-]?token|auth|authorization|password|passwd|pwd|pass|secret|client[_\-]?secret|sig|signature|credential|credentials)"
_QUERY_SECRET = re.compile(rf"(?P<key>[?&;]{_SECRET_KEY}=)[^&#\s'\"<>]*", re.IGNORECASE)
_PAIR_KEY = r"(?:api[_\-]?key|apikey|access[_\-]?token|token|password|passwd|secret|client[_\-]?secret)"
_PAIR_SECRET = re.compile(rf"(?P<key>\b{_PAIR_KEY}[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;&}}\]]+", re.IGNORECASE)
_BEARER = re.compile(r"(?P<key>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=\-]{6,}", re.IGNORECASE)
# Provider keys (`sk-...`, `sk-proj-...`): long and with a digit, so `sk-learn-guide` stays readable.
_API_KEY = re.compile(r"\b(?:sk|pk|rk)-(?=[A-Za-z_\-]*\d)[A-Za-z0-9_\-]{20,}")


def redact_url(url: str | None) -> str:
    """The URL without credentials: userinfo and secret query values become `***`."""
    if not url:
        return ""
    url = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", url)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('key')}{MASK}", url)


def redact_text(text: str) -> str:
    """Free text (an error message, a log line) with URL credentials, tokens and keys masked."""
    text = redact_url(text)
    text = _BEARER.sub(lambda m: f"{m.group('key')}{MASK}", text)
    text = _API_KEY.sub(MASK, text)
    return _PAIR_SECRET.sub(lambda m: f"{m.group('key')}{MASK}", text)


__all__ = ["MASK", "redact_text", "redact_url"]
