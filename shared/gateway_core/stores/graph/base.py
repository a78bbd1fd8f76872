"""The graph store interface: what retrieval, extraction and ingestion need, nothing more.

Every call takes the caller's tenant and an optional timeout in seconds; a
call never outlives its timeout (DeadlineExceeded), an unreachable server is
GraphUnavailable, and a bad raw query is BadRequest.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ...errors import BadRequest, DeadlineExceeded, Unavailable, UpstreamError
from ...models.graph import GraphData, Subgraph
from . import cypher
from .identifiers import assert_read_only, check_tenant
from .names import name_keys, question_spans

DEFAULT_TIMEOUT_S = 30.0


class GraphUnavailable(Unavailable):
    """The graph server cannot be reached, or dropped the connection."""

    code = "graph_unavailable"


class GraphQueryError(UpstreamError):
    """The server refused a statement (syntax, unknown function, a write in read-only mode).

    On an adapter's own statement that is a 502; `query` turns it into the caller's 400.
    """

    code = "graph_query_error"


@dataclass(frozen=True)
class UpsertResult:
    nodes: int
    edges: int


@dataclass(frozen=True)
class LinkedName:
    """An entity whose name or alias has `key`, and how many passages mention it."""

    key: str
    id: str
    name: str
    mentions: int


@dataclass(frozen=True)
class DeleteResult:
    nodes_deleted: int
    edges_deleted: int
    edges_updated: int


@dataclass(frozen=True)
class Expansion:
    """One neighbourhood to read: from these entity ids, at most `limit` facts."""

    ids: Sequence[str]
    limit: int


class GraphStore(Protocol):
    async def ensure_schema(self, tenant: str, *, timeout: float | None = None) -> None: ...

    async def upsert(
        self, tenant: str, data: GraphData, *, sources: Sequence[str] = (), timeout: float | None = None
    ) -> UpsertResult: ...

    async def expand(
        self,
        tenant: str,
        *,
        ids: Sequence[str] = (),
        names: Sequence[str] = (),
        text: str | None = None,
        max_hops: int = 1,
        fan_out: int = 25,
        limit: int = 200,
        timeout: float | None = None,
    ) -> Subgraph: ...

    async def expand_many(
        self,
        tenant: str,
        expansions: Sequence[Expansion],
        *,
        max_hops: int = 1,
        fan_out: int = 25,
        timeout: float | None = None,
    ) -> list[Subgraph]: ...

    async def link(
        self, tenant: str, keys: Sequence[str], *, limit: int = 500, timeout: float | None = None
    ) -> list[LinkedName]: ...

    async def delete_sources(
        self, tenant: str, sources: Sequence[str], *, timeout: float | None = None
    ) -> DeleteResult: ...

    async def query(
        self,
        tenant: str,
        cypher: str,
        params: dict[str, Any] | None = None,
        *,
        limit: int = 1000,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]: ...

    async def count(self, tenant: str, *, timeout: float | None = None) -> tuple[int, int]: ...

    async def ping(self, *, timeout: float | None = None) -> None: ...

    async def close(self) -> None: ...


class Budget:
    """One timeout shared by the several statements of one call."""

    def __init__(self, timeout: float | None) -> None:
        self._end = time.monotonic() + (DEFAULT_TIMEOUT_S if timeout is None else timeout)

    def left(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("The graph store did not answer in time.")
        return left


class CypherGraphStore(ABC):
    """What both adapters do the same way, over their own `_read`/`_write` (rows as plain dicts).

    The statements below are the shared ones (`cypher`); an adapter whose database needs another way to find
    entities replaces them (Neo4j: key nodes instead of list membership)."""

    UPSERT_NODES = cypher.UPSERT_NODES
    SEEDS_BY_MERGED_ID = cypher.SEEDS_BY_MERGED_ID
    SEEDS_BY_KEY = cypher.SEEDS_BY_KEY
    LINK = cypher.LINK
    DELETE_NODES_ONLY_FROM = cypher.DELETE_NODES_ONLY_FROM

    def __init__(self) -> None:
        self._schema_ready: set[str] = set()

    # --- what an adapter provides -------------------------------------------------------------

    @abstractmethod
    async def _read(self, tenant: str, statement: str, params: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        """Run an adapter-written read for `tenant` (binds `$tenant`); errors mapped to ApiError."""

    @abstractmethod
    async def _write(self, tenant: str, statement: str, params: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        """Run an adapter-written write for `tenant` (binds `$tenant`)."""

    @abstractmethod
    async def _create_indexes(self, tenant: str, timeout: float) -> None: ...

    def _schema_key(self, tenant: str) -> str:
        """What one schema covers: a tenant's graph, or a whole shared database."""
        return tenant

    # --- GraphStore ---------------------------------------------------------------------------

    async def ensure_schema(self, tenant: str, *, timeout: float | None = None) -> None:
        """The adapter's indexes (and, on Neo4j, its key nodes' backfill); cached after the first success."""
        key = self._schema_key(check_tenant(tenant))
        if key not in self._schema_ready:
            await self._create_indexes(tenant, Budget(timeout).left())
            self._schema_ready.add(key)

    async def upsert(
        self, tenant: str, data: GraphData, *, sources: Sequence[str] = (), timeout: float | None = None
    ) -> UpsertResult:
        budget = Budget(timeout)
        await self.ensure_schema(tenant, timeout=budget.left())
        for statement, rows in cypher.upsert_statements(data, sources, nodes=self.UPSERT_NODES):
            await self._write(tenant, statement, {"rows": rows}, budget.left())
        return UpsertResult(
            nodes=len({n.id for n in data.nodes}), edges=len({(e.src, e.type, e.dst) for e in data.edges})
        )

    async def expand(
        self,
        tenant: str,
        *,
        ids: Sequence[str] = (),
        names: Sequence[str] = (),
        text: str | None = None,
        max_hops: int = 1,
        fan_out: int = 25,
        limit: int = 200,
        timeout: float | None = None,
    ) -> Subgraph:
        """Seeds by id (or an id a merge absorbed: its survivor), name/alias or names inside `text`; then up to 3
        hops, bounded per node and in total. One statement when every id is found and no name is given."""
        check_tenant(tenant)
        names = [name for name in names if name]
        if not (ids or names or (text and text.strip())):
            return Subgraph()
        budget, limit, fan_out = Budget(timeout), max(1, limit), max(1, fan_out)
        hops = min(max(max_hops, 0), cypher.MAX_HOPS)
        keys = list(dict.fromkeys(name_keys(names) + [span.key for span in question_spans(text or "")]))
        wanted = list(dict.fromkeys(ids))
        named = await self._seed_ids(tenant, self.SEEDS_BY_KEY, {"keys": keys, "limit": limit}, budget) if keys else []
        reply = await self._expansion(tenant, [*wanted, *named], hops, fan_out, limit, budget)
        return _subgraph(await self._with_survivors(tenant, wanted, named, reply, hops, fan_out, limit, budget))

    async def expand_many(
        self,
        tenant: str,
        expansions: Sequence[Expansion],
        *,
        max_hops: int = 1,
        fan_out: int = 25,
        timeout: float | None = None,
    ) -> list[Subgraph]:
        """Several neighbourhoods by id, each bounded by its own limit: a subgraph per expansion, in order, as
        `expand(ids=...)` reads each; one statement (one round trip) where the adapter can (`_expansions`)."""
        check_tenant(tenant)
        budget, fan_out = Budget(timeout), max(1, fan_out)
        hops = min(max(max_hops, 0), cypher.MAX_HOPS)
        wanted = [list(dict.fromkeys(expansion.ids)) for expansion in expansions]
        limits = [max(1, expansion.limit) for expansion in expansions]
        parts = {k: (ids, limits[k]) for k, ids in enumerate(wanted) if ids}
        replies: dict[int, dict[str, Any]] = {k: {"seeds": [], "hops": []} for k in range(len(expansions))}
        if parts:
            replies.update(await self._expansions(tenant, parts, hops, fan_out, budget))
        for k in parts:
            replies[k] = await self._with_survivors(tenant, wanted[k], [], replies[k], hops, fan_out, limits[k], budget)
        return [_subgraph(replies[k]) for k in range(len(expansions))]

    async def _expansions(
        self, tenant: str, parts: dict[int, tuple[list[str], int]], hops: int, fan_out: int, budget: Budget
    ) -> dict[int, dict[str, Any]]:
        """Each part's expansion reply (part -> (ids, limit)): here a statement each, run at once. (FalkorDB's
        adapter sends one UNION ALL statement; on Neo4j that is untested: FalkorDB's Bolt, which the tests use
        in its place, times out on it.)"""
        expanding = [
            asyncio.ensure_future(self._expansion(tenant, ids, hops, fan_out, limit, budget))
            for ids, limit in parts.values()
        ]
        try:
            replies = await asyncio.gather(*expanding)
        except BaseException:  # one failed (or the caller gave up): the others stop too, none left running
            for expansion in expanding:
                expansion.cancel()
            raise
        return dict(zip(parts, replies, strict=True))

    async def _with_survivors(
        self,
        tenant: str,
        wanted: list[str],
        named: list[str],
        reply: dict[str, Any],
        hops: int,
        fan_out: int,
        limit: int,
        budget: Budget,
    ) -> dict[str, Any]:
        """The expansion again when some wanted ids were absorbed by a merge: they answer with the node that
        absorbed them (a second statement, only then)."""
        found = {seed["id"] for seed in reply["seeds"]}
        absorbed = [i for i in wanted if i not in found]
        if not absorbed:
            return reply
        survivors = await self._seed_ids(tenant, self.SEEDS_BY_MERGED_ID, {"ids": absorbed, "limit": limit}, budget)
        if not set(survivors) - found:
            return reply
        seeds = [*(i for i in wanted if i in found), *survivors, *named]
        return await self._expansion(tenant, seeds, hops, fan_out, limit, budget)

    async def _seed_ids(self, tenant: str, statement: str, params: dict[str, Any], budget: Budget) -> list[str]:
        return [row["id"] for row in await self._read(tenant, statement, params, budget.left())]

    async def _expansion(
        self, tenant: str, seeds: list[str], hops: int, fan_out: int, limit: int, budget: Budget
    ) -> dict[str, Any]:
        params = {"ids": seeds, "limit": limit, "fan_out": fan_out}
        rows = await self._read(tenant, cypher.expansion(hops), params, budget.left())
        return rows[0] if rows else {"seeds": [], "hops": []}

    async def link(
        self, tenant: str, keys: Sequence[str], *, limit: int = 500, timeout: float | None = None
    ) -> list[LinkedName]:
        """The entities having any of these name keys (one indexed lookup per key)."""
        check_tenant(tenant)
        if not keys:
            return []
        rows = await self._read(
            tenant, self.LINK, {"keys": list(dict.fromkeys(keys)), "limit": max(1, limit)}, Budget(timeout).left()
        )
        return [LinkedName(row["key"], row["id"], str(row["name"]), int(row["mentions"])) for row in rows]

    async def delete_sources(
        self, tenant: str, sources: Sequence[str], *, timeout: float | None = None
    ) -> DeleteResult:
        """Remove these sources everywhere; what only they stated goes, what others state too stays."""
        check_tenant(tenant)
        if not sources:
            return DeleteResult(nodes_deleted=0, edges_deleted=0, edges_updated=0)
        budget, params = Budget(timeout), {"sources": list(sources)}

        async def run(statement: str) -> int:
            rows = await self._write(tenant, statement, params, budget.left())
            return int(rows[0]["n"]) if rows else 0

        edges_deleted = await run(cypher.DELETE_EDGES_ONLY_FROM)
        edges_updated = await run(cypher.STRIP_EDGE_SOURCES)
        nodes_deleted = await run(self.DELETE_NODES_ONLY_FROM)
        await run(cypher.STRIP_NODE_SOURCES)
        return DeleteResult(nodes_deleted=nodes_deleted, edges_deleted=edges_deleted, edges_updated=edges_updated)

    async def count(self, tenant: str, *, timeout: float | None = None) -> tuple[int, int]:
        """(entities, relations) of this tenant."""
        check_tenant(tenant)
        rows = await self._read(tenant, cypher.COUNT, {}, Budget(timeout).left())
        return (int(rows[0]["nodes"]), int(rows[0]["edges"])) if rows else (0, 0)

    # --- for the adapters' `query` ------------------------------------------------------------

    @staticmethod
    def _checked_query(tenant: str, statement: str, params: dict[str, Any] | None) -> dict[str, Any]:
        """The checks every raw query passes before a database sees it; returns its parameters."""
        check_tenant(tenant)
        assert_read_only(statement)
        params = dict(params or {})
        if "tenant" in params:
            raise BadRequest("'tenant' is a reserved parameter: the store binds $tenant to the caller's tenant.")
        return params


def _subgraph(reply: dict[str, Any]) -> Subgraph:
    """The expansion's reply as a subgraph: the seeds, then each hop's new facts and the entities they reach.

    The statement already bounds the facts (`limit`) and lists each fact and entity once, in the order it read
    them. Plain dicts first, validated as one model at the end: hundreds of per-model validations cost twice
    as much.
    """
    nodes = {node["id"]: node for node in map(_node, reply["seeds"])}
    edges: dict[tuple[str, str, str], dict[str, Any]] = {}
    for facts, entities in reply["hops"]:
        for src, dst, rel, props in facts:
            edges.setdefault(
                (src, rel, dst), {"src": src, "dst": dst, "type": rel, "props": cypher.visible_props(props)}
            )
        for node in map(_node, entities):
            nodes.setdefault(node["id"], node)
    return Subgraph.model_validate({"nodes": list(nodes.values()), "edges": list(edges.values())})


def _node(props: dict[str, Any]) -> dict[str, Any]:
    """An entity from its property map (the hidden ones arrive as nulls)."""
    return {"id": props["id"], "type": props.get("type") or "Entity", "props": cypher.visible_props(props)}
