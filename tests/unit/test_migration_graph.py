"""The predecessor's graph shapes at the model and validation level: names in props, spaced keys and types."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway_core.models.graph import Edge, Node, as_identifier
from gateway_core.services.extract import validate_graph


@pytest.mark.parametrize(
    ("text", "identifier"),
    [
        ("Job Title", "Job_Title"),
        ("HAS JOB TITLE", "HAS_JOB_TITLE"),
        ("part-of", "part_of"),
        ("  works  -  at ", "works_at"),
        ("工作 地點", "工作_地點"),
        ("Person", "Person"),
    ],
)
def test_the_one_type_rule(text, identifier):
    assert as_identifier(text) == identifier


def test_a_name_in_props_becomes_the_name():
    assert Node.model_validate({"id": "a", "type": "Person", "props": [{"key": "name", "value": "Ann"}]}).name == "Ann"


def test_a_name_in_props_is_not_stored_twice():
    node = Node.model_validate({"id": "a", "type": "Person", "props": [{"key": "name", "value": "Ann"}]})
    assert node.props == []


def test_an_explicit_name_wins():
    node = Node.model_validate({"id": "a", "type": "T", "name": "Ann", "props": [{"key": "name", "value": "Bo"}]})
    assert node.name == "Ann"


def test_a_numeric_name_in_props_becomes_text():
    assert Node.model_validate({"id": "a", "type": "Year", "props": [{"key": "name", "value": 2019}]}).name == "2019"


def test_props_as_an_object_are_accepted():
    node = Node.model_validate({"id": "a", "type": "Person", "props": {"name": "Ann", "job title": "CTO"}})
    assert [(p.key, p.value) for p in node.props] == [("job title", "CTO")]


def test_a_normalized_node_type_keeps_the_original_text():
    node = Node(id="a", type="Job Title")
    assert (node.type, [(p.key, p.value) for p in node.props]) == ("Job_Title", [("original_type", "Job Title")])


def test_a_normalized_edge_type_keeps_the_original_text():
    edge = Edge(src="a", dst="b", type="HAS JOB TITLE")
    assert (edge.type, [(p.key, p.value) for p in edge.props]) == (
        "HAS_JOB_TITLE",
        [("original_type", "HAS JOB TITLE")],
    )


def test_a_type_the_rule_cannot_fix_is_refused_with_the_callers_text():
    with pytest.raises(ValidationError, match="'Job.Title'"):
        Node(id="a", type="Job.Title")


def test_name_stays_reserved_on_edges():
    with pytest.raises(ValidationError, match="reserved"):
        Edge(src="a", dst="b", type="T", props=[{"key": "name", "value": "x"}])


def test_validation_lists_a_node_that_is_not_an_object():
    dropped = validate_graph({"nodes": ["just text"], "edges": []}, strict=True).dropped
    assert [(d["kind"], d["reason"]) for d in dropped] == [("node", "not a JSON object")]


def test_validation_lists_a_duplicate_node():
    answer = {"nodes": [{"id": "a", "type": "T"}, {"id": "a", "type": "U"}]}
    assert [d["id"] for d in validate_graph(answer, strict=True).dropped] == ["a"]


def test_an_edge_may_name_its_endpoints_by_node_name():
    answer = {
        "nodes": [
            {"id": "p:ann", "type": "Person", "props": [{"key": "name", "value": "Ann Lee"}]},
            {"id": "c", "type": "Co"},
        ],
        "edges": [{"src": "Ann Lee", "dst": "c", "type": "WORKS_AT"}],
    }
    assert [e.src for e in validate_graph(answer, strict=True).graph.edges] == ["p:ann"]


def test_tolerant_mode_keeps_an_edge_to_a_node_the_answer_did_not_list():
    answer = {"nodes": [{"id": "a", "type": "T"}], "edges": [{"src": "a", "dst": "elsewhere", "type": "LINKS"}]}
    assert len(validate_graph(answer, strict=False).graph.edges) == 1


def test_tolerant_mode_stores_a_nested_value_as_json_text():
    answer = {"nodes": [{"id": "a", "type": "T", "props": {"address": {"city": "Taipei"}}}]}
    assert validate_graph(answer, strict=False).graph.nodes[0].props[0].value == '{"city": "Taipei"}'


def test_tolerant_mode_makes_a_mixed_list_text():
    answer = {"nodes": [{"id": "a", "type": "T", "props": [{"key": "codes", "value": [1, "b"]}]}]}
    assert validate_graph(answer, strict=False).graph.nodes[0].props[0].value == ["1", "b"]
