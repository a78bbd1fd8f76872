"""Node ids that differ only by surrounding whitespace or Unicode normalization are one node."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway_core.models.graph import Edge, GraphData, Node


def test_whitespace_and_normalization_variants_of_an_id_are_the_same_id() -> None:
    variants = ["café:1", " café:1", "café:1\n", "cafe\u0301:1", "\tcafe\u0301:1 "]
    assert {Node(id=v, type="Place").id for v in variants} == {"café:1"}


def test_edge_ends_are_normalized_like_node_ids() -> None:
    edge = Edge(src=" cafe\u0301:1", dst="北風 ", type="NEAR")
    assert (edge.src, edge.dst) == ("café:1", "北風")


def test_an_id_of_only_whitespace_is_refused() -> None:
    with pytest.raises(ValidationError, match="id"):
        GraphData.model_validate({"nodes": [{"id": "   ", "type": "Place"}]})
