"""Lexical (BM25) search and the `hybrid` preset, on both embedded engines, through the real handler."""

from __future__ import annotations

import pytest

from infra.local.lambda_events import http_event
from tests.fixtures.environment import reconfigure
from tests.handlers import invoke

KEY = "test-key-acme"
PASSAGES = {
    "code": "Replacement filters carry the part number QX-7731 on their frame.",
    "zh": "北風熱能公司的研發實驗室位於新竹，負責開發新一代靜音熱泵。",
    "pumps": "Our heat pumps are quiet enough for apartments and small offices.",
    "lunch": "The staff canteen opens at noon every working day.",
}


def call(path: str, body: dict) -> dict:
    response = invoke("retrieve", http_event("POST", path, body, api_key=KEY))
    assert response.status == 200, response.text
    return response.json()


@pytest.fixture(params=["edge", "client"])
def corpus(request, monkeypatch):
    reconfigure(monkeypatch, QDRANT_LOCAL_ENGINE=request.param)
    call("/index/chunks", {"chunks": [{"doc_id": k, "chunk_id": k, "text": t} for k, t in PASSAGES.items()]})


def lexical_hits(query: str) -> list[str]:
    hits = call("/retrieve", {"query": query, "top_k": 2, "preset": "hybrid"})["hits"]
    return [hit["citations"][0]["chunk_id"] for hit in hits if "lexical" in hit["signals"]]


def test_an_exact_part_number_is_found_by_its_words(corpus):
    assert lexical_hits("Which filter is QX-7731?")[0] == "code"


def test_a_chinese_question_is_matched_on_character_bigrams(corpus):
    assert lexical_hits("研發實驗室在哪裡？")[0] == "zh"


def test_the_hybrid_preset_never_consults_the_graph(corpus):
    assert call("/retrieve", {"query": "QX-7731", "preset": "hybrid"})["degraded"] == []
