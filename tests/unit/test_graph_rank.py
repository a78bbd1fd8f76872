"""Personalized PageRank over the entity-passage graph, on small graphs in memory."""

from __future__ import annotations

import pytest

from gateway_core.models.graph import Subgraph, SubgraphEdge, SubgraphNode
from gateway_core.services import graph_rank


def fact(src: str, dst: str, *sources: str, type: str = "REL") -> SubgraphEdge:
    return SubgraphEdge(src=src, dst=dst, type=type, props={"sources": list(sources)})


# "What is the population of the state where the airport is?" names "airport"; its passage says
# the airport is in Kansas (hop 1), and only the Kansas passage gives the population (hop 2).
# Dense search prefers three look-alike passages to the Kansas one.
TWO_HOPS = Subgraph(
    nodes=[SubgraphNode(id=i, type="Entity", props={}) for i in ("airport", "kansas", "population")],
    edges=[
        fact("airport", "kansas", "p:airport", type="LOCATED_IN"),
        fact("kansas", "population", "p:kansas", type="HAS"),
    ],
)
DENSE = {"p:airport": 0.9, "p:other1": 0.85, "p:other2": 0.84, "p:other3": 0.83, "p:kansas": 0.5}


def walk(subgraph: Subgraph, seeds: dict[str, float], dense: dict[str, float]) -> list[str]:
    rank = graph_rank.personalized_pagerank(graph_rank.build_graph(subgraph), graph_rank.restart_vector(seeds, dense))
    scores = graph_rank.passage_scores(rank)
    return sorted(scores, key=lambda key: -scores[key])


def test_a_passage_reachable_only_through_two_hops_enters_the_top_three():
    assert "p:kansas" in walk(TWO_HOPS, {"airport": 1.0}, DENSE)[:3]


def test_without_seeds_the_walk_keeps_the_dense_order():
    assert walk(Subgraph(), {}, DENSE) == sorted(DENSE, key=lambda key: -DENSE[key])


def test_the_walk_is_a_probability_distribution():
    rank = graph_rank.personalized_pagerank(
        graph_rank.build_graph(TWO_HOPS), graph_rank.restart_vector({"airport": 1.0}, DENSE)
    )
    assert sum(rank.values()) == pytest.approx(1.0)


def test_a_seed_whose_passages_do_not_resemble_the_question_gets_no_restart_mass():
    from gateway_core.services.linking import Seed

    graph = graph_rank.build_graph(Subgraph(edges=[fact("state", "utah", "p:utah"), fact("air", "x", "p:airport")]))
    seeds = [Seed("state", "State", "state", 1.0), Seed("air", "Airport", "airport", 1.0)]
    weights = graph_rank.seed_weights(seeds, graph, {"p:utah": 0.2, "p:airport": 0.9})
    assert weights == {"state": 0.0, "air": 1.0}


def test_passages_outside_the_callers_filters_leave_the_graph():
    graph = graph_rank.restricted(graph_rank.build_graph(TWO_HOPS), {"p:airport"})
    assert graph_rank.passages(graph) == ["p:airport"]


def test_the_path_from_a_seed_follows_the_facts():
    paths = graph_rank.seed_paths(TWO_HOPS, ["airport"])
    assert [(e.src, e.dst) for e in paths["population"]] == [("airport", "kansas"), ("kansas", "population")]
