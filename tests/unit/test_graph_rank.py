"""Personalized PageRank over the entity-passage graph, on small graphs in memory."""

from __future__ import annotations

import random

import numpy as np
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


Node = tuple[str, str]


def random_graph(size: int, seed: int = 7) -> tuple[graph_rank.EntityPassageGraph, dict[Node, float]]:
    """Weighted random edges, a node without edges and a node only in the restart."""
    rng = random.Random(seed)
    keys = [("p", f"p{i}") if i % 3 == 0 else ("e", f"e{i}") for i in range(size)]
    graph = graph_rank.EntityPassageGraph()
    for _ in range(3 * size):
        a, b = rng.sample(keys, 2)
        graph.connect(a, b, rng.uniform(0.5, 2.0))
    graph.adjacency[("e", "stranded")] = {}
    restart = {key: rng.random() for key in rng.sample(keys, 10)}
    restart |= {("e", "stranded"): 0.3, ("p", "restart only"): 0.5}
    total = sum(restart.values())
    return graph, {key: mass / total for key, mass in restart.items()}


def exact_fixed_point(
    graph: graph_rank.EntityPassageGraph, restart: dict[Node, float], damping: float
) -> dict[Node, float]:
    """x = (1 - damping) * restart + damping * (walk @ x + mass of the stranded nodes * restart), solved."""
    nodes = list(dict.fromkeys([*graph.adjacency, *restart]))
    index = {node: i for i, node in enumerate(nodes)}
    walk = np.zeros((len(nodes), len(nodes)))
    for node, neighbours in graph.adjacency.items():
        for neighbour, weight in neighbours.items():
            walk[index[neighbour], index[node]] = weight / sum(neighbours.values())
    teleport = np.array([restart.get(node, 0.0) for node in nodes])
    stranded = np.array([0.0 if graph.adjacency.get(node) else 1.0 for node in nodes])
    system = np.eye(len(nodes)) - damping * (walk + np.outer(teleport, stranded))
    return dict(zip(nodes, np.linalg.solve(system, (1 - damping) * teleport).tolist(), strict=True))


def test_the_walk_on_a_small_graph_reaches_the_exact_fixed_point():
    graph, restart = random_graph(graph_rank.DENSE_UP_TO // 3)
    assert len(graph.adjacency) + 1 <= graph_rank.DENSE_UP_TO
    rank = graph_rank.personalized_pagerank(graph, restart)
    assert rank == pytest.approx(exact_fixed_point(graph, restart, graph_rank.DAMPING), abs=1e-9, rel=0)


def test_the_walk_on_a_graph_above_the_dense_size_reaches_the_exact_fixed_point():
    graph, restart = random_graph(2 * graph_rank.DENSE_UP_TO)
    assert len(graph.adjacency) > graph_rank.DENSE_UP_TO
    rank = graph_rank.personalized_pagerank(graph, restart)
    assert rank == pytest.approx(exact_fixed_point(graph, restart, graph_rank.DAMPING), abs=1e-9, rel=0)


def test_the_walk_honours_the_damping():
    graph, restart = random_graph(graph_rank.DENSE_UP_TO // 3)
    rank = graph_rank.personalized_pagerank(graph, restart, damping=0.3)
    assert rank == pytest.approx(exact_fixed_point(graph, restart, 0.3), abs=1e-9, rel=0)
