"""Entity resolution at write time: the same entity, written from several chunks, documents or languages, is one node.

Every graph write (`/graph/upsert`, ingestion's facts) goes through `write`, which plans the batch
against what is stored, then writes it through the graph store:

1. **Relation types** are canonical (`canonical_relation`): camelCase is split, every run of
   characters that are not letters or digits becomes one `_`, and the result is upper case, so
   `works_at`, `worksAt`, `Works At` and `WORKS-AT` are the one type `WORKS_AT` and one fact is one
   edge. The text as given is kept in the edge's `original_type` property. A type that would not
   stay an identifier is kept as given.
2. **Ids**: an id that is stored stays that node. An id that a merge absorbed is written to the
   node that absorbed it (its `merged_from` list holds it), so callers' ids stay addressable.
3. **Names and aliases**: a new id whose name or alias has the normalized key (`names.name_key`:
   width, case, accents, punctuation, spacing) of a stored node's name or alias, of a compatible
   type (the same type, or either is the untyped `Entity`), is that node: it is written to it, its
   name (and aliases) become aliases of it, and its id joins `merged_from`. The same inside one
   batch: a later new node merges into an earlier one. Of several stored candidates the one of the
   same type wins, then the one whose name (not alias) has the key, then the most mentioned, then
   the smallest id. Different types with the same name (Jordan the country, Jordan the person)
   stay apart.
4. **Similarity** (conservative, off unless `ENTITY_SIMILARITY_MERGE=true`): a new node still unresolved is compared with the dense index of
   stored entity names (`<QDRANT_COLLECTION>_entities`, tenant-scoped); it merges into the nearest
   entity of the same type when the cosine of their name embeddings is at least
   `ENTITY_MERGE_MIN_SIMILARITY` (0.98), the numbers in both names are the same (1990 is not
   1991, Windows 7 is not Windows 8) and one name's words are all among the other's, plurals and
   `the`/`a`/`an`/`of` aside (`same_words`: Kim Jong-hyun is not Kim Jong-un, though their
   embeddings are 0.98 close). It catches spelling variants (plurals, word order, an added
   qualifier), never translations: those need an alias. Off by default: on the benchmark sample its
   merges (a few dozen, mostly right: `EFTA` variants, plurals) cost 1.0 point of recall@5 and 2.0 of
   recall@2, as merged nodes pull the ranking walk toward passages that mention them.

Every merge (steps 3 and 4) is recorded in `<QDRANT_COLLECTION>_merges` (tenant-scoped): who
absorbed whom, why (the shared key or the cosine), the absorbed node as it arrived, the aliases it
added and the facts written for the absorbed id (then and in later writes that name it).
`merges` lists them (`GET /graph/merges`); `undo` (`DELETE /graph/merges/{id}`) means precisely:

- the absorbed id is its own node again, with the name, type, properties and sources it arrived
  with, and every fact recorded for it, re-written with the absorbed id as their endpoint; sources
  removed since (a deleted document's chunks, no longer on the survivor) are left out, and what
  only they stated is not brought back;
- the survivor no longer answers to that id (`merged_from`) and loses the aliases the merge
  added; both nodes list each other in `distinct_from`, so no later write merges them again;
- what stays: the survivor keeps the copies of those facts and the sources they brought (the store
  removes facts only by source, and the same source may state the survivor's own facts), and its
  name index keeps the absorbed name's key, so a question naming it links both nodes.

An ingest version that fails collects what its writes recorded (`Recorded`) and takes it back
(`take_back`) once its facts are removed: the merge and facts records go, and the survivor loses the
absorbed ids and the aliases those merges added (not an undo: nothing is marked distinct). So do a
re-extraction whose staged facts are removed again (`reextract`) and a `/graph/upsert` whose graph
write fails (`graph.upsert`).

After each write, the names and aliases of the entities it created or renamed are embedded into
the entity name index, when it has a reader (the similarity merge, dense linking) or
`ENTITY_NAME_INDEX=true` asks for it ahead of them. Resolution costs one name-key and one id lookup
per write; with the index, one embedding per new name; with the similarity merge, one nearest-name
search per new entity.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import dependencies
from ..clients.embeddings import dimension, get_embedder
from ..deadline import Deadline
from ..deadline import current as current_deadline
from ..errors import Conflict, NotConfigured, NotFound
from ..models.graph import ORIGINAL_TYPE_KEY, Edge, GraphData, Node, Prop, SubgraphNode, is_identifier
from ..observability import logger
from ..settings import get_settings
from ..stores.graph.names import name_key, name_keys

if TYPE_CHECKING:
    from ..stores.graph.base import GraphStore, UpsertResult
    from ..stores.vectors import VectorStore

NAMESPACE = uuid.UUID("0b6f3f4e-52c1-4a57-9a3e-1f2d7c9e8a41")
ENTITIES_SUFFIX = "_entities"
MERGES_SUFFIX = "_merges"
MERGES_DOC = "merges"  # the doc_id every merge record carries (a list of merges is one payload read)
GENERIC_TYPE = "Entity"
ALIASES, MERGED_FROM, DISTINCT_FROM = "aliases", "merged_from", "distinct_from"
RESOLUTION_KEYS = (MERGED_FROM, DISTINCT_FROM)  # kept by resolution: a caller's values are ignored
SIMILAR_CANDIDATES = 3
MAX_NAME_CHARS = 256
MERGE_FIELDS = (
    "merge_id",
    "survivor",
    "absorbed",
    "reason",
    "evidence",
    "node",
    "added_aliases",
    "sources",
    "state",
    "created_at",
    "undone_at",
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[\W_]+")
_DIGITS = re.compile(r"\d+")


# --- relation types -----------------------------------------------------------------------------


def canonical_relation(kind: str) -> str:
    """`WORKS_AT` for `works_at`, `worksAt`, `Works At`, `WORKS--AT`; a type that would not stay an identifier as given."""
    words = [word for word in _NOT_WORD.split(_CAMEL.sub("_", kind)) if word]
    canonical = "_".join(words).upper()
    return canonical if is_identifier(canonical) else kind


def canonical_edges(edges: Sequence[Edge]) -> list[Edge]:
    """Edges with canonical types, one per (src, type, dst): props merged (later wins), sources joined."""
    merged: dict[tuple[str, str, str], Edge] = {}
    for edge in edges:
        kind = canonical_relation(edge.type)
        props = {p.key: p.value for p in edge.props}
        if kind != edge.type:
            props.setdefault(ORIGINAL_TYPE_KEY, edge.type)
        key = (edge.src, kind, edge.dst)
        if key in merged:
            before = merged[key]
            props = {**{p.key: p.value for p in before.props}, **props}
            sources = list(dict.fromkeys([*before.sources, *edge.sources]))
        else:
            sources = list(edge.sources)
        merged[key] = _edge(edge.src, edge.dst, kind, props, sources)
    return list(merged.values())


# --- the plan of one write ----------------------------------------------------------------------


@dataclass
class MergeRecord:
    merge_id: str
    survivor: str
    absorbed: str
    reason: str  # "name", "alias" (a shared key) or "similarity"
    evidence: str  # the shared key, or the cosine
    node: dict[str, Any]  # the absorbed node as it arrived: id, type, name, props
    added_aliases: list[str]
    sources: list[str]
    state: str = "active"
    created_at: str = ""
    undone_at: str | None = None


@dataclass
class Plan:
    data: GraphData
    mapping: dict[str, str] = field(default_factory=dict)  # incoming id -> the node it is written to
    merges: list[MergeRecord] = field(default_factory=list)  # new merges
    facts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # merge id -> edges as given
    names: dict[str, list[str]] = field(default_factory=dict)  # entity id -> names to add to the name index
    types: dict[str, str] = field(default_factory=dict)  # entity id -> type, for the name index
    vectors: dict[str, list[float]] = field(default_factory=dict)  # name -> embedding, computed once


def merge_id(tenant: str, absorbed: str, survivor: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{tenant}\x1f{absorbed}\x1f{survivor}"))


def collections() -> tuple[str, str]:
    base = get_settings().qdrant_collection
    return f"{base}{ENTITIES_SUFFIX}"[:64], f"{base}{MERGES_SUFFIX}"[:64]


def aliases_of(props: dict[str, Any]) -> list[str]:
    value = props.get(ALIASES)
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str) and v.strip()]


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def compatible(a: str, b: str) -> bool:
    return a == b or GENERIC_TYPE in (a, b)


def same_numbers(a: str, b: str) -> bool:
    return _DIGITS.findall(a) == _DIGITS.findall(b)


_FILLER_WORDS = frozenset({"the", "a", "an", "of"})


def _words(name: str) -> set[str]:
    """A name's key words, `the`/`a`/`an`/`of` left out and a plural `s` dropped."""
    words = set(name_key(name).split()) - _FILLER_WORDS
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words}


def same_words(a: str, b: str) -> bool:
    """Whether one name's words are all in the other's (plural, order, articles and added qualifiers aside).

    Waterfalls / the waterfall, Toronto, Ontario / Toronto, Ontario, Canada pass; Kim Jong-hyun / Kim Jong-un,
    American / National Basketball Association, 12 December / 12 August 1986 do not, however close their
    embeddings (all above 0.98 with multilingual-e5-small)."""
    left, right = _words(a), _words(b)
    return bool(left and right) and (left <= right or right <= left)


def _snapshot(node: Node) -> dict[str, Any]:
    return {"id": node.id, "type": node.type, "name": node.name, "props": {p.key: p.value for p in node.props}}


@dataclass
class _Target:
    """A node the batch writes to: stored already (`stored`), or created by this batch."""

    id: str
    type: str
    name: str | None
    stored: SubgraphNode | None
    contributors: list[Node] = field(default_factory=list)
    absorbed: list[str] = field(default_factory=list)


async def plan(graph: GraphStore, vectors: VectorStore, tenant: str, data: GraphData) -> Plan:
    """What to write for `data`: ids mapped, merges decided (nothing is written here)."""
    edges = canonical_edges(data.edges)
    if not get_settings().entity_resolution:
        return Plan(GraphData(nodes=data.nodes, edges=edges))
    incoming = {node.id: node for node in data.nodes}  # the last occurrence wins, as in the store
    keys = {nid: name_keys([node.name or node.id, *aliases_of(_props(node))]) for nid, node in incoming.items()}
    endpoint_ids = [i for e in edges for i in (e.src, e.dst) if i not in incoming]
    ids = list(dict.fromkeys([*incoming, *endpoint_ids]))
    timeout = current_deadline().timeout()

    all_keys = list(dict.fromkeys(k for ks in keys.values() for k in ks))
    linked = await graph.link(tenant, all_keys, limit=max(100, 20 * len(all_keys)), timeout=timeout) if all_keys else []
    stored, absorbed_by = await _lookup(graph, tenant, [*ids, *(name.id for name in linked)])
    by_key: dict[str, list[str]] = {}
    for name in linked:
        by_key.setdefault(name.key, []).append(name.id)
    mentions = {name.id: name.mentions for name in linked}

    result = Plan(GraphData())
    targets: dict[str, _Target] = {}
    batch_keys: dict[str, list[str]] = {}  # key -> targets created or reached by this batch

    def target(tid: str, kind: str, name: str | None) -> _Target:
        if tid not in targets:
            node = stored.get(tid)
            targets[tid] = _Target(tid, node.type if node else kind, _stored_name(node) or name, node)
        return targets[tid]

    pending: list[Node] = []
    for nid, node in incoming.items():
        if nid in stored or nid in absorbed_by:
            tid = nid if nid in stored else absorbed_by[nid]
            chosen = target(tid, node.type, node.name)
            if tid == nid:
                chosen.name = node.name or chosen.name  # a caller naming a stored id renames it, as before
        else:
            found = _by_key(node, keys[nid], by_key, stored, mentions, targets, batch_keys)
            if found is None:
                pending.append(node)
                continue
            tid, reason, key = found
            chosen = target(tid, node.type, node.name)
            _absorb(result, tenant, chosen, node, reason, key)
        chosen.contributors.append(node)
        result.mapping[nid] = chosen.id
        for key in keys[nid]:
            batch_keys.setdefault(key, []).append(chosen.id)

    for node, similar in await _similar(vectors, tenant, pending, result, stored, graph):
        if similar is None:
            chosen = target(node.id, node.type, node.name)
        else:
            tid, score = similar
            chosen = target(tid, node.type, node.name)
            _absorb(result, tenant, chosen, node, "similarity", f"{score:.4f}")
        chosen.contributors.append(node)
        result.mapping[node.id] = chosen.id

    for eid in endpoint_ids:
        if eid in absorbed_by:
            result.mapping[eid] = absorbed_by[eid]
    result.data = GraphData(
        nodes=[_written(t, result) for t in targets.values()],
        edges=_mapped_edges(edges, result, absorbed_by, tenant),
    )
    return result


def _props(node: Node) -> dict[str, Any]:
    return {p.key: p.value for p in node.props}


def _stored_name(node: SubgraphNode | None) -> str | None:
    name = node.props.get("name") if node else None
    return str(name) if name is not None else None


def _by_key(
    node: Node,
    keys: list[str],
    by_key: dict[str, list[str]],
    stored: dict[str, SubgraphNode],
    mentions: dict[str, int],
    targets: dict[str, _Target],
    batch_keys: dict[str, list[str]],
) -> tuple[str, str, str] | None:
    """The stored (else earlier in the batch) node this new one is, by a shared key: (id, reason, key)."""
    primary = keys[0] if keys else ""
    ranked: list[tuple[tuple[int, int, int, str], str, str, str]] = []
    for key in keys:
        for cid in dict.fromkeys([*by_key.get(key, []), *batch_keys.get(key, [])]):
            kind = stored[cid].type if cid in stored else targets[cid].type if cid in targets else None
            if kind is None or not compatible(node.type, kind):
                continue
            candidate = stored.get(cid)
            if candidate is not None and node.id in _strings(candidate.props.get(DISTINCT_FROM)):
                continue
            name = _stored_name(candidate) if candidate else targets[cid].name
            by_name = name_key(name or cid) == primary
            rank = (0 if kind == node.type else 1, 0 if by_name else 1, -mentions.get(cid, 0), cid)
            ranked.append((rank, cid, "name" if by_name and key == primary else "alias", key))
    if not ranked:
        return None
    _, cid, reason, key = min(ranked)
    return cid, reason, key


def _absorb(result: Plan, tenant: str, chosen: _Target, node: Node, reason: str, evidence: str) -> None:
    chosen.absorbed.append(node.id)
    result.merges.append(
        MergeRecord(
            merge_id=merge_id(tenant, node.id, chosen.id),
            survivor=chosen.id,
            absorbed=node.id,
            reason=reason,
            evidence=evidence,
            node=_snapshot(node),
            added_aliases=[],
            sources=[],
        )
    )


async def _nodes(graph: GraphStore, tenant: str, ids: Sequence[str]) -> dict[str, SubgraphNode]:
    return (await _lookup(graph, tenant, ids))[0]


async def _lookup(graph: GraphStore, tenant: str, ids: Sequence[str]) -> tuple[dict[str, SubgraphNode], dict[str, str]]:
    """The stored nodes with these ids, and each id a merge absorbed -> the node that absorbed it.

    One indexed read: the store answers an absorbed id with its survivor (`merged_from`)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}, {}
    found = await graph.expand(tenant, ids=wanted, max_hops=0, limit=len(wanted), timeout=current_deadline().timeout())
    stored = {node.id: node for node in found.nodes if node.id in set(wanted)}
    absorbed = {
        absorbed_id: node.id
        for node in found.nodes
        for absorbed_id in _strings(node.props.get(MERGED_FROM))
        if absorbed_id in set(wanted) and absorbed_id not in stored
    }
    return stored, absorbed


async def embed_names(result: Plan, names: Sequence[str]) -> None:
    missing = list(dict.fromkeys(n for n in names if n not in result.vectors))
    if missing:
        vectors = await get_embedder().embed_passages([n[:MAX_NAME_CHARS] for n in missing])
        result.vectors.update(zip(missing, vectors, strict=True))


async def _similar(
    vectors: VectorStore,
    tenant: str,
    pending: list[Node],
    result: Plan,
    stored: dict[str, SubgraphNode],
    graph: GraphStore,
) -> list[tuple[Node, tuple[str, float] | None]]:
    """Each new, unresolved node with the stored entity it is (id, cosine), or None."""
    settings = get_settings()
    if not settings.entity_similarity_merge:
        return [(node, None) for node in pending]
    threshold = settings.entity_merge_min_similarity
    await embed_names(result, [node.name or node.id for node in pending])
    found: dict[str, tuple[str, float]] = {}
    for node in pending:
        name = node.name or node.id
        hits = await vectors.search(
            collections()[0], result.vectors[name], tenant=tenant, top_k=SIMILAR_CANDIDATES,
            timeout=current_deadline().timeout(),
        )  # fmt: skip
        for hit in hits:
            other, kind = str(hit.payload.get("entity_id")), str(hit.payload.get("type"))
            text = str(hit.payload.get("name") or "")
            similar = hit.score >= threshold and same_numbers(name, text) and same_words(name, text)
            if similar and kind == node.type and other != node.id:
                found[node.id] = (other, hit.score)
                break
    alive = await _nodes(graph, tenant, [other for other, _ in found.values() if other not in stored])
    stored.update(alive)
    pairs: list[tuple[Node, tuple[str, float] | None]] = []
    for node in pending:
        match = found.get(node.id)
        survivor = stored.get(match[0]) if match else None
        if match is None or survivor is None or node.id in _strings(survivor.props.get(DISTINCT_FROM)):
            pairs.append((node, None))
        else:
            pairs.append((node, match))
    return pairs


def _written(chosen: _Target, result: Plan) -> Node:
    """The one node written for a target: its contributors' props, their names as aliases, what it absorbed."""
    stored_props = chosen.stored.props if chosen.stored else {}
    props: dict[str, Any] = {}
    for node in chosen.contributors:
        props.update({k: v for k, v in _props(node).items() if k not in RESOLUTION_KEYS})
    if chosen.stored is not None and chosen.type != GENERIC_TYPE:
        kind = chosen.type
    else:
        kind = next((n.type for n in chosen.contributors if n.type != GENERIC_TYPE), chosen.type)
    name = chosen.name
    before = aliases_of(stored_props)
    names = [*before]
    for node in chosen.contributors:
        names += [node.name or node.id] if node.id != chosen.id else []
        names += aliases_of(_props(node))
    own = name_key(name or chosen.id)
    aliases = [a for a in dict.fromkeys(names) if name_key(a) != own]
    if aliases != before or ALIASES in props:
        props[ALIASES] = aliases
    if chosen.absorbed:
        props[MERGED_FROM] = list(dict.fromkeys([*_strings(stored_props.get(MERGED_FROM)), *chosen.absorbed]))
    for record in result.merges:
        if record.survivor == chosen.id:
            brought = [str(record.node.get("name") or record.absorbed), *aliases_of(record.node.get("props") or {})]
            record.added_aliases = [a for a in dict.fromkeys(brought) if a in aliases and a not in before]
    new_names = [name or chosen.id, *aliases] if chosen.stored is None else [a for a in aliases if a not in before]
    if new_names and (name or chosen.stored is not None):
        result.names[chosen.id] = new_names
        result.types[chosen.id] = kind
    return _node(chosen.id, kind, name, props)


def _mapped_edges(edges: list[Edge], result: Plan, absorbed_by: dict[str, str], tenant: str) -> list[Edge]:
    """Edges between the nodes written; each edge naming an absorbed id is recorded with its merge."""
    merged_ids = {r.absorbed: r.merge_id for r in result.merges}
    merged_ids.update({a: merge_id(tenant, a, s) for a, s in absorbed_by.items()})
    for edge in edges:
        for end in {edge.src, edge.dst} & set(merged_ids):
            result.facts.setdefault(merged_ids[end], []).append(
                {
                    "src": edge.src,
                    "dst": edge.dst,
                    "type": edge.type,
                    "props": _props_edge(edge),
                    "sources": edge.sources,
                }
            )
    mapped = [
        _edge(result.mapping.get(e.src, e.src), result.mapping.get(e.dst, e.dst), e.type, _props_edge(e), e.sources)
        for e in edges
    ]
    return canonical_edges(mapped)


def _props_edge(edge: Edge) -> dict[str, Any]:
    return {p.key: p.value for p in edge.props}


def _node(node_id: str, kind: str, name: str | None, props: dict[str, Any]) -> Node:
    # Built from validated parts (and resolution's own keys, which callers may not set): no re-validation.
    return Node.model_construct(
        id=node_id, type=kind, name=name, props=[Prop.model_construct(key=k, value=v) for k, v in props.items()]
    )


def _edge(src: str, dst: str, kind: str, props: dict[str, Any], sources: Sequence[str]) -> Edge:
    return Edge.model_construct(
        src=src,
        dst=dst,
        type=kind,
        props=[Prop.model_construct(key=k, value=v) for k, v in props.items()],
        sources=list(sources),
    )


# --- writing ------------------------------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def _record_points(vectors: VectorStore, tenant: str, points: list[tuple[str, dict[str, Any]]]) -> None:
    """Merge records are payloads; their vector is a fixed unit vector (they are read, never searched)."""
    from ..stores.vectors import VectorPoint

    if not points:
        return
    dim = await dimension(get_embedder())
    unit = [1.0] + [0.0] * (dim - 1)
    name = collections()[1]
    await vectors.ensure_collection(name, dim)
    await vectors.upsert(name, [VectorPoint(pid, unit, {**payload, "tenant": tenant}) for pid, payload in points])


def _record_point(record: MergeRecord) -> tuple[str, dict[str, Any]]:
    payload = {"doc_id": MERGES_DOC, **record.__dict__}
    return str(uuid.uuid5(NAMESPACE, f"merge\x1f{record.merge_id}")), payload


def _facts_points(result: Plan, sources: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    points = []
    for mid, edges in result.facts.items():
        payload = {"doc_id": f"merge:{mid}", "merge_id": mid, "edges": edges, "sources": list(sources)}
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
        points.append((str(uuid.uuid5(NAMESPACE, f"facts\x1f{mid}\x1f{digest}")), payload))
    return points


def name_index_on() -> bool:
    """Whether writes fill the entity name index: asked for, or one of its readers is on."""
    settings = get_settings()
    return settings.entity_name_index or settings.entity_similarity_merge or settings.dense_linking


async def index_names(vectors: VectorStore, tenant: str, result: Plan) -> None:
    """The names and aliases of the entities this write created or renamed, into the entity name index."""
    from ..stores.vectors import VectorPoint

    texts = [text for names in result.names.values() for text in names]
    if not texts or not name_index_on():
        return
    await embed_names(result, texts)
    name = collections()[0]
    points = [
        VectorPoint(
            str(uuid.uuid5(NAMESPACE, f"{tenant}\x1f{entity}\x1f{name_key(text)}")),
            result.vectors[text],
            {"tenant": tenant, "doc_id": entity, "entity_id": entity, "type": result.types[entity], "name": text},
        )
        for entity, names in result.names.items()
        for text in dict.fromkeys(names)
    ]
    await vectors.ensure_collection(name, len(points[0].vector))
    await vectors.upsert(name, points)


@dataclass
class Recorded:
    """What writes recorded beside the graph (their merges, the facts of absorbed ids), so that a failed
    ingest version can take it back (`take_back`)."""

    merges: list[MergeRecord] = field(default_factory=list)
    points: list[str] = field(default_factory=list)  # in the merges collection: merge records, facts


async def write(
    tenant: str, data: GraphData, sources: Sequence[str] = (), *, recorded: Recorded | None = None
) -> UpsertResult:
    """Resolve `data` against the tenant's graph, record its merges, write it, index its new names.

    `recorded` collects the merges and facts records this write makes (before any is written)."""
    graph = dependencies.graph_store()
    if graph is None:
        raise NotConfigured("No graph store is configured: set FALKORDB_URL (redis://host:port) or NEO4J_URI.")
    vectors = dependencies.vector_store()
    result = await plan(graph, vectors, tenant, data)
    now = _now()
    for record in result.merges:
        record.sources, record.created_at = list(sources), now
    points = [*map(_record_point, result.merges), *_facts_points(result, sources)]
    if recorded is not None:
        recorded.merges += result.merges
        recorded.points += [pid for pid, _ in points]
    await _record_points(vectors, tenant, points)
    written = await graph.upsert(tenant, result.data, sources=sources, timeout=current_deadline().timeout())
    if result.merges:
        logger.info(
            "entities merged",
            extra={
                "merges": [{"absorbed": r.absorbed, "survivor": r.survivor, "reason": r.reason} for r in result.merges]
            },
        )
    try:
        await index_names(vectors, tenant, result)
    except Exception as exc:  # noqa: BLE001 - the facts are written; only paraphrase linking misses these names
        logger.warning("entity names not indexed", extra={"reason": str(exc)[:300]})
    return written


async def take_back(tenant: str, recorded: Recorded, budget: Deadline) -> None:
    """Undo what the writes of a failed ingest version recorded, once their facts are removed by source.

    Their merge records and facts records go (`GET /graph/merges` no longer lists them), and each survivor
    still stored (one the version created went with its facts) no longer answers to the ids those merges
    absorbed and loses the aliases they added. Not a merge undo: nothing is restored and nothing is marked
    distinct, so a redelivery of the version merges the same nodes again."""
    graph = dependencies.graph_store()
    if graph is not None and recorded.merges:
        survivors = list(dict.fromkeys(record.survivor for record in recorded.merges))
        found = await graph.expand(tenant, ids=survivors, max_hops=0, limit=len(survivors), timeout=budget.timeout())
        nodes = []
        for node in (n for n in found.nodes if n.id in set(survivors)):
            records = [record for record in recorded.merges if record.survivor == node.id]
            absorbed = {record.absorbed for record in records}
            added = {alias for record in records for alias in record.added_aliases}
            merged, aliases = _strings(node.props.get(MERGED_FROM)), aliases_of(node.props)
            if absorbed.isdisjoint(merged) and added.isdisjoint(aliases):
                continue
            props = {
                MERGED_FROM: [i for i in merged if i not in absorbed],
                ALIASES: [a for a in aliases if a not in added],
            }
            nodes.append(_node(node.id, node.type, _stored_name(node), props))
        if nodes:
            await graph.upsert(tenant, GraphData.model_construct(nodes=nodes, edges=[]), timeout=budget.timeout())
    points = list(dict.fromkeys(recorded.points))
    if points:
        await dependencies.vector_store().delete(collections()[1], tenant=tenant, ids=points)
    if recorded.merges:
        logger.info(
            "merges taken back",
            extra={"merges": [{"absorbed": r.absorbed, "survivor": r.survivor} for r in recorded.merges]},
        )


# --- audit and undo -----------------------------------------------------------------------------


async def merges(tenant: str) -> list[MergeRecord]:
    """Every merge of the tenant (undone ones too), oldest first."""
    found = await dependencies.vector_store().payloads(
        collections()[1], tenant=tenant, doc_id=MERGES_DOC, fields=MERGE_FIELDS
    )
    records = [_from_payload(payload) for payload in found.values()]
    return sorted(records, key=lambda r: (r.created_at or "", r.merge_id))


def _from_payload(payload: dict[str, Any]) -> MergeRecord:
    node = payload.get("node")
    return MergeRecord(
        merge_id=str(payload.get("merge_id")),
        survivor=str(payload.get("survivor")),
        absorbed=str(payload.get("absorbed")),
        reason=str(payload.get("reason")),
        evidence=str(payload.get("evidence")),
        node=node if isinstance(node, dict) else {},
        added_aliases=_strings(payload.get("added_aliases")),
        sources=_strings(payload.get("sources")),
        state=str(payload.get("state") or "active"),
        created_at=str(payload.get("created_at") or ""),
        undone_at=str(payload["undone_at"]) if payload.get("undone_at") else None,
    )


async def undo(tenant: str, merge: str) -> MergeRecord:
    """Make the absorbed id its own node again, with its facts (see the module's docstring for what stays)."""
    graph = dependencies.graph_store()
    if graph is None:
        raise NotConfigured("No graph store is configured: set FALKORDB_URL (redis://host:port) or NEO4J_URI.")
    vectors = dependencies.vector_store()
    record = next((r for r in await merges(tenant) if r.merge_id == merge), None)
    if record is None:
        raise NotFound(f"No merge {merge!r}.")
    if record.state != "active":
        raise Conflict(f"Merge {merge!r} was already undone.")
    facts = await vectors.payloads(
        collections()[1], tenant=tenant, doc_id=f"merge:{merge}", fields=("edges", "sources")
    )
    timeout = current_deadline().timeout
    absorbed, survivor = record.absorbed, record.survivor
    node = record.node
    others = {e[end] for f in facts.values() for e in f.get("edges") or [] for end in ("src", "dst")} - {absorbed}
    found, mapping = await _lookup(graph, tenant, [survivor, *sorted(others)])
    stored = found.get(survivor)
    # Sources deleted since (their document removed) are stripped from the survivor: what only they stated
    # is not brought back.
    live = set(_strings(stored.props.get("sources"))) if stored is not None else set()

    def alive(sources: Any) -> list[str]:
        return [source for source in _strings(sources) if source in live]

    every = list(dict.fromkeys([*record.sources, *(s for f in facts.values() for s in _strings(f.get("sources")))]))
    own = {k: v for k, v in (node.get("props") or {}).items() if k not in RESOLUTION_KEYS}
    own[DISTINCT_FROM] = [survivor]
    if not every or alive(every):
        restored = _node(absorbed, str(node.get("type") or GENERIC_TYPE), node.get("name"), own)
        batch = GraphData.model_construct(nodes=[restored], edges=[])
        await graph.upsert(tenant, batch, sources=alive(every), timeout=timeout())
    for fact in facts.values():
        if _strings(fact.get("sources")) and not alive(fact.get("sources")):
            continue
        edges = [
            _edge(
                e["src"] if e["src"] == absorbed else mapping.get(e["src"], e["src"]),
                e["dst"] if e["dst"] == absorbed else mapping.get(e["dst"], e["dst"]),
                e["type"],
                e.get("props") or {},
                alive(e.get("sources")),
            )
            for e in fact.get("edges") or []
        ]
        batch = GraphData.model_construct(nodes=[], edges=edges)
        await graph.upsert(tenant, batch, sources=alive(fact.get("sources")), timeout=timeout())
    if stored is not None:
        kept = {k: v for k, v in stored.props.items() if k in (MERGED_FROM, DISTINCT_FROM, ALIASES)}
        props = {
            MERGED_FROM: [i for i in _strings(kept.get(MERGED_FROM)) if i != absorbed],
            DISTINCT_FROM: list(dict.fromkeys([*_strings(kept.get(DISTINCT_FROM)), absorbed])),
            ALIASES: [a for a in aliases_of(kept) if a not in set(record.added_aliases)],
        }
        survivor_node = _node(survivor, stored.type, _stored_name(stored), props)
        await graph.upsert(tenant, GraphData.model_construct(nodes=[survivor_node], edges=[]), timeout=timeout())
    record.state, record.undone_at = "undone", _now()
    await _record_points(vectors, tenant, [_record_point(record)])
    result = Plan(GraphData(), names={absorbed: [str(node.get("name") or absorbed), *aliases_of(own)]})
    result.types[absorbed] = str(node.get("type") or GENERIC_TYPE)
    try:
        await index_names(vectors, tenant, result)
    except Exception as exc:  # noqa: BLE001 - the node is restored; only paraphrase linking misses its names
        logger.warning("entity names not indexed", extra={"reason": str(exc)[:300]})
    return record
