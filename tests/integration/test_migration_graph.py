"""The predecessor's graph payloads through the real extract handler, on FalkorDB and a fake LLM.

Its schema: nodes {id, type, props: [{key, value}]} with the name inside props, property keys with spaces or
hyphens, types with spaces; its ingestor calls /graph/extract with `strict: false`."""

from __future__ import annotations

import time

import pytest

from infra.local.lambda_events import http_event
from infra.local.openai_server import Reply
from tests.fixtures.llm_server import provider_env
from tests.handlers import invoke

ACME = "test-key-acme"
TEXT = "Ann Lee works at Acme Corp as a Staff Engineer since 2019; she knows Python."
# An answer in the predecessor's schema, as its extraction prompt asked for it.
PREDECESSOR_ANSWER = {
    "nodes": [
        {"id": "ann", "type": "Person", "props": [{"key": "name", "value": "Ann Lee"}]},
        {"id": "acme", "type": "Company", "props": [{"key": "name", "value": "Acme Corp"}]},
        {
            "id": "staff-engineer",
            "type": "Job Title",
            "props": [{"key": "name", "value": "Staff Engineer"}, {"key": "start-date", "value": "2019"}],
        },
        {"id": "python", "type": "Skill", "props": [{"key": "name", "value": "Python"}]},
    ],
    "edges": [
        {"src": "ann", "dst": "acme", "type": "WORKS_AT", "props": [{"key": "job title", "value": "Staff Engineer"}]},
        {"src": "ann", "dst": "staff-engineer", "type": "HAS JOB TITLE", "props": []},
        {"src": "ann", "dst": "python", "type": "HAS_SKILL", "props": []},
    ],
}
UPSERT = {
    "nodes": [
        {
            "id": "p:ann",
            "type": "Person",
            "props": [{"key": "name", "value": "Ann Lee"}, {"key": "job title", "value": "Staff Engineer"}],
        },
        {"id": "c:acme", "type": "Company", "props": [{"key": "name", "value": "Acme Corp"}]},
        {"id": "t:staff", "type": "Job Title", "props": [{"key": "name", "value": "Staff Engineer"}]},
    ],
    "edges": [
        {"src": "p:ann", "dst": "c:acme", "type": "WORKS_AT", "props": [{"key": "start-date", "value": "2019-04-01"}]},
        {"src": "p:ann", "dst": "t:staff", "type": "HAS JOB TITLE"},
    ],
}


def graph_call(path: str, body: object):
    return invoke("extract", http_event("POST", f"/graph/{path}", body, api_key=ACME))


def rows(query: str) -> list[dict]:
    response = graph_call("query", {"query": query})
    assert response.status == 200, response.text
    return response.json()["records"]


@pytest.fixture
def with_graph(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")


@pytest.fixture
def extractor(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha"))
    return fake_llm


@pytest.fixture
def upserted(with_graph):
    response = graph_call("upsert", {"data": UPSERT, "sources": ["handbook.md#0"]})
    assert response.status == 200, response.text
    return response.json()


# --- /graph/upsert -------------------------------------------------------------------------------------


def test_upsert_of_the_predecessor_shape_is_accepted(upserted):
    assert (upserted["nodes"], upserted["edges"]) == (3, 2)


def test_a_name_inside_props_becomes_the_nodes_name(upserted):
    assert rows("MATCH (n:Entity {id: 'p:ann'}) RETURN n.name AS name") == [{"name": "Ann Lee"}]


def test_an_explicit_name_wins_over_props(with_graph):
    node = {"id": "p:x", "type": "Person", "name": "Explicit", "props": [{"key": "name", "value": "From props"}]}
    graph_call("upsert", {"data": {"nodes": [node]}})
    assert rows("MATCH (n:Entity {id: 'p:x'}) RETURN n.name AS name") == [{"name": "Explicit"}]


def test_spaced_property_keys_are_stored_as_given(upserted):
    assert rows("MATCH (n:Entity {id: 'p:ann'}) RETURN n.`job title` AS v") == [{"v": "Staff Engineer"}]


def test_hyphenated_edge_property_keys_are_stored_as_given(upserted):
    assert rows("MATCH ()-[r:WORKS_AT]->() RETURN r.`start-date` AS v") == [{"v": "2019-04-01"}]


def test_a_spaced_node_type_becomes_an_identifier_label(upserted):
    assert rows("MATCH (n:Job_Title) RETURN n.type AS type") == [{"type": "Job_Title"}]


def test_a_spaced_node_type_keeps_its_original_text(upserted):
    assert rows("MATCH (n:Job_Title) RETURN n.original_type AS t") == [{"t": "Job Title"}]


def test_a_spaced_relation_type_becomes_an_identifier(upserted):
    assert rows("MATCH ()-[r]->(:Job_Title) RETURN type(r) AS t, r.original_type AS o") == [
        {"t": "HAS_JOB_TITLE", "o": "HAS JOB TITLE"}
    ]


def test_a_key_that_only_looks_like_cypher_is_inert_text(with_graph):
    node = {"id": "n", "type": "Person", "props": [{"key": "a}) SET n.pwned = 1 //", "value": 1}]}
    graph_call("upsert", {"data": {"nodes": [node]}})
    assert rows("MATCH (n:Entity) RETURN n.pwned AS pwned, n.`a}) SET n.pwned = 1 //` AS key") == [
        {"pwned": None, "key": 1}
    ]


def test_a_key_with_a_backtick_is_422(with_graph):
    node = {"id": "n", "type": "Person", "props": [{"key": "a` SET n.pwned = 1 //", "value": 1}]}
    assert graph_call("upsert", {"data": {"nodes": [node]}}).status == 422


# --- /graph/extract ------------------------------------------------------------------------------------


def test_extract_keeps_every_node_of_a_predecessor_shaped_answer(extractor):
    extractor.script("alpha", Reply(PREDECESSOR_ANSWER))
    data = graph_call("extract", {"context": TEXT}).json()["data"]
    assert {n["id"]: n["name"] for n in data["nodes"]} == {
        "ann": "Ann Lee",
        "acme": "Acme Corp",
        "staff-engineer": "Staff Engineer",
        "python": "Python",
    }


def test_extract_keeps_every_edge_of_a_predecessor_shaped_answer(extractor):
    extractor.script("alpha", Reply(PREDECESSOR_ANSWER))
    data = graph_call("extract", {"context": TEXT}).json()["data"]
    assert sorted(e["type"] for e in data["edges"]) == ["HAS_JOB_TITLE", "HAS_SKILL", "WORKS_AT"]


def test_extract_of_a_predecessor_shaped_answer_drops_nothing(extractor):
    extractor.script("alpha", Reply(PREDECESSOR_ANSWER))
    assert graph_call("extract", {"context": TEXT}).json()["dropped"] == []


def test_strict_extract_lists_each_dropped_node_with_its_reason(extractor):
    answer = {"nodes": [*PREDECESSOR_ANSWER["nodes"], {"id": "bad", "type": "Per.son"}], "edges": []}
    extractor.script("alpha", Reply(answer))
    dropped = graph_call("extract", {"context": TEXT, "strict": True}).json()["dropped"]
    assert [(d["kind"], d["id"], "identifier" in d["reason"]) for d in dropped] == [("node", "bad", True)]


def test_strict_extract_lists_a_dangling_edge(extractor):
    answer = {"nodes": PREDECESSOR_ANSWER["nodes"], "edges": [{"src": "ann", "dst": "ghost", "type": "KNOWS"}]}
    extractor.script("alpha", Reply(answer))
    dropped = graph_call("extract", {"context": TEXT}).json()["dropped"]
    assert [(d["kind"], d["dst"]) for d in dropped] == [("edge", "ghost")]


MESSY = {
    "nodes": [
        {
            "id": "ann",
            "type": "Person",
            "props": [{"key": "name", "value": "Ann Lee"}, {"key": "tenant", "value": "x"}],
        },
        {"id": "acme", "type": "Company/Org", "props": {"name": "Acme Corp", "address": {"city": "Taipei"}}},
        {
            "id": "tags",
            "type": "Topic",
            "props": [{"key": "name", "value": "Tags"}, {"key": "list", "value": [1, "a"]}],
        },
    ],
    "edges": [{"src": "ann", "dst": "acme", "type": "works at!"}],
}


def test_tolerant_extract_keeps_nodes_that_strict_would_drop(extractor):
    extractor.script("alpha", Reply(MESSY))
    data = graph_call("extract", {"context": TEXT, "strict": False}).json()["data"]
    assert [n["id"] for n in data["nodes"]] == ["ann", "acme", "tags"]


def test_tolerant_extract_keeps_the_edge_with_a_fallback_type(extractor):
    extractor.script("alpha", Reply(MESSY))
    data = graph_call("extract", {"context": TEXT, "strict": False}).json()["data"]
    assert [(e["type"], e["props"]) for e in data["edges"]] == [
        ("RELATED_TO", [{"key": "original_type", "value": "works at!"}])
    ]


def test_tolerant_extract_lists_the_props_it_left_out(extractor):
    extractor.script("alpha", Reply(MESSY))
    dropped = graph_call("extract", {"context": TEXT, "strict": False}).json()["dropped"]
    assert [(d["kind"], d["of"], d["key"]) for d in dropped] == [("prop", "ann", "tenant")]


def test_strict_extract_drops_the_same_nodes_with_reasons(extractor):
    extractor.script("alpha", Reply(MESSY))
    dropped = graph_call("extract", {"context": TEXT, "strict": True, "min_nodes": 0}).json()["dropped"]
    assert sorted(d["id"] for d in dropped if d["kind"] == "node") == ["acme", "ann", "tags"]


def test_an_answer_whose_nodes_are_all_dropped_says_why(extractor):
    extractor.script("alpha", Reply({"nodes": [{"id": "x", "type": "1st"}], "edges": []}))
    response = graph_call("extract", {"context": TEXT})
    assert "'x'" in response.json()["details"]["providers"]["alpha"]


def test_the_extracted_graph_upserts_unchanged(extractor, with_graph):
    extractor.script("alpha", Reply(PREDECESSOR_ANSWER))
    data = graph_call("extract", {"context": TEXT, "strict": False}).json()["data"]
    assert graph_call("upsert", {"data": data}).json()["nodes"] == 4
