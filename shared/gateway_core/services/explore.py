"""Browse the graph by entity (the console's graph view): find entities by name, show one's neighbourhood.

`find_entities` links the search text exactly as `/retrieve` links a question (`linking.link`, the
name-key index, never a scan). `neighbourhood` is the graph store's `expand` from one entity (or, for an
id a write-time merge absorbed, from its survivor), plus the passages its nodes and edges were extracted
from (their `sources`), read from the vector store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..clients.embeddings import get_embedder
from ..deadline import current as current_deadline
from ..models.graph import Subgraph
from ..models.search import SearchFilter
from .graph import require_graph
from .linking import link
from .retrieve import reason
from .search import search

MAX_PASSAGES = 100  # source passages read for one neighbourhood
NEIGHBOURHOOD_LIMIT = 150  # facts drawn at most (the view has to stay readable)
NEIGHBOURHOOD_FAN_OUT = 25


@dataclass(frozen=True)
class Entity:
    id: str
    name: str
    type: str
    key: str
    score: float


@dataclass
class Neighbourhood:
    center: str  # the entity drawn: the one asked for, or the survivor of the merge that absorbed it
    subgraph: Subgraph
    requested: str = ""  # the id asked for
    passages: dict[str, dict[str, Any]] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)


async def find_entities(tenant: str, text: str, *, limit: int = 20) -> list[Entity]:
    """The entities `text` names, best first (the same linking as `/retrieve`)."""
    graph = require_graph()
    seeds = (await link(graph, tenant, text, timeout=current_deadline().timeout()))[:limit]
    if not seeds:
        return []
    found = await graph.expand(
        tenant, ids=[seed.id for seed in seeds], max_hops=0, timeout=current_deadline().timeout()
    )
    types = {node.id: node.type for node in found.nodes}
    return [Entity(s.id, s.name, types.get(s.id, "Entity"), s.key, round(s.score, 4)) for s in seeds]


def _sources(props: dict[str, Any]) -> list[str]:
    sources = props.get("sources") or []
    return [str(source) for source in sources] if isinstance(sources, list) else []


def _merged_from(props: dict[str, Any]) -> list[str]:
    merged = props.get("merged_from") or []
    return [str(item) for item in merged] if isinstance(merged, list) else []


async def neighbourhood(tenant: str, entity_id: str, *, hops: int = 1) -> Neighbourhood | None:
    """The entity, its facts and its neighbours' up to `hops` out, with their source passages; None if unknown.

    An id that a write-time merge absorbed opens the node that absorbed it (`center` is then the survivor's
    id, `requested` the id asked for), as the graph store's `expand` resolves it through `merged_from`."""
    graph = require_graph()
    subgraph = await graph.expand(
        tenant,
        ids=[entity_id],
        max_hops=hops,
        fan_out=NEIGHBOURHOOD_FAN_OUT,
        limit=NEIGHBOURHOOD_LIMIT,
        timeout=current_deadline().timeout(),
    )
    center = next((node for node in subgraph.nodes if node.id == entity_id), None) or next(
        (node for node in subgraph.nodes if entity_id in _merged_from(node.props)), None
    )  # an id a write-time merge absorbed: `expand` answered with the survivor, which is shown
    if center is None:
        return None
    wanted: list[str] = []
    for props in [center.props, *(edge.props for edge in subgraph.edges), *(n.props for n in subgraph.nodes)]:
        wanted += [source for source in _sources(props) if source not in wanted]
    result = Neighbourhood(center=center.id, subgraph=subgraph, requested=entity_id)
    if wanted:
        try:
            result.passages = await passages(tenant, wanted[:MAX_PASSAGES], about=str(center.props.get("name") or ""))
        except Exception as exc:  # noqa: BLE001 - the facts stand without their passages
            result.degraded.append(f"passages: {reason(exc)}")
    return result


async def passages(tenant: str, chunk_ids: list[str], *, about: str) -> dict[str, dict[str, Any]]:
    """Chunk id -> {doc_id, chunk_index, text} for those of these chunks that exist in the tenant."""
    vector = await get_embedder().embed_query(about or " ".join(chunk_ids[:3]))
    hits = await search(tenant, about, top_k=len(chunk_ids), filters=SearchFilter(chunk_ids=chunk_ids), vector=vector)
    found: dict[str, dict[str, Any]] = {}
    for hit in hits:
        chunk_id = str(hit.payload.get("chunk_id") or hit.id)
        found[chunk_id] = {
            "chunk_id": chunk_id,
            "doc_id": hit.payload.get("doc_id"),
            "chunk_index": hit.payload.get("chunk_index"),
            "text": hit.payload.get("text"),
        }
    return found
