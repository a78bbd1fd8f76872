"""Graph data as requests carry it and as the stores return it.

A bad label, relation type or property key fails validation here (a 422),
so it never reaches a store.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, FiniteFloat, field_validator

MAX_IDENTIFIER = 64
# Set by the store itself; a caller's props cannot overwrite them.
RESERVED_KEYS = frozenset({"id", "tenant", "type", "name", "sources", "name_keys"})


def is_identifier(name: str) -> bool:
    """Unicode identifier (XID_Start XID_Continue*: `人物`, `創立`, `WORKS_AT`), at most 64 characters."""
    return 0 < len(name) <= MAX_IDENTIFIER and name.isidentifier()


def check_identifier(name: str) -> str:
    """For pydantic validators: a ValueError becomes a normal ValidationError (422)."""
    if not is_identifier(name):
        raise ValueError(
            f"{name!r} is not an identifier: use letters, digits or _, not starting with a digit, "
            f"at most {MAX_IDENTIFIER} characters"
        )
    return name


# A label, relation type or property key. The JSON Schema pattern is for readers of the published
# schema; the validator (str.isidentifier) is what decides.
Identifier = Annotated[
    str,
    Field(max_length=MAX_IDENTIFIER, json_schema_extra={"pattern": r"^[^\W\d]\w*$"}),
    AfterValidator(check_identifier),
]

# Stored natively: FalkorDB and Neo4j both keep primitives and lists of primitives.
Scalar = str | int | FiniteFloat | bool
Value = Scalar | None | list[Scalar]


class Prop(BaseModel):
    key: Identifier
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


class Node(BaseModel):
    id: str = Field(min_length=1, max_length=512)
    type: Identifier
    name: str | None = Field(default=None, max_length=1024)
    props: list[Prop] = []


class Edge(BaseModel):
    src: str = Field(min_length=1, max_length=512)
    dst: str = Field(min_length=1, max_length=512)
    type: Identifier
    props: list[Prop] = []
    sources: list[str] = []


class GraphData(BaseModel):
    """Nodes and edges extracted from text; types and property keys are identifiers (letters of any script,
    digits and _, not starting with a digit, at most 64 characters)."""

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
