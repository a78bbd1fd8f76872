"""Knowledge-graph extraction from text with racing providers.

Each provider is asked for nodes and edges as JSON, validated against the
models' schema (`models.graph.extraction_schema`, published as
`schemas/graph.schema.json` and hashed into `schema_hash`).
The first acceptable answer wins and the calls still in flight are cancelled
(see racing.py); an answer is acceptable when it parses, validates (or, with
`strict`, validates after pruning what does not), and meets min_nodes /
min_edges unless empty answers are allowed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from ..clients import llm
from ..deadline import Deadline
from ..deadline import current as current_deadline
from ..errors import ApiError, DeadlineExceeded, RateLimited, Unavailable, Unprocessable
from ..models.graph import Edge, GraphData, Node, extraction_schema
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
  name: the entity's name as written in the text.
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
class Extraction:
    graph: GraphData
    provider: str
    attempts: list[dict[str, Any]]
    schema_hash: str


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


async def extract_graph(context: str, options: ExtractOptions | None = None) -> Extraction:
    options = options or ExtractOptions()
    settings = get_settings()
    candidates = providers_for(options.provider_chain)
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT.format(schema=schema_text())},
        {"role": "user", "content": context},
    ]

    strategy = options.strategy or settings.extract_strategy

    final: dict[str, ApiError] = {}  # each provider's last failure

    async def ask(provider: ProviderConfig) -> GraphData:
        left = len(candidates) - candidates.index(provider)
        share = Deadline.after(attempt_budget(strategy, current_deadline().timeout(), left))
        failures: list[ApiError] = []
        for _ in range(max(1, options.max_attempts)):
            try:
                return await _one_attempt(provider, messages, options, share)
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
        graph=outcome.value,
        provider=outcome.provider,
        attempts=[a.as_dict() for a in outcome.attempts],
        schema_hash=schema_hash(),
    )


async def _one_attempt(
    provider: ProviderConfig, messages: list[dict[str, Any]], options: ExtractOptions, share: Deadline
) -> GraphData:
    """One answer from `provider` (repaired once if it is not JSON), within the provider's share of the budget."""
    completion = await llm.complete(
        provider, messages, json_mode=True, temperature=options.temperature, timeout=share.timeout()
    )
    try:
        value = llm.parse_json_answer(provider.name, completion.text)
    except llm.InvalidJsonAnswer:
        if not options.repair_if_invalid:
            raise
        repair = [{"role": "user", "content": REPAIR_PROMPT.format(schema=schema_text(), answer=completion.text)}]
        repaired = await llm.complete(provider, repair, json_mode=True, temperature=0.0, timeout=share.timeout())
        value = llm.parse_json_answer(provider.name, repaired.text)
    graph = validate_graph(value, strict=options.strict)
    if not graph.nodes and not graph.edges and options.allow_empty:
        return graph
    if len(graph.nodes) < options.min_nodes or len(graph.edges) < options.min_edges:
        raise Unacceptable(
            f"{provider.name} returned {len(graph.nodes)} nodes and {len(graph.edges)} edges; "
            f"at least {options.min_nodes} and {options.min_edges} are required."
        )
    return graph


def validate_graph(value: Any, *, strict: bool) -> GraphData:
    """A GraphData from a model's JSON. strict: prune what is invalid; else any invalid item rejects the answer."""
    raw = normalize(value)
    if not strict:
        try:
            return GraphData.model_validate(raw)
        except ValidationError as exc:
            raise Unacceptable(f"the graph does not match the schema: {_first_error(exc)}") from None
    nodes: dict[str, Node] = {}
    for item in raw["nodes"]:
        try:
            node = Node.model_validate(item)
        except ValidationError:
            continue
        nodes.setdefault(node.id, node)
    edges: dict[tuple[str, str, str], Edge] = {}
    for item in raw["edges"]:
        try:
            edge = Edge.model_validate(item)
        except ValidationError:
            continue
        if edge.src in nodes and edge.dst in nodes and edge.src != edge.dst:
            edges.setdefault((edge.src, edge.type, edge.dst), edge)
    return GraphData(nodes=list(nodes.values()), edges=list(edges.values()))


def normalize(value: Any) -> dict[str, list[Any]]:
    """Accept the common shapes models produce: entities/relations, dict props, source/target."""
    if not isinstance(value, dict):
        raise Unacceptable("the answer is not a JSON object with nodes and edges")
    nodes = value.get("nodes", value.get("entities", []))
    edges = value.get("edges", value.get("relations", value.get("relationships", [])))
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise Unacceptable("nodes and edges must be lists")
    return {
        "nodes": [_node(n) for n in nodes if isinstance(n, dict)],
        "edges": [_edge(e) for e in edges if isinstance(e, dict)],
    }


def _props(value: Any) -> Any:
    if isinstance(value, dict):
        return [{"key": key, "value": item} for key, item in value.items()]
    return value if value is not None else []


def _node(item: dict[str, Any]) -> dict[str, Any]:
    node = dict(item)
    if not node.get("id") and node.get("name"):
        node["id"] = slug(str(node.get("type", "entity")), str(node["name"]))
    node.setdefault("type", node.pop("label", "Entity"))
    node["props"] = _props(node.get("props", node.pop("properties", None)))
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


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
