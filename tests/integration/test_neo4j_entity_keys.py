"""The Neo4j adapter finds entities through key nodes, kept in step by every write that changes names or merges.

Run with the real neo4j driver against FalkorDB's Bolt port (no Neo4j server here), on a FalkorDB of
this module's own: its Bolt endpoint hangs the next new connection after a client closes one, so the
module keeps ONE driver open and never shares the session server's Bolt port.

The tests prove behaviour: which key nodes exist after each write, and that the lookups read them (a
lookup stops finding an entity once its key node is gone, even though `name_keys` still lists the key).
That the lookups are index seeks on Neo4j is the static check in tests/unit/test_neo4j_lookups.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from gateway_core.deadline import Deadline, set_current
from gateway_core.models.graph import GraphData
from gateway_core.services import resolution
from gateway_core.stores.graph.names import name_key
from gateway_core.stores.graph.neo4j import KEY_LABEL, MERGED_LABEL, Neo4jGraphStore
from infra.local.falkordb_server import LocalFalkorDB

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def bolt_server() -> Iterator[LocalFalkorDB]:
    with LocalFalkorDB(bolt=True) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def driver(bolt_server: LocalFalkorDB) -> AsyncIterator[Any]:
    import neo4j

    shared = neo4j.AsyncGraphDatabase.driver(bolt_server.bolt_uri, auth=None)  # FalkorDB's Bolt: no auth
    yield shared
    await shared.close()


@pytest_asyncio.fixture(loop_scope="module")
async def store(bolt_server: LocalFalkorDB, driver: Any) -> AsyncIterator[Neo4jGraphStore]:
    graph_store = Neo4jGraphStore(bolt_server.bolt_uri, driver=driver)
    yield graph_store
    await graph_store.close()  # the shared driver stays open


@pytest.fixture
def tenant() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def graph(nodes: list[dict] | None = None, edges: list[dict] | None = None) -> GraphData:
    return GraphData.model_validate({"nodes": nodes or [], "edges": edges or []})


async def run(driver: Any, statement: str, **params: Any) -> list[dict[str, Any]]:
    """A statement straight through the driver, as an operator (or an older version of the adapter) would."""
    async with driver.session() as session:
        result = await session.run(statement, params)
        return [dict(record) async for record in result]


async def key_nodes(driver: Any, tenant: str) -> set[tuple[str, str]]:
    rows = await run(
        driver,
        f"MATCH (k:{KEY_LABEL})-[:KEY_OF]->(n:Entity) WHERE k.tenant = $tenant RETURN k.key AS key, n.id AS id",
        tenant=tenant,
    )
    return {(row["key"], row["id"]) for row in rows}


async def merged_nodes(driver: Any, tenant: str) -> set[tuple[str, str]]:
    rows = await run(
        driver,
        f"MATCH (m:{MERGED_LABEL})-[:MERGED_INTO]->(n:Entity) WHERE m.tenant = $tenant RETURN m.absorbed AS absorbed, n.id AS id",
        tenant=tenant,
    )
    return {(row["absorbed"], row["id"]) for row in rows}


async def orphans(driver: Any, tenant: str) -> int:
    """Key nodes of the tenant that point at no entity (a delete that forgot them)."""
    rows = await run(
        driver,
        f"MATCH (k) WHERE (k:{KEY_LABEL} OR k:{MERGED_LABEL}) AND k.tenant = $tenant "
        "AND NOT (k)-[:KEY_OF|MERGED_INTO]->(:Entity) RETURN count(k) AS n",
        tenant=tenant,
    )
    return int(rows[0]["n"])


NORTHWIND = {
    "id": "company:nw",
    "type": "Company",
    "name": "Northwind Thermal",
    "props": {"aliases": ["北風熱能", "NW Thermal"]},
}
LIN = {"id": "person:lin", "type": "人物", "name": "林小明"}


# --- lookups -------------------------------------------------------------------------------------


async def test_every_name_and_alias_has_a_key_node(store, driver, tenant):
    await store.upsert(tenant, graph([NORTHWIND, LIN]), sources=["d#0"])
    assert await key_nodes(driver, tenant) == {
        ("northwind thermal", "company:nw"),
        ("北風熱能", "company:nw"),
        ("nw thermal", "company:nw"),
        ("林小明", "person:lin"),
    }
    await store.upsert(tenant, graph([NORTHWIND, LIN]), sources=["d#1"])  # idempotent: no second key node
    assert len(await run(driver, f"MATCH (k:{KEY_LABEL}) WHERE k.tenant = $tenant RETURN k", tenant=tenant)) == 4


async def test_lookup_by_name_alias_and_cjk_name(store, tenant):
    await store.upsert(tenant, graph([NORTHWIND, LIN]), sources=["d#0"])
    by_name = await store.link(tenant, [name_key("NORTHWIND  thermal!")])
    assert [(n.id, n.name, n.mentions) for n in by_name] == [("company:nw", "Northwind Thermal", 1)]
    assert [n.id for n in await store.link(tenant, [name_key("北風熱能")])] == ["company:nw"]
    assert {n.id for n in (await store.expand(tenant, names=["NW Thermal"], max_hops=0)).nodes} == {"company:nw"}
    found = await store.expand(tenant, text="林小明在北風熱能工作嗎?", max_hops=0)  # CJK n-grams of a question
    assert {n.id for n in found.nodes} == {"company:nw", "person:lin"}
    assert await store.link(tenant, ["northwind"]) == []  # a key, not a substring


async def test_the_lookup_reads_the_key_nodes_not_the_list(store, driver, tenant):
    await store.upsert(tenant, graph([NORTHWIND]))
    await run(driver, f"MATCH (k:{KEY_LABEL} {{tenant: $tenant, key: 'nw thermal'}}) DETACH DELETE k", tenant=tenant)
    assert await store.link(tenant, ["nw thermal"]) == []  # name_keys still lists it: the lookup did not scan it
    assert [n.id for n in await store.link(tenant, ["northwind thermal"])] == ["company:nw"]
    await store.upsert(tenant, graph([NORTHWIND]))  # the next write of the entity puts the missing key back
    assert [n.id for n in await store.link(tenant, ["nw thermal"])] == ["company:nw"]


async def test_a_new_alias_gets_its_key_node(store, driver, tenant):
    await store.upsert(tenant, graph([{"id": "x", "type": "Thing", "name": "Xylo"}]))
    await store.upsert(tenant, graph([{"id": "x", "type": "Thing", "name": "Xylo", "props": {"aliases": ["Zyl"]}}]))
    assert await key_nodes(driver, tenant) == {("xylo", "x"), ("zyl", "x")}


async def test_lookup_by_an_absorbed_id(store, driver, tenant):
    survivor = {**NORTHWIND, "props": {"merged_from": ["nw-2", "nw-3"]}}
    await store.upsert(tenant, graph([survivor]))
    assert await merged_nodes(driver, tenant) == {("nw-2", "company:nw"), ("nw-3", "company:nw")}
    assert {n.id for n in (await store.expand(tenant, ids=["nw-3"], max_hops=0)).nodes} == {"company:nw"}
    await store.upsert(tenant, graph([{**NORTHWIND, "props": {"merged_from": ["nw-3"]}}]))  # nw-2 given back
    assert await merged_nodes(driver, tenant) == {("nw-3", "company:nw")}
    assert (await store.expand(tenant, ids=["nw-2"], max_hops=0)).nodes == []
    await store.upsert(tenant, graph([{**NORTHWIND, "props": {}}]))  # a write that does not set merged_from
    assert await merged_nodes(driver, tenant) == {("nw-3", "company:nw")}


async def test_tenants_do_not_share_key_nodes(store, tenant):
    other = f"{tenant}_b"
    await store.upsert(tenant, graph([NORTHWIND]))
    await store.upsert(other, graph([{**NORTHWIND, "id": "company:other"}]))
    assert [n.id for n in await store.link(tenant, ["northwind thermal"])] == ["company:nw"]
    assert [n.id for n in await store.link(other, ["northwind thermal"])] == ["company:other"]


async def test_a_callers_node_typed_like_a_key_node_is_never_taken_for_one(store, driver, tenant):
    fake = {"id": "fake", "type": KEY_LABEL, "name": "Fake", "props": {"key": "secret"}}
    target = {"id": "target", "type": "Thing", "name": "Target"}
    await store.upsert(
        tenant, graph([fake, target], [{"src": "fake", "dst": "target", "type": "KEY_OF"}]), sources=["d#0"]
    )
    assert await store.link(tenant, ["secret"]) == []
    await store.delete_sources(tenant, ["nothing"])
    assert await store.count(tenant) == (2, 1)
    await store.delete_sources(tenant, ["d#0"])
    assert await store.count(tenant) == (0, 0)
    assert await orphans(driver, tenant) == 0


# --- deletes -------------------------------------------------------------------------------------


async def test_deleting_a_source_takes_the_key_nodes_of_the_entities_it_removes(store, driver, tenant):
    survivor = {**NORTHWIND, "props": {"aliases": ["北風熱能"], "merged_from": ["nw-2"]}}
    await store.upsert(tenant, graph([survivor, LIN]), sources=["a#0"])
    await store.upsert(tenant, graph([LIN]), sources=["b#0"])  # Lin is stated by another source too
    result = await store.delete_sources(tenant, ["a#0"])
    assert result.nodes_deleted == 1
    assert await key_nodes(driver, tenant) == {("林小明", "person:lin")}
    assert await merged_nodes(driver, tenant) == set()
    assert await orphans(driver, tenant) == 0
    assert await store.link(tenant, ["northwind thermal", "北風熱能"]) == []
    assert (await store.expand(tenant, ids=["nw-2"], max_hops=0)).nodes == []
    assert [n.id for n in await store.link(tenant, ["林小明"])] == ["person:lin"]


async def test_a_document_written_again_after_its_delete_is_found_again(store, tenant):
    await store.upsert(tenant, graph([NORTHWIND]), sources=["a#0"])
    await store.delete_sources(tenant, ["a#0"])
    await store.upsert(tenant, graph([NORTHWIND]), sources=["a#0"])
    assert [n.id for n in await store.link(tenant, ["nw thermal"])] == ["company:nw"]


# --- resolution's merges and their undo ------------------------------------------------------------


@pytest.fixture
def resolving(store: Neo4jGraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """resolution.write/undo over this module's Neo4j store (qdrant-edge and the in-process model for the rest)."""
    from gateway_core import dependencies

    set_current(Deadline.after(120))
    monkeypatch.setattr(dependencies, "graph_store", lambda: store)


async def test_a_merge_and_its_undo_keep_the_key_nodes_in_step(store, driver, tenant, resolving):
    await resolution.write(tenant, graph([{"id": "nw-en", "type": "Company", "name": "Northwind Thermal"}]), ["d#0"])
    zh = {"id": "nw-zh", "type": "Company", "name": "北風熱能", "props": {"aliases": ["Northwind Thermal"]}}
    await resolution.write(tenant, graph([zh]), ["d#1"])
    assert await merged_nodes(driver, tenant) == {("nw-zh", "nw-en")}
    assert await key_nodes(driver, tenant) == {("northwind thermal", "nw-en"), ("北風熱能", "nw-en")}
    assert {n.id for n in (await store.expand(tenant, ids=["nw-zh"], max_hops=0)).nodes} == {"nw-en"}

    [merge] = await resolution.merges(tenant)
    await resolution.undo(tenant, merge.merge_id)
    assert await merged_nodes(driver, tenant) == set()  # the survivor no longer answers to the absorbed id
    assert {n.id for n in (await store.expand(tenant, ids=["nw-zh"], max_hops=0)).nodes} == {"nw-zh"}
    # The restored node has its own keys; the survivor keeps the absorbed name's key (resolution's rule).
    assert await key_nodes(driver, tenant) == {
        ("northwind thermal", "nw-en"),
        ("北風熱能", "nw-en"),
        ("北風熱能", "nw-zh"),
        ("northwind thermal", "nw-zh"),
    }
    assert {n.id for n in await store.link(tenant, ["北風熱能"])} == {"nw-en", "nw-zh"}
    assert await orphans(driver, tenant) == 0


# --- entities written before key nodes -----------------------------------------------------------


async def test_entities_written_before_key_nodes_get_them_once(bolt_server, driver, tenant):
    await run(
        driver,
        "CREATE (:Entity:Company {id: 'old', tenant: $tenant, name: 'Old Co', type: 'Company', sources: [],"
        " name_keys: ['old co', 'oldco'], merged_from: ['old-2']})",
        tenant=tenant,
    )
    await run(driver, "MATCH (m:GraphSchema {name: 'entity_keys'}) DELETE m")  # as before the first upgrade
    fresh = Neo4jGraphStore(bolt_server.bolt_uri, driver=driver)
    await fresh.ensure_schema(tenant)
    assert await key_nodes(driver, tenant) == {("old co", "old"), ("oldco", "old")}
    assert await merged_nodes(driver, tenant) == {("old-2", "old")}
    assert [n.id for n in await fresh.link(tenant, ["oldco"])] == ["old"]
    assert await run(driver, "MATCH (m:GraphSchema {name: 'entity_keys'}) RETURN m.name AS name") == [
        {"name": "entity_keys"}
    ]
    # Done once per database: a later process does not scan for candidates again.
    await run(driver, f"MATCH (k:{KEY_LABEL} {{tenant: $tenant}}) DETACH DELETE k", tenant=tenant)
    await Neo4jGraphStore(bolt_server.bolt_uri, driver=driver).ensure_schema(tenant)
    assert await key_nodes(driver, tenant) == set()
