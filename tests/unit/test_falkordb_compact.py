"""The FalkorDB adapter's decoder of compact replies (the adapter's own statements return scalars, lists, maps)."""

from __future__ import annotations

import pytest

from gateway_core.stores.graph.base import GraphQueryError
from gateway_core.stores.graph.falkordb import _plain_value


def test_nested_lists_and_maps_decode_to_plain_values():
    cell = [10, ["s", [2, "中"], "n", [3, 7], "none", [1, None], "ok", [4, "true"], "x", [5, "0.25"],
                 "list", [6, [[2, "a"], [1, None], [5, "1.5"], [6, [[4, "false"]]]]]]]  # fmt: skip
    expected = {"s": "中", "n": 7, "none": None, "ok": True, "x": 0.25, "list": ["a", None, 1.5, [False]]}
    assert _plain_value(cell) == expected


@pytest.mark.parametrize("kind", [0, 7, 8, 9, 11])  # unknown, edge, node, path, point
def test_a_value_type_the_statements_never_return_is_refused(kind):
    with pytest.raises(GraphQueryError):
        _plain_value([kind, "x"])
