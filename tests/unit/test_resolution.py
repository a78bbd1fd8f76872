"""The rules of write-time entity resolution that need no store: relation types, types, numbers."""

from __future__ import annotations

import pytest

from gateway_core.models.graph import Edge
from gateway_core.services.resolution import (
    canonical_edges,
    canonical_relation,
    compatible,
    same_numbers,
    same_words,
)


@pytest.mark.parametrize("kind", ["works_at", "worksAt", "Works_At", "WORKS__AT", "WorksAt", "_works_at_"])
def test_relation_type_variants_have_one_canonical_form(kind):
    assert canonical_relation(kind) == "WORKS_AT"


def test_a_relation_type_in_a_caseless_script_is_kept():
    assert canonical_relation("創立") == "創立"


def test_a_type_that_would_not_stay_an_identifier_is_kept_as_given():
    assert canonical_relation("_1st") == "_1st"


def test_variants_of_one_fact_become_one_edge_with_both_sources():
    edges = [
        Edge(src="a", dst="b", type="works at", sources=["d#0"]),
        Edge(src="a", dst="b", type="WORKS_AT", sources=["d#1"]),
    ]
    assert [(e.type, e.sources) for e in canonical_edges(edges)] == [("WORKS_AT", ["d#0", "d#1"])]


def test_a_changed_relation_type_keeps_the_text_it_was_given():
    (edge,) = canonical_edges([Edge(src="a", dst="b", type="worksAt")])
    assert {p.key: p.value for p in edge.props} == {"original_type": "worksAt"}


def test_an_untyped_entity_is_compatible_with_any_type():
    assert compatible("Entity", "Person") and compatible("Company", "Entity")


def test_two_different_types_are_not_compatible():
    assert not compatible("Country", "Person")


def test_names_with_other_numbers_are_never_similar_enough():
    assert not same_numbers("Windows 7", "Windows 8")


def test_names_with_the_same_numbers_may_be_merged():
    assert same_numbers("Apollo 11 mission", "Apollo-11")


def test_a_plural_an_article_or_an_added_qualifier_keeps_the_same_words():
    assert same_words("Waterfalls", "the waterfall") and same_words("Toronto, Ontario, Canada", "Toronto, Ontario")


def test_a_different_word_is_another_name():
    assert not same_words("American Basketball Association", "National Basketball Association")
