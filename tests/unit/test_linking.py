"""Linking a question to entity names: keys, n-grams and seed scores (no store involved)."""

from __future__ import annotations

from gateway_core.services.linking import COMMON_NOUN_WEIGHT, seeds_from
from gateway_core.stores.graph.base import LinkedName
from gateway_core.stores.graph.names import name_key, question_spans, surface_words, unicode_words


def keys(question: str) -> set[str]:
    return {span.key for span in question_spans(question)}


def test_keys_ignore_case_width_accents_punctuation_and_spacing():
    assert name_key(" Ｎorthwind\tTHERMAL, Inc. ") == name_key("northwind thermal inc") == "northwind thermal inc"


def test_accents_of_latin_letters_are_dropped():
    assert name_key("Aschenbrödel") == name_key("Aschenbrodel")


def test_kana_voicing_marks_are_kept():
    assert name_key("ガス") != name_key("カス")


def test_word_ngrams_respect_word_boundaries():
    assert "hat" not in keys("What did Jonathan say?")


def test_word_ngrams_cover_multiword_names():
    assert "dodge city regional airport" in keys("Where is Dodge City Regional Airport?")


def test_chinese_questions_yield_character_ngrams():
    assert "北風熱能" in keys("北風熱能在哪裡？")


def test_mixed_script_questions_yield_both_kinds():
    assert {"林小明", "northwind thermal"} <= keys("林小明 founded Northwind Thermal")


def test_surface_words_keep_case_and_align_with_the_key():
    question = "Who was in charge of the State of Ｔexas?"
    assert [w.casefold() for w in surface_words(question)] == name_key(question).split()


def test_ascii_text_splits_into_the_same_words_as_the_unicode_rules():
    """The ASCII shortcut agrees with the general rules on every ASCII character, alone and between letters."""
    text = "".join(f"a{chr(code)}b{chr(code)}" for code in range(128)) + " Dr. O'Neil_Smith-Jones (R&D) x86_64"
    assert surface_words(text) == unicode_words(text)


def test_a_longer_match_hides_the_shorter_ones_inside_it():
    spans = question_spans("When was New York City founded?")
    found = [LinkedName("new york city", "c:nyc", "New York City", 1), LinkedName("york", "c:york", "York", 1)]
    assert [seed.id for seed in seeds_from(spans, found)] == ["c:nyc"]


def test_an_entity_mentioned_in_fewer_passages_scores_higher():
    spans = question_spans("Kansas and Texas")
    found = [LinkedName("kansas", "s:ks", "Kansas", 1), LinkedName("texas", "s:tx", "Texas", 40)]
    assert [seed.id for seed in seeds_from(spans, found)] == ["s:ks", "s:tx"]


def test_a_name_written_in_lower_case_counts_as_a_common_noun():
    question = "the state where Shringarpur is"
    found = [LinkedName("state", "x:state", "State", 1), LinkedName("shringarpur", "p:s", "Shringarpur", 1)]
    scores = {seed.id: seed.score for seed in seeds_from(question_spans(question), found, surface_words(question))}
    assert scores["x:state"] == COMMON_NOUN_WEIGHT * scores["p:s"]
