"""POST /documents/{doc_id}/reextract: a document's graph extracted again from its stored chunks.

The retrieve function's real handler, FalkorDB, the embedded vector store and the fake OpenAI-compatible
server (which reports usage, plays errors and latency). Documents are ingested with POST /documents.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from urllib.parse import quote

import pytest

from infra.local.lambda_events import http_event
from infra.local.openai_server import Callback, Error, Reply
from tests.fixtures.environment import reconfigure
from tests.fixtures.llm_server import provider_env
from tests.handlers import invoke
from tests.integration.test_documents import LONG_DOC, OWN_GRAPH, SENTENCES
from tests.integration.test_ingest_function import ACME, ENTITIES, graph_rows
from tests.integration.test_ingest_graph_changes import SECRET_TEXT, sloppy_extractor

GLOBEX = "test-key-globex"


def extractor(relation: str) -> Callback:
    """An extractor naming the known entities of the chunk, linked in order by `relation`."""

    def reply(body: dict) -> Reply:
        text = body["messages"][-1]["content"]
        found = list(dict.fromkeys(ENTITIES[name] for name in ENTITIES if name in text))
        nodes = [{"id": eid, "type": etype, "name": eid.split(":")[1]} for eid, etype in found]
        edges = [{"src": a["id"], "dst": b["id"], "type": relation} for a, b in itertools.pairwise(nodes)]
        return Reply({"nodes": nodes, "edges": edges})

    return Callback(reply)


@pytest.fixture
def llm(fake_llm, falkordb_server, monkeypatch):
    reconfigure(
        monkeypatch,
        FALKORDB_URL=falkordb_server.url,
        GRAPH_NAME=f"reextract{time.monotonic_ns()}",
        LLM_PROVIDERS=provider_env(fake_llm, "extractor"),
        LLM_MAX_RETRIES="0",
        CHUNK_SIZE="120",
        CHUNK_OVERLAP="0",
        EXTRACT_CONCURRENCY="1",
    )
    fake_llm.set_default("extractor", extractor("OLD_FACT"))
    return fake_llm


def api(method: str, path: str, body: dict | None = None, key: str = ACME):
    return invoke("retrieve", http_event(method, path, body, api_key=key))


def reextract(doc_id: str, body: dict | None = None, key: str = ACME):
    return api("POST", f"/documents/{quote(doc_id, safe='')}/reextract", body, key)


def ingest(doc_id: str = "offices.md", text: str = LONG_DOC, graph: dict | None = None) -> dict:
    response = api("POST", "/documents", {"doc_id": doc_id, "text": text, **({"graph": graph} if graph else {})})
    assert response.status == 200, response.text
    return response.json()["document"]


def facts() -> list[tuple[str, str, str, list[str]]]:
    rows = graph_rows("MATCH (a)-[r]->(b) RETURN a.id AS a, type(r) AS t, b.id AS b, r.sources AS s")
    return sorted((row["a"], row["t"], row["b"], sorted(row["s"])) for row in rows)


def document(doc_id: str = "offices.md") -> dict:
    return api("GET", f"/documents/{doc_id}").json()["document"]


def extracted(fake, status: int | None = 200) -> list[str]:
    """The chunk texts the model was asked about (answered with `status`)."""
    return [r.body["messages"][-1]["content"] for r in fake.requests_for("extractor") if r.status == status]


def test_reextract_replaces_the_documents_facts_once_the_new_ones_are_extracted(llm):
    ingest()
    old = facts()
    assert {t for _, t, _, _ in old} == {"OLD_FACT"}
    llm.reset()
    llm.set_default("extractor", extractor("NEW_FACT"))
    response = reextract("offices.md")
    assert response.status == 200, response.text
    new = facts()
    assert [(a, b, s) for a, _, b, s in new] == [(a, b, s) for a, _, b, s in old]  # same facts, same chunks
    assert {t for _, t, _, _ in new} == {"NEW_FACT"}  # the old extraction's are gone
    assert sorted(extracted(llm)) == sorted(SENTENCES)  # from the stored chunks, each asked once
    run = response.json()["document"]["reextract"]
    assert (run["state"], run["chunks_done"], run["chunks"], run["calls"]) == ("done", 6, 6, 6)
    assert run["tokens"] > 0 and response.json()["done"] is True


def test_a_fact_another_document_states_too_stays_with_that_document(llm):
    ingest()
    ingest("other.md", "Lin Xiaoming works at Northwind Thermal.")
    llm.set_default("extractor", extractor("NEW_FACT"))
    assert reextract("offices.md").status == 200
    old = [(a, b, [s.split("#")[0] for s in sources]) for a, t, b, sources in facts() if t == "OLD_FACT"]
    assert old == [("person:lin", "company:northwind", ["other.md"])]


def test_an_unknown_document_is_404(llm):
    response = reextract("nothing.md")
    assert (response.status, response.json()["error"]) == (404, "not_found")


def test_another_tenant_cannot_reextract_the_document(llm):
    ingest()
    before, calls = facts(), len(llm.requests)
    assert reextract("offices.md", key=GLOBEX).status == 404
    assert (facts(), len(llm.requests)) == (before, calls)


def test_a_failed_extraction_keeps_the_old_facts(llm):
    ingest()
    before = facts()
    llm.set_default("extractor", Error(500, message="the model crashed"))
    response = reextract("offices.md")
    assert (response.status, response.json()["error"]) == (502, "extraction_failed"), response.text
    assert facts() == before
    status = document()
    assert (status["state"], status["reextract"]["state"]) == ("ready", "failed")
    assert "the model crashed" in status["reextract"]["error"]


def test_a_failure_midway_keeps_the_old_facts_and_the_next_call_extracts_only_the_rest(llm):
    ingest()
    before = facts()
    llm.reset()
    new = extractor("NEW_FACT")

    def flaky(body: dict):
        return Error(500) if "office number 4 " in body["messages"][-1]["content"] else new.fn(body)

    llm.set_default("extractor", Callback(flaky))
    assert reextract("offices.md").status >= 500
    assert facts() == before
    first = extracted(llm)
    llm.reset()
    llm.set_default("extractor", new)
    assert reextract("offices.md").status == 200
    assert sorted(first + extracted(llm)) == sorted(SENTENCES)  # nothing extracted twice
    assert {t for _, t, _, _ in facts()} == {"NEW_FACT"}


def test_over_budget_is_refused_before_anything_changes(llm, monkeypatch):
    ingest()
    before, calls = facts(), len(llm.requests)
    reconfigure(monkeypatch, EXTRACT_TOKEN_BUDGET="1")  # ingestion spent it
    response = reextract("offices.md")
    assert (response.status, response.json()["error"]) == (429, "budget_exhausted")
    assert response.json()["details"]["budget"]["remaining"] == 0
    assert (facts(), len(llm.requests)) == (before, calls)


def test_a_budget_spent_midway_pauses_without_wiping_and_a_raised_one_continues(llm, monkeypatch):
    ingest()
    before = facts()
    used = api("GET", "/documents").json()["budget"]["used"]
    reconfigure(monkeypatch, EXTRACT_TOKEN_BUDGET=str(used + 1))  # one more call spends it
    llm.reset()
    llm.set_default("extractor", extractor("NEW_FACT"))
    response = reextract("offices.md")
    assert (response.status, response.json()["error"]) == (429, "budget_exhausted")
    assert facts() == before
    assert (document()["reextract"]["state"], document()["reextract"]["chunks_done"]) == ("paused (budget)", 1)
    reconfigure(monkeypatch, EXTRACT_TOKEN_BUDGET=str(used * 10))
    assert reextract("offices.md").status == 200
    assert sorted(extracted(llm)) == sorted(SENTENCES)
    assert {t for _, t, _, _ in facts()} == {"NEW_FACT"}


def test_a_long_document_is_reextracted_over_several_calls_with_progress(llm):
    ingest()
    before = facts()
    llm.set_default("extractor", extractor("NEW_FACT"))
    progress = []
    for _ in range(3):
        response = reextract("offices.md", {"max_chunks": 2})
        body = response.json()
        progress.append((response.status, body["done"], body["document"]["reextract"]["chunks_done"]))
        if response.status == 202:
            assert facts() == before  # nothing switches before every chunk is extracted
    assert progress == [(202, False, 2), (202, False, 4), (200, True, 6)]
    assert {t for _, t, _, _ in facts()} == {"NEW_FACT"}


def test_chunks_that_do_not_fit_in_the_deadline_are_left_for_the_next_call(llm, monkeypatch):
    ingest()
    reconfigure(monkeypatch, REQUEST_TIMEOUT_S="6")  # about 3 s to extract, the rest kept for the switch
    new = extractor("NEW_FACT")
    llm.reset()
    llm.set_default("extractor", Callback(lambda body: Reply(new.fn(body).content, latency=1.0)))
    statuses = []
    for _ in range(6):
        started = time.monotonic()
        response = reextract("offices.md")
        assert time.monotonic() - started < 6, "answered within the request's deadline"
        statuses.append(response.status)
        if response.status == 200:
            break
    assert statuses[0] == 202 and statuses[-1] == 200, statuses
    assert sorted(extracted(llm)) == sorted(SENTENCES)  # every chunk extracted once, over the calls
    assert {t for _, t, _, _ in facts()} == {"NEW_FACT"}


def test_a_supplied_graph_is_refused_unless_its_replacement_is_asked_for(llm):
    ingest(graph=OWN_GRAPH)
    before = facts()
    response = reextract("offices.md")
    assert (response.status, response.json()["error"]) == (409, "supplied_graph")
    assert facts() == before and extracted(llm) == []
    response = reextract("offices.md", {"replace_supplied": True})
    assert response.status == 200, response.text
    assert {t for _, t, _, _ in facts()} == {"OLD_FACT"}  # the model's facts (the fixture's extractor)
    assert response.json()["document"]["extraction"] == "done"


def test_a_document_id_with_slashes_is_reextracted_when_encoded(llm):
    ingest("guides/offices.md", SENTENCES[0])
    response = reextract("guides/offices.md")
    assert response.status == 200, response.text
    assert response.json()["document"]["doc_id"] == "guides/offices.md"


def test_with_extraction_off_it_is_refused_and_nothing_changes(llm, monkeypatch):
    ingest()
    before = facts()
    reconfigure(monkeypatch, EXTRACT_MODE="off")
    response = reextract("offices.md")
    assert (response.status, response.json()["error"], facts()) == (409, "extraction_off", before)


def test_a_write_failing_before_the_old_facts_go_undoes_what_was_staged(llm, monkeypatch):
    from gateway_core.errors import Unavailable
    from gateway_core.services import resolution

    ingest()
    before = facts()
    llm.set_default("extractor", extractor("NEW_FACT"))
    write, staged = resolution.write, []

    async def failing(tenant, data, sources=(), **kwargs):
        if any(source.endswith("~reextract") for source in sources):
            staged.append(sources)
            if len(staged) == 3:
                raise Unavailable("the graph store went away")
        return await write(tenant, data, sources, **kwargs)

    monkeypatch.setattr(resolution, "write", failing)
    response = reextract("offices.md")
    assert (response.status, len(staged)) == (503, 3)
    assert facts() == before  # the two chunks staged are gone again, the old facts untouched
    assert document()["reextract"]["state"] == "failed"


def test_a_switch_cut_short_after_the_old_facts_went_is_finished_by_the_next_call(llm, monkeypatch):
    from gateway_core.errors import Unavailable
    from gateway_core.services import reextract as service

    ingest()
    llm.set_default("extractor", extractor("NEW_FACT"))
    index = service.index_chunks

    async def gone(*args, **kwargs):
        raise Unavailable("the vector store went away")

    monkeypatch.setattr(service, "index_chunks", gone)
    assert reextract("offices.md").status == 503
    assert document()["reextract"]["state"] == "switching"
    assert {t for _, t, _, _ in facts()} == {"NEW_FACT"}  # the new facts are there (staged): nothing lost
    monkeypatch.setattr(service, "index_chunks", index)
    calls = len(llm.requests)
    response = reextract("offices.md")
    assert response.status == 200, response.text
    assert len(llm.requests) == calls  # finished from the saved graphs, without the model
    assert not [s for *_, sources in facts() for s in sources if s.endswith("~reextract")]
    assert {t for _, t, _, _ in facts()} == {"NEW_FACT"}


def test_a_second_call_while_one_runs_or_while_ingesting_is_refused(llm):
    from gateway_core import runtime
    from gateway_core.services import documents_status

    ingest()
    status = runtime.run(documents_status.get("acme", "offices.md"))
    status.reextract = {"state": "running", "chunks": 6, "chunks_done": 2, "running_until": "2999-01-01T00:00:00Z"}
    runtime.run(documents_status.put("acme", status))
    assert reextract("offices.md").json()["error"] == "reextract_running"
    status.reextract = None
    status.move("extracting")  # an ingestion at work
    runtime.run(documents_status.put("acme", status))
    response = reextract("offices.md")
    assert (response.status, response.json()["error"]) == (409, "document_busy")


# --- items dropped from the re-extracted graphs ---------------------------------------------------


def test_items_dropped_from_reextracted_graphs_are_counted_in_the_status(llm):
    ingest("a.md", SECRET_TEXT)
    llm.set_default("extractor", Callback(sloppy_extractor))
    assert reextract("a.md").status == 200
    status = document("a.md")
    assert (status["dropped"], status["dropped_reasons"]) == (
        2,
        {"node: type: Value error, … is not an identifier": 1, "edge: not a node of the answer": 1},
    )


def test_a_reextraction_dropping_nothing_clears_the_count_of_the_graph_it_replaced(llm):
    llm.set_default("extractor", Callback(sloppy_extractor))
    ingest("a.md", SECRET_TEXT)
    assert document("a.md")["dropped"] == 2
    llm.set_default("extractor", extractor("NEW_FACT"))
    assert reextract("a.md").status == 200
    status = document("a.md")
    assert (status["dropped"], status["dropped_reasons"]) == (0, {})


def test_items_dropped_from_reextracted_graphs_are_logged_with_reasons_and_no_text(llm, monkeypatch):
    from gateway_core.observability import logger

    ingest("a.md", SECRET_TEXT)
    llm.set_default("extractor", Callback(sloppy_extractor))
    out = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", out)
    assert reextract("a.md").status == 200
    lines = [json.loads(line) for line in out.getvalue().splitlines() if "graph items dropped" in line]
    assert [(line["doc_id"], line["dropped"], line["reasons"]) for line in lines] == [
        ("a.md", 2, {"node: type: Value error, … is not an identifier": 1, "edge: not a node of the answer": 1})
    ]
    logged = "\n".join(line for line in out.getvalue().splitlines() if "dropped" in line)
    assert not any(text in logged for text in ("Lin Xiaoming", "Per.son", "place:taichung"))


# --- merges recorded by a re-extraction that fails ------------------------------------------------


def nwt_extractor(body: dict) -> Reply:
    """Northwind Thermal as `company:northwind`, except in texts about NWT (`org:nwt`, alias NWT): a write of
    those merges `org:nwt` into `company:northwind`."""
    if "NWT" in body["messages"][-1]["content"]:
        node = {"id": "org:nwt", "type": "Company", "name": "Northwind Thermal", "props": {"aliases": ["NWT"]}}
    else:
        node = {"id": "company:northwind", "type": "Company", "name": "Northwind Thermal"}
    place = {"id": "place:taichung", "type": "Place", "name": "Taichung"}
    return Reply({"nodes": [node, place], "edges": [{"src": node["id"], "dst": place["id"], "type": "IN"}]})


def fail_a_reextraction_that_merges(llm, monkeypatch) -> None:
    """The staged write merges `org:nwt` into `company:northwind`, is written, then fails (its answer lost)."""
    from gateway_core.errors import Unavailable
    from gateway_core.services import resolution

    ingest("nwt.md", "NWT makes heat pumps in Taichung.")  # the default extractor: no merge
    llm.set_default("extractor", Callback(nwt_extractor))
    ingest("reference.md", "Northwind Thermal makes heat pumps in Taichung.")
    write = resolution.write

    async def failing(tenant, data, sources=(), **kwargs):
        written = await write(tenant, data, sources, **kwargs)
        if any(source.endswith("~reextract") for source in sources):
            raise Unavailable("the graph store went away")
        return written

    monkeypatch.setattr(resolution, "write", failing)
    response = reextract("nwt.md")
    assert response.status == 503, response.text
    monkeypatch.setattr(resolution, "write", write)


def test_a_merge_made_by_a_failed_reextraction_is_not_listed(llm, monkeypatch):
    fail_a_reextraction_that_merges(llm, monkeypatch)
    response = invoke("extract", http_event("GET", "/graph/merges", None, api_key=ACME))
    assert response.status == 200, response.text
    assert response.json()["merges"] == []


def test_a_failed_reextraction_leaves_the_survivor_without_the_ids_and_aliases_it_merged(llm, monkeypatch):
    fail_a_reextraction_that_merges(llm, monkeypatch)
    rows = graph_rows("MATCH (n {id: 'company:northwind'}) RETURN n.merged_from AS merged, n.aliases AS aliases")
    assert [(row["merged"] or [], row["aliases"] or []) for row in rows] == [([], [])]
