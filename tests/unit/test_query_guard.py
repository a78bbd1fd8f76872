"""The /graph/query pre-check: read clauses only, an allow-list of procedures, tricks in comments and strings."""

from __future__ import annotations

import pytest

from gateway_core.errors import BadRequest
from gateway_core.stores.graph.identifiers import assert_read_only, with_row_limit

REFUSED = [
    "MATCH (n) RETURN n // it's fine\nCREATE (m)",  # an apostrophe in a comment does not open a string
    "MATCH (n) RETURN n /* it's */ MERGE (m:X)",
    "LOAD CSV FROM 'https://example.com/x.csv' AS row RETURN row",  # the database would fetch the URL
    "LOAD\tCSV WITH HEADERS FROM 'http://10.0.0.1/' AS row RETURN row",
    "CALL apoc.meta.stats() YIELD labels RETURN labels",  # a "read" apoc procedure is still apoc
    "CALL apoc.load.json('http://127.0.0.1/') YIELD value RETURN value",
    "CALL algo.pageRank('Entity', 'R')",
    "CALL db.meta.stats()",
    "CALL gds.graph.list()",
    "SHOW DATABASES",  # would list every tenant's database
    "MATCH (n) CALL { CREATE (m) } RETURN n",
    "CALL\ndbms.listConfig()",
]

ALLOWED = [
    "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType",
    "CALL db.propertyKeys() YIELD propertyKey RETURN propertyKey",
    "CALL db.index.fulltext.queryNodes('names', 'lin') YIELD node RETURN node",
    "MATCH (n) WHERE n.note = 'LOAD CSV FROM http://x' RETURN n",  # inside a string it is data
    "MATCH (n) RETURN n.show, n.start, n.stop",  # property names, not clauses
]


@pytest.mark.parametrize("cypher", REFUSED)
def test_refused(cypher):
    with pytest.raises(BadRequest):
        assert_read_only(cypher)


@pytest.mark.parametrize("cypher", ALLOWED)
def test_allowed(cypher):
    assert_read_only(cypher)


@pytest.mark.parametrize(
    ("cypher", "bounded"),
    [
        ("MATCH (n) RETURN n", "MATCH (n) RETURN n\nLIMIT 10"),
        ("MATCH (n) RETURN n ORDER BY n.name", "MATCH (n) RETURN n ORDER BY n.name\nLIMIT 10"),
        ("MATCH (n) WITH n LIMIT 3 RETURN n.limit", "MATCH (n) WITH n LIMIT 3 RETURN n.limit\nLIMIT 10"),
        ("MATCH (n) RETURN n // a comment", "MATCH (n) RETURN n // a comment\nLIMIT 10"),
    ],
)
def test_a_query_ending_in_return_gets_the_row_limit(cypher, bounded):
    assert with_row_limit(cypher, 10) == bounded


@pytest.mark.parametrize(
    "cypher",
    [
        "MATCH (n) RETURN n LIMIT 5",  # the caller's own limit stands
        "MATCH (a) RETURN a.id AS x UNION MATCH (b) RETURN b.id AS x",  # a LIMIT would bound one part only
        "CALL db.labels()",  # no RETURN to bound
        "MATCH (n) RETURN 'LIMIT' AS s LIMIT 2",
    ],
)
def test_other_queries_are_left_as_written(cypher):
    assert with_row_limit(cypher, 10) == cypher
