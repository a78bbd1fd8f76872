"""Lexical terms: what the BM25 sparse vectors are made of."""

from __future__ import annotations

from gateway_core.services import lexical


def test_chinese_text_becomes_character_bigrams():
    assert lexical.tokens("研發實驗室") == ["研發", "發實", "實驗", "驗室"]


def test_latin_words_are_normalized_like_entity_names():
    assert lexical.tokens("Ｈsinchu LAB, Zürich") == ["hsinchu", "lab", "zurich"]


def test_a_repeated_term_weighs_more_but_saturates():
    once = lexical.passage_terms("pump")[lexical.term_index("pump")]
    many = lexical.passage_terms("pump " * 50)[lexical.term_index("pump")]
    assert once < many < lexical.K1 + 1
