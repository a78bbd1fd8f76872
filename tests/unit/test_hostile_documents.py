"""Documents built to break the parser are refused with a reason (a 422 for the ingest record), never a crash."""

from __future__ import annotations

import pytest

from gateway_core.services.documents import UndecodableDocument, parse_document

HOSTILE_JSONL = {
    "100k nested arrays": (b"[" * 100_000, r"line 1 cannot be read \(nested too deeply\)"),
    "a 5000-digit number": (b'{"text": ' + b"9" * 5000 + b"}", "line 1 cannot be read"),
    "an escaped NUL": (b'{"text": "ok"}\n{"text": "a\\u0000b"}', "line 2 contains a NUL character or a lone surrogate"),
    "a lone surrogate": (b'{"text": "a\\ud800"}', "line 1 contains a NUL character or a lone surrogate"),
}


@pytest.mark.parametrize("data, reason", HOSTILE_JSONL.values(), ids=HOSTILE_JSONL.keys())
def test_hostile_json_lines_are_refused_with_the_line(data: bytes, reason: str) -> None:
    with pytest.raises(UndecodableDocument, match=reason):
        parse_document(data, filename="a.jsonl")


def test_a_surrogate_pair_in_json_lines_is_text() -> None:
    assert parse_document(b'{"text": "ok \\ud83d\\ude00"}', filename="a.jsonl").text == "ok 😀"
