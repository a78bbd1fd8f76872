"""redact_url / redact_text: credentials never survive rendering."""

from __future__ import annotations

import pytest

from gateway_core.redaction import redact_text, redact_url

URLS = {
    "redis://user:s3cret@db:6379/0": "redis://***@db:6379/0",
    "redis://:s3cret@127.0.0.1:6379": "redis://***@127.0.0.1:6379",
    "neo4j+s://neo4j:p%40s3cret@x.databases.neo4j.io": "neo4j+s://***@x.databases.neo4j.io",
    "http://a:b@c:s3cret@host/v1": "http://***@host/v1",
    "https://api.example.com/v1?api_key=s3cret&x=1": "https://api.example.com/v1?api_key=***&x=1",
    "https://api.example.com/v1?x=1&access_token=s3cret#f": "https://api.example.com/v1?x=1&access_token=***#f",
    "http://127.0.0.1:11434/v1": "http://127.0.0.1:11434/v1",
    "bolt://db:7687": "bolt://db:7687",
}


@pytest.mark.parametrize("url, expected", URLS.items())
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_text_masks_urls_tokens_keys_and_pairs() -> None:
    text = (
        "Error code: 401 at http://u:s3cret@h/v1 with Bearer abcdef123456, key sk-proj-s3cret1234567890abcdef, "
        "password=s3cret and {'api_key': 's3cret'}"
    )
    assert "s3cret" not in redact_text(text)
    assert redact_text(text).startswith("Error code: 401 at http://***@h/v1 with Bearer ***")


def test_ordinary_text_is_untouched() -> None:
    text = (
        "FalkorDB refused the query: errMsg: Invalid input 'RETURN' line: 1, column: 10; tokens: 42; "
        "max_tokens=100; No document 'sk-learn-guide.md'; see https://example.com/a?page=2"
    )
    assert redact_text(text) == text
