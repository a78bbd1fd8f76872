"""A graph the user brings for a document (a `<key>.graph.json` sidecar, or `graph` in POST /documents).

The shape is the extraction schema (`GraphData`: nodes and edges), in either or both of two forms:

- per chunk: `{"chunks": [{"index": 0, "nodes": [...], "edges": [...]}, ...]}` (the chunk numbers of
  the document as it is chunked with the deployment's CHUNK_SIZE / CHUNK_OVERLAP);
- whole document: `{"nodes": [...], "edges": [...]}`, where a node or an edge may be tied to chunks
  by `"chunk": 2`, `"chunks": [2, 3]`, or by a text span `"span": "founded in 2011"` (the chunks
  holding it); an item tied to nothing is stated by every chunk.

Each fact's sources are the chunks it is tied to, as with extracted facts. An edge brings its two
nodes into each of its chunks. Anything invalid is refused as a whole (422 with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..errors import Unprocessable
from ..models.graph import Edge, GraphData, Node
from .chunking import Chunk

TIES = ("chunk", "chunks", "span")
SPAN_EDGE = 40  # a span crossing a chunk boundary is found by its first or last characters


@dataclass
class Tied:
    item: Node | Edge
    chunks: list[int] | None = None
    span: str | None = None


@dataclass
class SuppliedGraph:
    nodes: list[Tied] = field(default_factory=list)
    edges: list[Tied] = field(default_factory=list)

    def per_chunk(self, chunks: list[Chunk], ids: list[str]) -> dict[str, GraphData]:
        """Chunk id -> the facts tied to that chunk."""
        by_id = {tied.item.id: tied.item for tied in self.nodes if isinstance(tied.item, Node)}
        nodes: dict[int, dict[str, Node]] = {chunk.index: {} for chunk in chunks}
        edges: dict[int, list[Edge]] = {chunk.index: [] for chunk in chunks}
        for tied in self.nodes:
            assert isinstance(tied.item, Node)
            for index in _targets(tied, chunks):
                nodes[index].setdefault(tied.item.id, tied.item)
        for tied in self.edges:
            edge = tied.item
            assert isinstance(edge, Edge)
            for index in _targets(tied, chunks):
                edges[index].append(edge)
                for end in (edge.src, edge.dst):
                    nodes[index].setdefault(end, by_id[end])
        return {
            cid: GraphData(nodes=list(nodes[chunk.index].values()), edges=edges[chunk.index])
            for cid, chunk in zip(ids, chunks, strict=True)
            if nodes[chunk.index] or edges[chunk.index]
        }


def _targets(tied: Tied, chunks: list[Chunk]) -> list[int]:
    indexes = [chunk.index for chunk in chunks]
    if tied.chunks is not None:
        missing = [n for n in tied.chunks if n not in indexes]
        if missing:
            raise Unprocessable(
                f"The supplied graph ties {_name(tied.item)} to chunk {missing[0]}, but the document has "
                f"{len(chunks)} chunks (0-{len(chunks) - 1}) with this CHUNK_SIZE/CHUNK_OVERLAP.",
                code="invalid_graph",
            )
        return tied.chunks
    if tied.span is not None:
        span = tied.span.casefold()
        found = [c.index for c in chunks if span in c.text.casefold()]
        found = found or [
            c.index for c in chunks if span[:SPAN_EDGE] in c.text.casefold() or span[-SPAN_EDGE:] in c.text.casefold()
        ]
        if not found:
            raise Unprocessable(
                f"The supplied graph ties {_name(tied.item)} to a span the document does not contain: "
                f"{tied.span[:80]!r}.",
                code="invalid_graph",
            )
        return found
    return indexes


def _name(item: Node | Edge) -> str:
    return f"node {item.id!r}" if isinstance(item, Node) else f"edge {item.src}-[{item.type}]->{item.dst}"


def parse_supplied_graph(value: Any) -> SuppliedGraph:
    """The supplied graph, validated; Unprocessable (422) with the first problem otherwise."""
    if not isinstance(value, dict):
        raise Unprocessable("The supplied graph must be a JSON object with nodes and edges.", code="invalid_graph")
    graph = SuppliedGraph()
    sections: list[tuple[dict[str, Any], list[int] | None]] = [(value, None)]
    per_chunk = value.get("chunks")
    if per_chunk is not None and not isinstance(per_chunk, list):
        raise Unprocessable("`chunks` must be a list of {index, nodes, edges}.", code="invalid_graph")
    for entry in per_chunk or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("index"), int) or entry["index"] < 0:
            raise Unprocessable("Each entry of `chunks` needs an `index` (a chunk number).", code="invalid_graph")
        sections.append((entry, [entry["index"]]))
    for section, index in sections:
        for kind, model in (("nodes", Node), ("edges", Edge)):
            items = section.get(kind) or []
            if not isinstance(items, list):
                raise Unprocessable(f"`{kind}` must be a list.", code="invalid_graph")
            for item in items:
                tied = _tied(model, item, index)
                (graph.nodes if kind == "nodes" else graph.edges).append(tied)
    known = {tied.item.id for tied in graph.nodes if isinstance(tied.item, Node)}
    for tied in graph.edges:
        assert isinstance(tied.item, Edge)
        missing = [end for end in (tied.item.src, tied.item.dst) if end not in known]
        if missing:
            raise Unprocessable(
                f"The supplied graph's {_name(tied.item)} names no node {missing[0]!r}.", code="invalid_graph"
            )
    if not graph.nodes and not graph.edges:
        raise Unprocessable("The supplied graph has no nodes and no edges.", code="invalid_graph")
    return graph


def _tied(model: type[Node | Edge], item: Any, index: list[int] | None) -> Tied:
    if not isinstance(item, dict):
        raise Unprocessable("Every node and edge must be a JSON object.", code="invalid_graph")
    body = {key: value for key, value in item.items() if key not in TIES}
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise Unprocessable(
            f"A supplied {model.__name__.lower()} is invalid: {where}: {error['msg']}.",
            code="invalid_graph",
            details={"item": {k: v for k, v in body.items() if k in ("id", "src", "dst", "type")}},
        ) from None
    chunks = index
    if "chunk" in item or "chunks" in item:
        raw = item.get("chunks", [item.get("chunk")])
        if not isinstance(raw, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in raw):
            raise Unprocessable("`chunk` must be a chunk number, `chunks` a list of them.", code="invalid_graph")
        chunks = list(raw)
    span = item.get("span")
    if span is not None and (not isinstance(span, str) or not span.strip()):
        raise Unprocessable("`span` must be a non-empty text of the document.", code="invalid_graph")
    return Tied(parsed, chunks, span.strip() if isinstance(span, str) else None)
