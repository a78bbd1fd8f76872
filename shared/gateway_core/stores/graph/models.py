"""Graph data as requests carry it and as the stores return it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from .identifiers import RESERVED_KEYS, check_identifier

Scalar = str | int | float | bool
Value = Scalar | None | list[Scalar]


class Prop(BaseModel):
    key: str
    value: Value

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        check_identifier(key)
        if key in RESERVED_KEYS:
            raise ValueError(f"'{key}' is reserved and cannot be set through props")
        return key


class Node(BaseModel):
    id: str = Field(min_length=1, max_length=512)
    type: str
    name: str | None = Field(default=None, max_length=1024)
    props: list[Prop] = []

    _type = field_validator("type")(lambda cls, value: check_identifier(value))


class Edge(BaseModel):
    src: str = Field(min_length=1, max_length=512)
    dst: str = Field(min_length=1, max_length=512)
    type: str
    props: list[Prop] = []
    sources: list[str] = []

    _type = field_validator("type")(lambda cls, value: check_identifier(value))


class GraphData(BaseModel):
    nodes: list[Node] = Field(default=[], max_length=10_000)
    edges: list[Edge] = Field(default=[], max_length=20_000)


class SubgraphNode(BaseModel):
    id: str
    type: str
    props: dict[str, Any] = {}


class SubgraphEdge(BaseModel):
    src: str
    dst: str
    type: str
    props: dict[str, Any] = {}


class Subgraph(BaseModel):
    nodes: list[SubgraphNode] = []
    edges: list[SubgraphEdge] = []
