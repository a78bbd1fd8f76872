"""The S3 key -> (tenant, document id) rule, on the predecessor's layouts."""

from __future__ import annotations

import pytest

from gateway_core.ingest_events import tenant_and_doc

SEVERAL = frozenset({"acme", "globex", "default"})


@pytest.mark.parametrize(
    ("key", "tenants", "expected"),
    [
        ("acme/handbook/intro.md", SEVERAL, ("acme", "handbook/intro.md")),
        ("handbook/intro.md", SEVERAL, ("default", "handbook/intro.md")),
        ("intro.md", SEVERAL, ("default", "intro.md")),
        ("handbook/intro.md", frozenset({"acme"}), ("acme", "handbook/intro.md")),
        ("acme/intro.md", frozenset({"acme"}), ("acme", "intro.md")),
        ("acme/", SEVERAL, ("default", "acme/")),
        ("handbook/intro.md", frozenset(), ("default", "handbook/intro.md")),
        ("Acme/intro.md", SEVERAL, ("default", "Acme/intro.md")),
    ],
)
def test_key_layouts(key, tenants, expected):
    assert tenant_and_doc(key, tenants) == expected
