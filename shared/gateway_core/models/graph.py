"""Graph data as requests carry it and as the stores return it.

What a request may name, decided here (a 422 otherwise), so that nothing else
reaches a store:
- labels and relation types are Unicode identifiers (letters of any script,
  digits and `_`, not starting with a digit, at most 64 characters). One rule
  turns the predecessor's spaced types into identifiers: surrounding spaces are
  trimmed and every run of whitespace or hyphens becomes one `_` (`Job Title` ->
  `Job_Title`, `HAS JOB TITLE` -> `HAS_JOB_TITLE`, `part-of` -> `part_of`); the
  original text is kept in the `original_type` property. Anything the rule does
  not turn into an identifier is refused.
- property keys are stored as given when they are safe to backtick-quote
  (`is_safe_name`): 1-64 characters, no backtick, no control, format or
  unassigned characters, no line breaks, no leading or trailing whitespace
  (`job title`, `start-date` and `職稱` are fine).
- a node's name may come inside `props` (`{"key": "name", "value": ...}`, the
  predecessor's shape); an explicit `name` field wins.
- a node's other names may come as `aliases` on the node itself (a list, or one
  text), the predecessor's shape: they join its `aliases` property, which
  resolution and linking read.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, FiniteFloat, field_validator, model_validator

MAX_IDENTIFIER = 64
# Set by the store itself; a caller's props cannot overwrite them.
RESERVED_KEYS = frozenset({"id", "tenant", "type", "name", "sources", "name_keys"})
# Where a type's original text is kept when `as_identifier` changed it.
ORIGINAL_TYPE_KEY = "original_type"

_SEPARATORS = re.compile(r"[\s\-]+")


def is_identifier(name: str) -> bool:
    """Unicode identifier (XID_Start XID_Continue*: `人物`, `創立`, `WORKS_AT`), at most 64 characters."""
    return 0 < len(name) <= MAX_IDENTIFIER and name.isidentifier()


def check_identifier(name: str) -> str:
    """For pydantic validators: a ValueError becomes a normal ValidationError (422)."""
    if not is_identifier(name):
        raise ValueError(
            f"{name!r} is not an identifier: use letters, digits or _, not starting with a digit, "
            f"at most {MAX_IDENTIFIER} characters (spaces and hyphens become _)"
        )
    return name


def as_identifier(text: str) -> str:
    """The one rule for types: trim, then every run of whitespace or hyphens becomes one `_`.

    `Job Title` -> `Job_Title`, `HAS JOB TITLE` -> `HAS_JOB_TITLE`. The result may still not be an
    identifier (`1st`, `a.b`): callers check it."""
    return _SEPARATORS.sub("_", text.strip())


def _unsafe_character(ch: str) -> bool:
    category = unicodedata.category(ch)
    return ch == "`" or category[0] == "C" or category in ("Zl", "Zp")


def is_safe_name(name: str) -> bool:
    """Safe to backtick-quote: 1-64 characters, no backtick, no control, format, private-use or
    unassigned character, no line or paragraph separator, no leading or trailing whitespace."""
    return 0 < len(name) <= MAX_IDENTIFIER and name == name.strip() and not any(_unsafe_character(ch) for ch in name)


def check_safe_name(name: str) -> str:
    if not is_safe_name(name):
        raise ValueError(
            f"{name!r} is not a usable property key: 1-{MAX_IDENTIFIER} characters, no backtick, "
            "no control characters or line breaks, no leading or trailing spaces"
        )
    return name


# A label or relation type, after `as_identifier`. The JSON Schema pattern is for readers of the
# published schema; the validator (str.isidentifier) is what decides.
Identifier = Annotated[
    str,
    Field(max_length=MAX_IDENTIFIER, json_schema_extra={"pattern": r"^[^\W\d]\w*$"}),
    AfterValidator(check_identifier),
]

# A property key, stored as given.
PropKey = Annotated[
    str,
    Field(min_length=1, max_length=MAX_IDENTIFIER, json_schema_extra={"pattern": "^[^`]+$"}),
    AfterValidator(check_safe_name),
]

# Stored natively: FalkorDB and Neo4j both keep primitives and lists of primitives.
Scalar = str | int | FiniteFloat | bool
Value = Scalar | None | list[Scalar]


class Prop(BaseModel):
    key: PropKey
    value: Value

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, key: str) -> str:
        if key in RESERVED_KEYS:
            raise ValueError(f"{key!r} is reserved and cannot be set through props")
        return key

    @field_validator("value")
    @classmethod
    def _homogeneous_list(cls, value: Value) -> Value:
        # Neo4j stores only lists of one type; refusing others here keeps both stores alike.
        if isinstance(value, list) and len({type(item) for item in value}) > 1:
            raise ValueError("a list value must hold items of one type (all strings, all numbers...)")
        return value


def _props_list(props: Any) -> Any:
    """`{key: value}` props as the list of `{key, value}` the models take; anything else unchanged."""
    if isinstance(props, dict):
        return [{"key": key, "value": value} for key, value in props.items()]
    return list(props) if isinstance(props, list) else props


def _normalize_type(data: dict[str, Any]) -> None:
    """Apply `as_identifier` to `type`, keeping the original text in `original_type` (in place)."""
    kind = data.get("type")
    if not isinstance(kind, str):
        return
    normal = as_identifier(kind)
    if normal == kind or not is_identifier(normal):  # unchanged, or refused with the caller's own text
        return
    data["type"] = normal
    props = data.get("props")
    if isinstance(props, list):
        if not any(isinstance(p, dict) and p.get("key") == ORIGINAL_TYPE_KEY for p in props):
            data["props"] = [*props, {"key": ORIGINAL_TYPE_KEY, "value": kind}]
    elif props is None or "props" not in data:
        data["props"] = [{"key": ORIGINAL_TYPE_KEY, "value": kind}]


def normalize_id(value: Any) -> Any:
    """One node, one id: surrounding whitespace off and Unicode NFC (`" Café"` and `"Cafe\u0301"` are `Café`)."""
    return unicodedata.normalize("NFC", value.strip()) if isinstance(value, str) else value


NodeId = Annotated[str, BeforeValidator(normalize_id), Field(min_length=1, max_length=512)]


class Node(BaseModel):
    id: NodeId
    type: Identifier = Field(
        description="An identifier; spaces and hyphens become _ (`Job Title` -> `Job_Title`), "
        "the original text is kept in the `original_type` property."
    )
    name: str | None = Field(default=None, max_length=1024, description="Or a `name` entry in props.")
    props: list[Prop] = []

    @model_validator(mode="before")
    @classmethod
    def _predecessor_shape(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        props = _props_list(data.get("props"))
        if isinstance(props, list):
            kept = []
            for prop in props:
                if isinstance(prop, dict) and prop.get("key") == "name":
                    if data.get("name") is None or data.get("name") == "":  # an explicit name wins
                        value = prop.get("value")
                        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
                        data["name"] = str(value) if is_number else value
                    continue
                kept.append(prop)
            data["props"] = kept
        if "aliases" in data:
            _aliases_into_props(data)
        _normalize_type(data)
        return data


def _aliases_into_props(data: dict[str, Any]) -> None:
    """`aliases` given on the node itself (the predecessor's shape) joins an `aliases` prop (in place)."""
    given = data.pop("aliases")
    if given is None:
        return
    values = [given] if isinstance(given, str) else given
    props = data.get("props")
    props = list(props) if isinstance(props, list) else []
    at = next((i for i, p in enumerate(props) if isinstance(p, dict) and p.get("key") == "aliases"), None)
    if at is None:
        props.append({"key": "aliases", "value": values})
    else:
        before = props[at].get("value")
        before = [before] if isinstance(before, str) else before
        both = [*before, *values] if isinstance(before, list) and isinstance(values, list) else None
        if both is not None and all(isinstance(v, str) for v in both):
            values = list(dict.fromkeys(both))
        props[at] = {"key": "aliases", "value": values}
    data["props"] = props


class Edge(BaseModel):
    src: NodeId
    dst: NodeId
    type: Identifier = Field(
        description="An identifier; spaces and hyphens become _ (`HAS JOB TITLE` -> `HAS_JOB_TITLE`), "
        "the original text is kept in the `original_type` property."
    )
    props: list[Prop] = []
    sources: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _predecessor_shape(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "props" in data:
            data["props"] = _props_list(data["props"])
        _normalize_type(data)
        return data


class GraphData(BaseModel):
    """Nodes and edges extracted from text. Types are identifiers (letters of any script, digits and _,
    not starting with a digit, at most 64 characters; spaces and hyphens become _); property keys are
    at most 64 characters without backticks or control characters."""

    nodes: list[Node] = Field(default=[], max_length=10_000)
    edges: list[Edge] = Field(default=[], max_length=20_000)


def extraction_schema() -> dict[str, Any]:
    """The JSON Schema of `GraphData`: what extractors are asked for (published as schemas/graph.schema.json)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **GraphData.model_json_schema()}


class SubgraphNode(BaseModel):
    id: str
    type: str
    props: dict[str, Any] = {}  # the stored properties, including name and sources


class SubgraphEdge(BaseModel):
    src: str
    dst: str
    type: str
    props: dict[str, Any] = {}  # including sources


class Subgraph(BaseModel):
    nodes: list[SubgraphNode] = []
    edges: list[SubgraphEdge] = []


if __name__ == "__main__":  # prints the published schema: python -m gateway_core.models.graph
    import json

    print(json.dumps(extraction_schema(), indent=2, ensure_ascii=False))
