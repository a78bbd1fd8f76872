"""The graph store: one small interface (`GraphStore`), a FalkorDB and a Neo4j adapter.

Services use `dependencies.graph_store()`; `factory.create_graph_store` picks the adapter.
"""

from ...models.graph import Edge, GraphData, Node, Prop, Subgraph, SubgraphEdge, SubgraphNode
from .base import DeleteResult, Expansion, GraphQueryError, GraphStore, GraphUnavailable, UpsertResult

__all__ = [
    "DeleteResult",
    "Edge",
    "Expansion",
    "GraphData",
    "GraphQueryError",
    "GraphStore",
    "GraphUnavailable",
    "Node",
    "Prop",
    "Subgraph",
    "SubgraphEdge",
    "SubgraphNode",
    "UpsertResult",
]
