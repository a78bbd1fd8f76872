"""Knowledge-graph extraction from text with racing providers.

Each provider is asked for nodes and edges as JSON, validated against the
models' schema (`models.graph.extraction_schema`, published as
`schemas/graph.schema.json` and hashed into `schema_hash`).
The first acceptable answer wins and the calls still in flight are cancelled
(see racing.py); an answer is acceptable when it parses and, once what does
not validate is dropped, meets min_nodes / min_edges unless empty answers are
allowed. Nothing is dropped silently: every dropped node, edge or property is
listed with its reason (`dropped`). `strict` (the default) drops an item that
does not validate; `strict: false` is tolerant, as the predecessor was: it
repairs what it can (drops only the offending property, coerces values to
storable ones, falls back to type `Entity` / `RELATED_TO` keeping the original
text, keeps edges whose endpoints the answer did not list) and drops only what
cannot be stored at all.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from ..clients import llm
from ..deadline import Deadline
from ..deadline import current as current_deadline
from ..errors import ApiError, DeadlineExceeded, RateLimited, Unavailable, Unprocessable
from ..models.graph import (
    ORIGINAL_TYPE_KEY,
    RESERVED_KEYS,
    Edge,
    GraphData,
    Node,
    as_identifier,
    extraction_schema,
    is_identifier,
    is_safe_name,
)
from ..racing import AllProvidersFailed, Strategy, attempt_budget, first_acceptable
from ..settings import ProviderConfig, get_settings
from ..upstream import common_cause

SYSTEM_PROMPT = """You extract a knowledge graph from the user's text.
Answer with ONE JSON object and nothing else, matching this JSON Schema:
{schema}
Rules:
- nodes: every distinct entity (person, organisation, product, place, event, concept...).
  id: a stable lowercase slug like "person:lin-xiaoming" or "company:northwind"; type: a short
  identifier in the text's language (letters, digits, underscore; e.g. Person, Company, 人物, 公司);
  name: ONE canonical name per entity (its fullest proper name as the text gives it; one node per
  entity however many ways the text names it). Its other names (short forms, abbreviations,
  nicknames, names in other languages or scripts, as written in the text or well known) go in
  props as {{"key": "aliases", "value": ["...", "..."]}}, so that every name finds the entity.
- edges: relations stated in the text. src and dst are node ids; type is an identifier in
  UPPER_SNAKE_CASE or the text's language (e.g. FOUNDED, LOCATED_IN, 創立).
- props: extra facts as [{{"key": ..., "value": ...}}] with identifier keys.
- Do not invent facts that the text does not state."""

REPAIR_PROMPT = """The following answer was supposed to be one JSON object matching the schema below but is
malformed. Return only the corrected JSON object, with the same content.
Schema: {schema}
Answer to repair:
{answer}"""


@lru_cache(maxsize=1)
def schema_text() -> str:
    """The schema as the prompt shows it: compact, from the models themselves."""
    return json.dumps(extraction_schema(), ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=1)
def schema_hash() -> str:
    canonical = json.dumps(extraction_schema(), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class ExtractOptions:
    provider_chain: list[str] | None = None
    strategy: Strategy | None = None
    hedge_delay_s: float | None = None
    max_attempts: int = 1
    min_nodes: int = 1
    min_edges: int = 0
    allow_empty: bool = False
    strict: bool = True
    repair_if_invalid: bool = True
    temperature: float | None = 0.0


@dataclass
class Validated:
    """A graph from a model's answer, with what was left out of it and why."""

    graph: GraphData
    dropped: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Extraction:
    graph: GraphData
    provider: str
    attempts: list[dict[str, Any]]
    schema_hash: str
    dropped: list[dict[str, Any]] = field(default_factory=list)


# Failures of the moment (late, rate limited, unreachable), not of the answer.
TRANSIENT = (DeadlineExceeded, RateLimited, Unavailable)


class Unacceptable(ApiError):
    status, code = 422, "unacceptable_answer"


def providers_for(chain: list[str] | None) -> list[ProviderConfig]:
    if not chain:
        return llm.resolve("graph-extractor" if "graph-extractor" in get_settings().model_aliases else None)
    resolved: list[ProviderConfig] = []
    for item in chain:
        resolved.extend(p for p in llm.resolve(item) if p not in resolved)
    return resolved


async def extract_graph(
    context: str, options: ExtractOptions | None = None, *, spent: list[int] | None = None
) -> Extraction:
    """The first acceptable graph by the strategy; each call's tokens (failed ones too) go into `spent`."""
    options = options or ExtractOptions()
    settings = get_settings()
    candidates = providers_for(options.provider_chain)
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT.format(schema=schema_text())},
        {"role": "user", "content": context},
    ]

    strategy = options.strategy or settings.extract_strategy

    final: dict[str, ApiError] = {}  # each provider's last failure

    async def ask(provider: ProviderConfig) -> Validated:
        left = len(candidates) - candidates.index(provider)
        share = Deadline.after(attempt_budget(strategy, current_deadline().timeout(), left))
        failures: list[ApiError] = []
        for _ in range(max(1, options.max_attempts)):
            try:
                return await _one_attempt(provider, messages, options, share, spent)
            except ApiError as exc:
                failures.append(exc)
                if isinstance(exc, TRANSIENT):  # another attempt at this provider cannot help now
                    break
        final[provider.name] = failures[-1]
        if isinstance(failures[-1], TRANSIENT):
            raise failures[-1]
        raise Unacceptable("; ".join(failure.message for failure in failures))

    try:
        outcome = await first_acceptable(
            candidates,
            ask,
            name=lambda p: p.name,
            strategy=strategy,
            hedge_delay=options.hedge_delay_s if options.hedge_delay_s is not None else settings.hedge_delay_s,
        )
    except AllProvidersFailed as exc:
        common = common_cause(final)
        if common is not None:  # every provider was late or busy: say so (504/429/503), not "unacceptable"
            raise common from None
        raise Unprocessable(
            "No provider returned an acceptable graph.",
            code="extraction_failed",
            details={
                "providers": {a.provider: a.error for a in exc.attempts if a.outcome == "error"},
                "attempts": [a.as_dict() for a in exc.attempts],
            },
        ) from None
    return Extraction(
        graph=outcome.value.graph,
        provider=outcome.provider,
        attempts=[a.as_dict() for a in outcome.attempts],
        schema_hash=schema_hash(),
        dropped=outcome.value.dropped,
    )


async def _one_attempt(
    provider: ProviderConfig,
    messages: list[dict[str, Any]],
    options: ExtractOptions,
    share: Deadline,
    spent: list[int] | None,
) -> Validated:
    """One answer from `provider` (repaired once if it is not JSON), within the provider's share of the budget."""
    completion = await llm.complete(
        provider, messages, json_mode=True, temperature=options.temperature, timeout=share.timeout()
    )
    if spent is not None:
        spent.append(tokens_of(completion.usage))
    try:
        value = llm.parse_json_answer(provider.name, completion.text)
    except llm.InvalidJsonAnswer:
        if not options.repair_if_invalid:
            raise
        repair = [{"role": "user", "content": REPAIR_PROMPT.format(schema=schema_text(), answer=completion.text)}]
        repaired = await llm.complete(provider, repair, json_mode=True, temperature=0.0, timeout=share.timeout())
        if spent is not None:
            spent.append(tokens_of(repaired.usage))
        value = llm.parse_json_answer(provider.name, repaired.text)
    validated = validate_graph(value, strict=options.strict)
    graph = validated.graph
    if not graph.nodes and not graph.edges and options.allow_empty:
        return validated
    if len(graph.nodes) < options.min_nodes or len(graph.edges) < options.min_edges:
        dropped = validated.dropped
        why = f" ({len(dropped)} items dropped, e.g. {_describe(dropped[0])})" if dropped else ""
        raise Unacceptable(
            f"{provider.name} returned {len(graph.nodes)} nodes and {len(graph.edges)} edges{why}; "
            f"at least {options.min_nodes} and {options.min_edges} are required."
        )
    return validated


def tokens_of(usage: dict[str, Any]) -> int:
    """Prompt + completion tokens of one call, from the provider's `usage` (0 when it reports none)."""
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    return sum(value for key in ("prompt_tokens", "completion_tokens") if isinstance(value := usage.get(key), int))


def validate_graph(value: Any, *, strict: bool) -> Validated:
    """A GraphData from a model's JSON, with every node, edge or property left out listed with its reason.

    strict: an item that does not validate is dropped. Tolerant (strict=False): an item is repaired when it
    can be (see the module's docstring) and dropped only when it cannot be stored at all."""
    raw, dropped = normalize(value)
    nodes: dict[str, Node] = {}
    for item in raw["nodes"]:
        node = _validated(Node, item, strict, dropped)
        if node is None:
            continue
        if node.id in nodes:
            dropped.append({"kind": "node", "id": node.id, "reason": "duplicate id: the first node with it is kept"})
            continue
        nodes[node.id] = node
    by_name = {node.name.casefold(): node.id for node in reversed(nodes.values()) if node.name}
    edges: dict[tuple[str, str, str], Edge] = {}
    for item in raw["edges"]:
        for end in ("src", "dst"):  # an endpoint given by the node's name instead of its id
            if isinstance(item.get(end), str) and item[end] not in nodes:
                item[end] = by_name.get(item[end].casefold(), item[end])
        edge = _validated(Edge, item, strict, dropped)
        if edge is None:
            continue
        described = {"kind": "edge", "src": edge.src, "dst": edge.dst, "type": edge.type}
        missing = [end for end in (edge.src, edge.dst) if end not in nodes]
        if edge.src == edge.dst:
            dropped.append({**described, "reason": "src and dst are the same node"})
        elif missing and strict:
            dropped.append({**described, "reason": f"not a node of the answer: {', '.join(missing)}"})
        elif (edge.src, edge.type, edge.dst) in edges:
            dropped.append({**described, "reason": "duplicate: the first edge with these ends and type is kept"})
        else:
            edges[(edge.src, edge.type, edge.dst)] = edge
    return Validated(GraphData(nodes=list(nodes.values()), edges=list(edges.values())), dropped)


def _validated(model: type[Node | Edge], item: dict[str, Any], strict: bool, dropped: list[dict[str, Any]]) -> Any:
    """`model` from `item`, or None with the reason in `dropped`; tolerant mode repairs first."""
    kind = "node" if model is Node else "edge"
    if not strict:
        item = _repaired(kind, item, dropped)
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        if kind == "node":
            where: dict[str, Any] = {"id": item.get("id")}
        else:
            where = {"src": item.get("src"), "dst": item.get("dst"), "type": item.get("type")}
        dropped.append({"kind": kind, **where, "reason": _first_error(exc)})
        return None


def _repaired(kind: str, item: dict[str, Any], dropped: list[dict[str, Any]]) -> dict[str, Any]:
    """Tolerant mode: drop only the props that cannot be stored, coerce values, fall back on a generic type."""
    item = dict(item)
    owner = item.get("id") if kind == "node" else f"{item.get('src')}-[{item.get('type')}]->{item.get('dst')}"
    fallback = "Entity" if kind == "node" else "RELATED_TO"
    kind_text = item.get("type")
    if kind_text is None or (isinstance(kind_text, str) and not kind_text.strip()):
        item["type"] = fallback
    elif not isinstance(kind_text, str) or not is_identifier(as_identifier(kind_text)):
        item["type"] = fallback
        props = item.get("props")
        item["props"] = [
            *(props if isinstance(props, list) else []),
            {"key": ORIGINAL_TYPE_KEY, "value": str(kind_text)},
        ]
    if kind == "node" and isinstance(item.get("name"), (int, float)) and not isinstance(item.get("name"), bool):
        item["name"] = str(item["name"])
    props = item.get("props")
    if not isinstance(props, list):
        if props is not None:
            dropped.append({"kind": "prop", "of": owner, "reason": "props is neither a list nor an object"})
        item["props"] = []
        return item
    kept = []
    for prop in props:
        if not isinstance(prop, dict) or not isinstance(prop.get("key"), str):
            dropped.append({"kind": "prop", "of": owner, "reason": "not a {key, value} object"})
            continue
        key = prop["key"].strip()
        if key == "name" and kind == "node":
            kept.append(prop)  # the node's name, taken by the model
            continue
        if not is_safe_name(key) or key in RESERVED_KEYS:
            reason = "reserved key" if key in RESERVED_KEYS else "key is not safe to store"
            dropped.append({"kind": "prop", "of": owner, "key": prop["key"], "reason": reason})
            continue
        kept.append({"key": key, "value": _storable(prop.get("value"))})
    item["props"] = kept
    return item


def _storable(value: Any) -> Any:
    """A value both stores keep: primitives and lists of one primitive type; anything else as JSON text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        items = [_storable(item) for item in value if item is not None]
        if all(isinstance(item, (str, bool, int, float)) for item in items) and len({type(i) for i in items}) <= 1:
            return items
        return [item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in items]
    return json.dumps(value, ensure_ascii=False, default=str)


def normalize(value: Any) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """Accept the common shapes models produce: entities/relations, dict props, source/target, the name in
    props. Returns the items and what could not even be read as an item (listed, never silently dropped)."""
    if not isinstance(value, dict):
        raise Unacceptable("the answer is not a JSON object with nodes and edges")
    nodes = value.get("nodes", value.get("entities", []))
    edges = value.get("edges", value.get("relations", value.get("relationships", [])))
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise Unacceptable("nodes and edges must be lists")
    dropped: list[dict[str, Any]] = []
    for kind, items in (("node", nodes), ("edge", edges)):
        dropped += [
            {"kind": kind, "item": _truncated(item), "reason": "not a JSON object"}
            for item in items
            if not isinstance(item, dict)
        ]
    return {
        "nodes": [_node(n) for n in nodes if isinstance(n, dict)],
        "edges": [_edge(e) for e in edges if isinstance(e, dict)],
    }, dropped


def _truncated(item: Any) -> str:
    text = json.dumps(item, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:199] + "…"


def _props(value: Any) -> Any:
    if isinstance(value, dict):
        return [{"key": key, "value": item} for key, item in value.items()]
    return value if value is not None else []


def _node(item: dict[str, Any]) -> dict[str, Any]:
    node = dict(item)
    node.setdefault("type", node.pop("label", "Entity"))
    node["props"] = _props(node.get("props", node.pop("properties", None)))
    name = node.get("name") or next(
        (p.get("value") for p in node["props"] if isinstance(p, dict) and p.get("key") == "name"), None
    )
    if not node.get("id") and isinstance(name, str) and name.strip():
        node["id"] = slug(str(node.get("type", "entity")), name)
    return node


def _edge(item: dict[str, Any]) -> dict[str, Any]:
    edge = dict(item)
    edge.setdefault("src", edge.pop("source", edge.pop("from", None)))
    edge.setdefault("dst", edge.pop("target", edge.pop("to", None)))
    edge.setdefault("type", edge.pop("relation", edge.pop("label", None)))
    edge["props"] = _props(edge.get("props", edge.pop("properties", None)))
    return edge


def slug(kind: str, name: str) -> str:
    text = re.sub(r"[\s/]+", "-", name.strip().lower())
    return f"{kind.lower()}:{text}"


def _describe(item: dict[str, Any]) -> str:
    what = item.get("id") or item.get("key") or item.get("item") or f"{item.get('src')}->{item.get('dst')}"
    return f"{item['kind']} {what!r}: {item['reason']}"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def dropped_reason(item: dict[str, Any]) -> str:
    """Why an item was dropped, without the values it names (ids, names, types come from the text): for logs
    and counts. `node: type: Value error, … is not an identifier`, `edge: not a node of the answer`."""
    reason = _QUOTED.sub("…", str(item.get("reason") or "unknown"))
    if reason.startswith("not a node of the answer"):
        reason = "not a node of the answer"  # the ids follow
    return f"{item.get('kind', 'item')}: {': '.join(reason.split(': ')[:2])}"[:120]


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
