"""The graph store interface: what retrieval, extraction and ingestion need, nothing more."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ...errors import Unavailable
from .models import GraphData, Subgraph


class GraphUnavailable(Unavailable):
    code = "graph_unavailable"


@dataclass(frozen=True)
class UpsertResult:
    nodes: int
    edges: int


@dataclass(frozen=True)
class DeleteResult:
    nodes_deleted: int
    edges_deleted: int
    edges_updated: int


class GraphStore(Protocol):
    async def upsert(self, tenant: str, data: GraphData, *, sources: Sequence[str] = (),
                     timeout: float | None = None) -> UpsertResult: ...

    async def expand(self, tenant: str, *, ids: Sequence[str] = (), names: Sequence[str] = (),
                     text: str | None = None, max_hops: int = 1, fan_out: int = 25, limit: int = 200,
                     timeout: float | None = None) -> Subgraph: ...

    async def delete_sources(self, tenant: str, sources: Sequence[str], *,
                             timeout: float | None = None) -> DeleteResult: ...

    async def query(self, tenant: str, cypher: str, params: dict[str, Any] | None = None, *, limit: int = 1000,
                    timeout: float | None = None) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...
