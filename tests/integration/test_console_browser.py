"""The browser console in a real headless Chromium, against the local API server.

FalkorDB, the embedded vector store and the fake OpenAI-compatible server; documents and their
graphs are posted through `POST /documents` (no model is asked). Playwright drives Debian's
Chromium (`/usr/bin/chromium`); every wait is on DOM state, never a sleep. Screenshots of each view
go to `test-screenshots/` (not committed).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.local.api_server import BackgroundServer, build_app
from infra.local.openai_server import Callback, Reply
from tests.fixtures.llm_server import provider_env

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-screenshots"
TIMEOUT_MS = 30_000
KEY = "test-key-acme"

FOUNDING = "Northwind Thermal was founded in 2011 by Lin Xiaoming and Sara Holm in Taichung."
PRODUCTS = "Northwind Thermal designs quiet heat pumps for apartments; its flagship model is the Breeze 5."
ZH_FOUNDING = "北風熱能由林小明於二〇一一年在台中創立，總部設在台中。"
NW = {"id": "c:nw", "type": "Company", "name": "Northwind Thermal", "props": {"aliases": ["北風熱能"]}}
LIN = {"id": "p:lin", "type": "Person", "name": "Lin Xiaoming", "props": {"aliases": ["林小明"]}}
DOCUMENTS: list[dict[str, Any]] = [
    {
        "doc_id": "handbook.md",
        "text": FOUNDING,
        "graph": {
            "nodes": [
                NW,
                LIN,
                {"id": "p:sara", "type": "Person", "name": "Sara Holm"},
                {"id": "l:tc", "type": "City", "name": "Taichung"},
            ],
            "edges": [
                {"src": "p:lin", "dst": "c:nw", "type": "FOUNDED"},
                {"src": "p:sara", "dst": "c:nw", "type": "FOUNDED"},
                {"src": "c:nw", "dst": "l:tc", "type": "LOCATED_IN"},
            ],
        },
    },
    {
        "doc_id": "products.md",
        "text": PRODUCTS,
        "graph": {
            "nodes": [NW, {"id": "x:breeze", "type": "Product", "name": "Breeze 5"}],
            "edges": [{"src": "c:nw", "dst": "x:breeze", "type": "MAKES"}],
        },
    },
    {
        "doc_id": "簡介.md",
        "text": ZH_FOUNDING,
        "graph": {"nodes": [NW, LIN], "edges": [{"src": "p:lin", "dst": "c:nw", "type": "FOUNDED"}]},
    },
]
PASSAGE = re.compile(r"^\[(\d+)\] \(document: [^)]*\) (.*)$", re.MULTILINE)


def grounded(body: dict[str, Any]) -> Reply:
    """Answer as a grounded model would, citing the passage that holds the fact by its number."""
    prompt = body["messages"][-1]["content"]
    passages = {text: n for n, text in PASSAGE.findall(prompt)}
    if "Question: 北風熱能" in prompt:
        n = next(n for text, n in passages.items() if "創立" in text)
        return Reply(f"北風熱能由林小明於二〇一一年創立 [{n}]。總部在台中 [{n}]。")
    n = next(n for text, n in passages.items() if "founded in 2011" in text)
    return Reply(f"Lin Xiaoming and Sara Holm founded Northwind Thermal in 2011 [{n}], in Taichung.")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium chromium-driver)")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def gateway(fake_llm, falkordb_server, monkeypatch) -> Iterator[BackgroundServer]:
    monkeypatch.setenv("LLM_PROVIDERS", provider_env(fake_llm, "alpha"))
    monkeypatch.setenv("FALKORDB_URL", falkordb_server.url)
    monkeypatch.setenv("GRAPH_NAME", f"console{time.monotonic_ns()}")
    fake_llm.set_default("alpha", Callback(grounded))
    with BackgroundServer(build_app()) as server:
        for document in DOCUMENTS:
            response = httpx.post(f"{server.url}/documents", json=document, headers={"x-api-key": KEY}, timeout=60)
            assert response.status_code == 200, response.text
        yield server


class Console:
    """One page on the console, recording every request it makes and every error it logs."""

    def __init__(self, page: Any, base: str) -> None:
        self.page, self.base = page, base
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.set_default_timeout(TIMEOUT_MS)
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, view: str = "ask") -> None:
        self.page.goto(f"{self.base}/console#{view}")
        self.page.wait_for_selector("body[data-ready='true']", state="attached")

    def enter_key(self, key: str = KEY) -> None:
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_label("API key").press("Enter")

    def key_accepted(self) -> None:
        self.page.wait_for_selector("#key-status.good")

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def assert_only_local(self) -> None:
        outside = [url for url in self.requests if not url.startswith(self.base + "/") and not url.startswith("data:")]
        assert not outside, f"requests outside the gateway: {outside}"
        assert not self.errors, f"errors in the page: {self.errors}"


@pytest.fixture
def console(browser, gateway) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    try:
        yield Console(context.new_page(), gateway.url)
    finally:
        context.close()


def wait_until(page: Any, script: str, arg: Any = None) -> None:
    page.wait_for_function(script, arg=arg, timeout=TIMEOUT_MS)


def test_a_wrong_key_says_so_clearly_and_is_not_kept(console):
    console.open()
    console.enter_key("not-a-real-key")
    alert = console.page.get_by_role("alert")
    alert.wait_for(state="visible")
    assert "API key was refused" in alert.inner_text() and "Invalid API key" in alert.inner_text()
    assert console.page.evaluate("sessionStorage.length") == 0
    console.page.wait_for_selector("#key-status.bad")
    console.screenshot("console-wrong-key")
    console.errors = [e for e in console.errors if "401" not in e]  # Chromium logs the refused fetch itself
    console.assert_only_local()


def test_ask_streams_a_cited_answer_and_opens_the_citation(console):
    console.open()
    console.enter_key()
    console.key_accepted()
    assert console.page.evaluate("sessionStorage.getItem('graphrag-console-key')") == KEY
    assert console.page.evaluate("localStorage.length") == 0
    question = console.page.get_by_label("Question")
    question.fill("Who founded Northwind Thermal?")
    question.press("Enter")
    console.page.wait_for_selector("#answer.complete")
    answer = console.page.locator("#answer").inner_text()
    assert answer.startswith("Lin Xiaoming and Sara Holm founded Northwind Thermal in 2011 [")
    assert int(console.page.locator("#answer").get_attribute("data-deltas")) > 3  # rendered piece by piece
    marker = console.page.locator("#answer .cite").first
    marker.click()
    passage = console.page.locator("#passage")
    passage.locator(".passage-text").wait_for()
    assert FOUNDING in passage.inner_text() and "handbook.md" in passage.inner_text()
    assert console.page.evaluate("document.activeElement.id") == "passage"
    wait_until(console.page, "() => document.querySelectorAll('#facts li:not(.hint)').length > 0")
    facts = console.page.locator("#facts").inner_text()
    assert "Lin Xiaoming FOUNDED Northwind Thermal" in facts
    assert not [url for url in console.requests if url.endswith("/retrieve")]  # the facts came with the answer
    assert "total" in console.page.locator("#answer-meta").inner_text()
    console.screenshot("console-ask")
    console.assert_only_local()


def test_a_chinese_question_and_answer_render_intact(console):
    console.open()
    console.enter_key()
    console.key_accepted()
    console.page.get_by_label("Question").fill("北風熱能是誰創立的？")
    console.page.get_by_role("button", name="Ask", exact=True).click()
    console.page.wait_for_selector("#answer.complete")
    text = console.page.locator("#answer").inner_text()
    assert re.fullmatch(r"北風熱能由林小明於二〇一一年創立 \[\d+\]。總部在台中 \[\d+\]。", text.strip()), text
    console.page.locator("#answer .cite").first.click()
    console.page.locator("#passage .passage-text").wait_for()
    assert ZH_FOUNDING in console.page.locator("#passage").inner_text()
    assert "簡介.md" in console.page.locator("#passage").inner_text()
    wait_until(console.page, "() => document.querySelectorAll('#facts li:not(.hint)').length > 0")
    assert "Lin Xiaoming FOUNDED Northwind Thermal" in console.page.locator("#facts").inner_text()
    console.screenshot("console-ask-zh")
    console.assert_only_local()


def test_the_graph_view_draws_an_entitys_neighbours_and_explains_nodes_and_edges(console):
    console.open("graph")
    console.enter_key()
    console.key_accepted()
    console.page.get_by_label("Entity name").fill("北風熱能")  # an alias finds the entity, as /retrieve links it
    console.page.get_by_label("Entity name").press("Enter")
    graph = console.page.locator("#graph")
    wait_until(console.page, "() => document.getElementById('graph').getAttribute('data-nodes') === '5'")
    assert graph.get_attribute("data-edges") == "4"
    assert graph.locator("canvas").count() > 0  # drawn by Cytoscape.js
    edges = console.page.locator("#edges").inner_text()
    for fact in ("Lin Xiaoming FOUNDED Northwind Thermal", "Northwind Thermal MAKES Breeze 5"):
        assert fact in edges
    details = console.page.locator("#details")
    assert "Northwind Thermal" in details.locator(".subject").inner_text()  # the centre, shown first
    # Click a node on the canvas itself, where Cytoscape.js drew it.
    position = console.page.evaluate(
        "(() => { const box = document.getElementById('graph').getBoundingClientRect();"
        " const p = window.__consoleCy().getElementById('x:breeze').renderedPosition();"
        " return {x: box.left + p.x, y: box.top + p.y}; })()"
    )
    console.page.mouse.click(position["x"], position["y"])
    wait_until(console.page, "() => document.querySelector('#details .subject').textContent === 'Breeze 5'")
    assert PRODUCTS in details.inner_text() and "Product" in details.inner_text()
    # An edge's sources, from the keyboard-reachable fact list.
    console.page.get_by_role("button", name="Relation LOCATED_IN: its sources").click()
    wait_until(console.page, "() => document.querySelector('#details .subject').textContent.includes('LOCATED_IN')")
    assert FOUNDING in details.inner_text() and "handbook.md" in details.inner_text()
    console.screenshot("console-graph")
    console.assert_only_local()


def test_an_entity_id_a_merge_absorbed_opens_the_survivor_in_the_graph_view(console):
    duplicate = {"id": "company:northwind-thermal", "type": "Company", "name": "Northwind Thermal"}
    upsert = httpx.post(
        f"{console.base}/graph/upsert",
        json={"data": {"nodes": [duplicate], "edges": []}, "sources": ["handbook.md#0"]},
        headers={"x-api-key": KEY},
        timeout=30,
    )
    assert upsert.status_code == 200, upsert.text
    console.open("graph/company%3Anorthwind-thermal")  # a link to the absorbed id
    console.enter_key()
    console.key_accepted()
    wait_until(console.page, "() => document.getElementById('graph').getAttribute('data-nodes') === '5'")
    assert console.page.locator("#graph-heading").inner_text() == "Neighbourhood of Northwind Thermal"
    note = console.page.locator("#graph-note").inner_text()
    assert "company:northwind-thermal" in note and "merged into Northwind Thermal (c:nw)" in note
    assert console.page.locator("#details .subject").inner_text() == "Northwind Thermal"
    assert console.page.evaluate("location.hash") == "#graph/c%3Anw"
    assert not console.page.get_by_role("alert").is_visible()
    console.assert_only_local()


def test_the_documents_view_lists_status_and_deletes_after_confirmation(console):
    console.open("documents")
    console.enter_key()
    console.key_accepted()
    console.page.wait_for_selector("#documents[data-loaded='true']")
    rows = console.page.locator("#documents-body tr")
    wait_until(console.page, "() => document.querySelectorAll('#documents-body tr[data-doc]').length === 3")
    handbook = console.page.locator("#documents-body tr[data-doc='handbook.md']")
    assert "ready" in handbook.inner_text()
    console.screenshot("console-documents")
    handbook.get_by_role("button", name="Delete handbook.md").click()
    dialog = console.page.locator("dialog#confirm")
    dialog.wait_for(state="visible")
    assert "handbook.md" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="hidden")
    assert rows.count() == 3
    handbook.get_by_role("button", name="Delete handbook.md").click()
    dialog.get_by_role("button", name="Delete").click()
    console.page.wait_for_selector("#key-status.good:has-text('Deleted handbook.md (1 chunks)')")
    search = httpx.post(
        f"{console.base}/search", json={"query": FOUNDING, "top_k": 5}, headers={"x-api-key": KEY}, timeout=30
    )
    assert "handbook.md" not in {hit["payload"]["doc_id"] for hit in search.json()["hits"]}
    console.assert_only_local()


OFFICES = "Northwind Thermal opened an office in Taichung, led by Lin Xiaoming."
EXTRACTION_PROMPT = "You extract a knowledge graph"


def extract_or_answer(body: dict[str, Any]) -> Reply:
    """Extract like a model (the company and the city the chunk names), or answer as `grounded` does."""
    if not body["messages"][0]["content"].startswith(EXTRACTION_PROMPT):
        return grounded(body)
    nodes = [{"id": "company:northwind", "type": "Company", "name": "Northwind Thermal"}]
    nodes.append({"id": "city:taichung", "type": "City", "name": "Taichung"})
    edges = [{"src": "company:northwind", "dst": "city:taichung", "type": "HAS_OFFICE_IN"}]
    return Reply({"nodes": nodes, "edges": edges})


def test_the_documents_view_reextracts_a_document_after_confirmation_from_the_keyboard(console, fake_llm):
    fake_llm.set_default("alpha", Callback(extract_or_answer))
    posted = httpx.post(
        f"{console.base}/documents",
        json={"doc_id": "guides/offices.md", "text": OFFICES},
        headers={"x-api-key": KEY},
        timeout=60,
    )
    assert posted.status_code == 200 and posted.json()["document"]["extraction"] == "done", posted.text
    console.open("documents")
    console.enter_key()
    console.key_accepted()
    page = console.page
    wait_until(page, "() => document.querySelectorAll('#documents-body tr[data-doc]').length === 4")
    assert "Extraction budget: no limit" in page.locator("#budget").inner_text()
    row = page.locator("#documents-body tr[data-doc='guides/offices.md']")
    button = row.get_by_role("button", name="Re-extract guides/offices.md")
    dialog = page.locator("dialog#confirm")
    button.focus()
    page.keyboard.press("Enter")
    dialog.wait_for(state="visible")
    assert "guides/offices.md" in dialog.inner_text() and "old facts stay" in dialog.inner_text()
    page.keyboard.press("Escape")  # no: nothing is sent
    dialog.wait_for(state="hidden")
    assert not [url for url in console.requests if url.endswith("/reextract")]
    button.focus()
    page.keyboard.press("Enter")
    dialog.wait_for(state="visible")
    page.keyboard.press("Tab")  # from Cancel to Re-extract
    assert page.evaluate("document.activeElement.id") == "confirm-ok"
    page.keyboard.press("Enter")
    page.wait_for_selector("#documents-body tr[data-doc='guides/offices.md'] .reextract-progress.done")
    assert "re-extracted (1 of 1 chunks" in row.locator(".reextract-progress").inner_text()
    assert [url for url in console.requests if url.endswith("/documents/guides%2Foffices.md/reextract")]
    status = httpx.get(f"{console.base}/documents/guides/offices.md", headers={"x-api-key": KEY}, timeout=30)
    assert status.json()["document"]["reextract"]["state"] == "done"
    extractions = [r for r in fake_llm.requests_for("alpha") if r.body["messages"][0]["content"].startswith("You")]
    assert len(extractions) == 2  # the ingestion's and the re-extraction's
    console.screenshot("console-reextract")
    # A document with a supplied graph says what re-extracting does to it before anything is sent.
    handbook = page.locator("#documents-body tr[data-doc='handbook.md']")
    handbook.get_by_role("button", name="Re-extract handbook.md").click()
    dialog.wait_for(state="visible")
    assert "graph you supplied" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="hidden")
    console.assert_only_local()


def test_a_long_document_is_reextracted_over_several_calls_with_its_progress_shown(console, fake_llm, monkeypatch):
    from gateway_core.settings import reset_settings

    monkeypatch.setenv("CHUNK_SIZE", "120")
    monkeypatch.setenv("CHUNK_OVERLAP", "0")
    monkeypatch.setenv("EXTRACT_CONCURRENCY", "1")
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "6")  # about 3 s to extract per call: two slow chunks
    reset_settings()
    slow: list[bool] = []

    def extract(body: dict[str, Any]) -> Reply:
        reply = extract_or_answer(body)
        return Reply(reply.content, latency=1.0) if slow else reply

    fake_llm.set_default("alpha", Callback(extract))
    text = " ".join(f"Northwind Thermal opened office number {n} in Taichung, led by Lin Xiaoming." for n in range(4))
    posted = httpx.post(
        f"{console.base}/documents", json={"doc_id": "offices.md", "text": text}, headers={"x-api-key": KEY}, timeout=60
    )
    assert posted.status_code == 200 and posted.json()["document"]["chunks"] == 4, posted.text
    slow.append(True)
    console.open("documents")
    console.enter_key()
    console.key_accepted()
    page = console.page
    row = page.locator("#documents-body tr[data-doc='offices.md']")
    row.get_by_role("button", name="Re-extract offices.md").click()
    page.locator("dialog#confirm").get_by_role("button", name="Re-extract").click()
    page.wait_for_selector("#documents-body tr[data-doc='offices.md'] .reextract-progress:has-text('of 4 chunks…')")
    page.wait_for_selector("#documents-body tr[data-doc='offices.md'] .reextract-progress.done", timeout=60_000)
    assert "re-extracted (4 of 4 chunks" in row.locator(".reextract-progress").inner_text()
    calls = [url for url in console.requests if url.endswith("/documents/offices.md/reextract")]
    assert len(calls) >= 2  # a 202 with the progress, then the call that finished
    console.assert_only_local()


def test_phone_width_fits_and_the_key_survives_only_the_tab(browser, gateway):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        console = Console(context.new_page(), gateway.url)
        console.open()
        console.enter_key()
        console.key_accepted()
        console.page.get_by_label("Question").fill("Who founded Northwind Thermal?")
        console.page.get_by_label("Question").press("Enter")
        console.page.wait_for_selector("#answer.complete")
        console.page.locator("#answer .cite").first.tap()
        console.page.locator("#passage .passage-text").wait_for()
        assert fits_the_width(console.page)
        console.screenshot("console-phone")
        console.assert_only_local()
        other = Console(context.new_page(), gateway.url)  # a new tab: sessionStorage is per tab
        other.open()
        assert other.page.evaluate("sessionStorage.length") == 0
    finally:
        context.close()


def test_the_keyboard_alone_reaches_everything_in_order(console):
    console.open()
    page = console.page

    def tab_to(element_id: str) -> None:
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == element_id

    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.className") == "skip"
    tab_to("key-input")
    page.keyboard.type(KEY)
    page.keyboard.press("Enter")
    console.key_accepted()
    page.get_by_label("API key").focus()
    tab_to("key-save")
    tab_to("key-forget")
    tab_to("tab-ask")  # one stop for the tab list; arrows move within it
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-graph"
    assert page.locator("#view-graph").is_visible() and not page.locator("#view-ask").is_visible()
    tab_to("entity-query")
    page.keyboard.type("Northwind Thermal")
    page.keyboard.press("Enter")
    wait_until(page, "() => document.getElementById('graph').getAttribute('data-nodes') === '5'")
    page.get_by_label("Entity name").focus()
    page.keyboard.press("Shift+Tab")  # back to the tab list, then on to the documents tab
    assert page.evaluate("document.activeElement.id") == "tab-graph"
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#documents[data-loaded='true']")
    page.keyboard.press("ArrowRight")  # wraps round to Ask
    assert page.evaluate("document.activeElement.id") == "tab-ask"
    tab_to("question")
    page.keyboard.type("Who founded Northwind Thermal?")
    page.keyboard.press("Enter")
    page.wait_for_selector("#answer.complete")
    console.assert_only_local()


def post_document(base: str, document: dict[str, Any]) -> None:
    """Ingest with a graph of its own (the company it names), so no model is asked to extract one."""
    document = {"graph": {"nodes": [NW]}, **document}
    response = httpx.post(f"{base}/documents", json=document, headers={"x-api-key": KEY}, timeout=60)
    assert response.status_code == 200, response.text


@pytest.fixture
def phone(browser, gateway) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    try:
        yield Console(context.new_page(), gateway.url)
    finally:
        context.close()


def fits_the_width(page: Any) -> bool:
    # clientWidth, not innerWidth: a phone's layout viewport widens to whatever overflows, innerWidth with it.
    return bool(page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


LONG_NAME = "quarterly-maintenance-report-for-every-heat-pump-installed-in-taichung-" + "x" * 60 + ".md"


def test_deleting_a_document_whose_id_holds_dot_dot_segments_deletes_that_document_and_no_other(console):
    trap = "notes/../../documents/products.md"  # as a path, it would resolve to DELETE /documents/products.md
    post_document(console.base, {"doc_id": trap, "text": "A note that names a route in its id."})
    console.open("documents")
    console.enter_key()
    console.key_accepted()
    row = console.page.locator("#documents-body tr[data-doc='notes/../../documents/products.md']")
    row.get_by_role("button", name=f"Delete {trap}").click()
    console.page.locator("dialog#confirm").get_by_role("button", name="Delete").click()
    console.page.wait_for_selector(f"#key-status.good:has-text('Deleted {trap}')")
    products = httpx.get(f"{console.base}/documents/products.md", headers={"x-api-key": KEY}, timeout=30)
    assert products.status_code == 200, "the console deleted another document than the one confirmed"
    console.assert_only_local()


def test_a_key_with_a_character_no_key_has_is_refused_before_any_call_and_not_kept(console):
    console.open()
    console.enter_key("test-key-acme’")  # pasted with a typographic quote
    console.page.wait_for_selector("#key-status.bad")
    assert "“’”" in console.page.locator("#key-status").inner_text()
    assert "could not be reached" not in console.page.get_by_role("alert").inner_text()
    assert console.page.evaluate("sessionStorage.length") == 0
    console.assert_only_local()


def test_a_marker_the_sources_lack_says_it_points_at_nothing_once_the_answer_is_complete(console, fake_llm):
    fake_llm.set_default("alpha", Callback(lambda body: Reply("Northwind Thermal was founded in 2011 [1], see [9].")))
    console.open()
    console.enter_key()
    console.key_accepted()
    console.page.get_by_label("Question").fill("Who founded Northwind Thermal?")
    console.page.get_by_label("Question").press("Enter")
    console.page.wait_for_selector("#answer.complete")
    console.page.locator("#answer .cite[data-n='9']").click()
    assert "no source [9] was given" in console.page.locator("#passage").inner_text()
    console.assert_only_local()


def test_a_new_question_replaces_an_answer_still_streaming(console, fake_llm):
    def slow_first(body: dict[str, Any]) -> Reply:
        if "Question: When" in body["messages"][-1]["content"]:
            return Reply("The first question's answer, written slowly.", latency=1.0)
        return Reply("Lin Xiaoming founded it.", latency=2.0)

    fake_llm.set_default("alpha", Callback(slow_first))
    console.open()
    console.enter_key()
    console.key_accepted()
    question = console.page.get_by_label("Question")
    question.fill("When was Northwind Thermal founded?")
    question.press("Enter")
    fake_llm.wait_for(lambda: len(fake_llm.requests_for("alpha")) == 1, timeout=10)  # the first is being answered
    question.fill("Who founded Northwind Thermal?")
    question.press("Enter")
    console.page.wait_for_selector("#answer.complete")
    assert console.page.locator("#answer").inner_text().strip() == "Lin Xiaoming founded it."
    console.assert_only_local()


def test_a_fact_picked_from_the_list_on_a_phone_shows_its_details_in_view(phone):
    phone.open("graph")
    phone.enter_key()
    phone.key_accepted()
    phone.page.get_by_label("Entity name").fill("Northwind Thermal")
    phone.page.get_by_label("Entity name").press("Enter")
    wait_until(phone.page, "() => document.getElementById('graph').getAttribute('data-nodes') === '5'")
    phone.page.get_by_role("button", name="Relation MAKES: its sources").tap()  # the last fact of the list
    wait_until(phone.page, "() => document.querySelector('#details .subject').textContent.includes('MAKES')")
    assert phone.page.evaluate("document.activeElement.id") == "details"
    top = phone.page.evaluate("document.getElementById('details').getBoundingClientRect().top")
    assert 0 <= top < phone.page.viewport_size["height"], top
    phone.assert_only_local()


def test_the_documents_table_with_a_long_document_name_fits_a_phone(phone):
    post_document(phone.base, {"doc_id": LONG_NAME, "text": "Every heat pump was serviced in the spring."})
    phone.open("documents")
    phone.enter_key()
    phone.key_accepted()
    wait_until(phone.page, "() => document.querySelectorAll('#documents-body tr[data-doc]').length === 4")
    assert fits_the_width(phone.page)
    phone.assert_only_local()


def test_a_cited_passage_with_a_long_document_name_fits_a_phone(phone, fake_llm):
    post_document(phone.base, {"doc_id": LONG_NAME, "text": "Every Northwind Thermal heat pump was serviced in 2024."})

    def cite_the_service(body: dict[str, Any]) -> Reply:
        passages = PASSAGE.findall(body["messages"][-1]["content"])
        return Reply(f"They were serviced in 2024 [{next(n for n, text in passages if 'serviced' in text)}].")

    fake_llm.set_default("alpha", Callback(cite_the_service))
    phone.open()
    phone.enter_key()
    phone.key_accepted()
    phone.page.get_by_label("Question").fill("When were the Northwind Thermal heat pumps serviced?")
    phone.page.get_by_label("Question").press("Enter")
    phone.page.wait_for_selector("#answer.complete")
    phone.page.locator("#answer .cite").first.tap()
    phone.page.locator("#passage .passage-text").wait_for()
    assert LONG_NAME in phone.page.locator("#passage .passage-head").inner_text()
    assert fits_the_width(phone.page)
    phone.assert_only_local()


def test_a_long_property_key_leaves_the_values_their_width(console):
    key = "maintenance_contract_reference_number_for_the_taichung_office_"
    node = {"id": "c:nw", "type": "Company", "name": "Northwind Thermal", "props": {key: "NW-2024-0042"}}
    post_document(
        console.base,
        {"doc_id": "contracts.md", "text": "Northwind Thermal signed a contract.", "graph": {"nodes": [node]}},
    )
    console.open("graph/c%3Anw")
    console.enter_key()
    console.key_accepted()
    value = console.page.locator("#details dd", has_text="NW-2024-0042")
    value.wait_for()
    details_width = console.page.locator("#details").bounding_box()["width"]
    assert value.bounding_box()["width"] >= details_width / 2
    console.assert_only_local()


def test_a_hub_with_more_neighbours_than_drawn_says_that_more_may_exist(console):
    nodes = [{"id": "hub", "type": "Company", "name": "Hub Holdings"}]
    nodes += [{"id": f"part{n}", "type": "Product", "name": f"Part {n}"} for n in range(40)]
    edges = [{"src": "hub", "dst": f"part{n}", "type": "MAKES"} for n in range(40)]
    post_document(
        console.base,
        {"doc_id": "catalogue.md", "text": "Hub Holdings makes 40 parts.", "graph": {"nodes": nodes, "edges": edges}},
    )
    console.open("graph/hub")
    console.enter_key()
    console.key_accepted()
    wait_until(console.page, "() => document.getElementById('graph').hasAttribute('data-nodes')")
    assert "Hub Holdings may have more than shown" in console.page.locator("#graph-note").inner_text()
    console.assert_only_local()


def test_markup_in_documents_entities_and_answers_is_shown_as_text_in_every_view(console, fake_llm):
    markup = '<img src=x onerror="document.title=1"><b>bold</b>'
    evil = {"id": "c:evil", "type": "Company", "name": f"Evil {markup}", "props": {markup[:40]: markup}}
    post_document(
        console.base,
        {
            "doc_id": f"{markup}.md",
            "text": f"Evil Corp writes {markup} and **markdown** in its notes.",
            "graph": {"nodes": [evil, LIN], "edges": [{"src": "p:lin", "dst": "c:evil", "type": "ADVISES"}]},
        },
    )
    fake_llm.set_default("alpha", Callback(lambda body: Reply(f"It writes {markup} [1].")))
    injected = "document.querySelectorAll('main img, main b, dialog img, dialog b').length"
    console.open()
    console.enter_key()
    console.key_accepted()
    console.page.get_by_label("Question").fill("What does Evil Corp write?")
    console.page.get_by_label("Question").press("Enter")
    console.page.wait_for_selector("#answer.complete")
    console.page.locator("#answer .cite").first.click()
    assert markup in console.page.locator("#answer").inner_text()
    console.page.goto(f"{console.base}/console#graph/c%3Aevil")
    wait_until(
        console.page, "() => document.getElementById('graph-heading').textContent.startsWith('Neighbourhood of Evil')"
    )
    assert f"Evil {markup}" in console.page.locator("#details .subject").inner_text()
    console.page.get_by_role("button", name="Relation ADVISES: its sources").click()
    console.page.get_by_role("tab", name="Documents").click()
    row = console.page.locator("#documents-body tr").filter(has_text=f"{markup}.md")
    row.get_by_role("button", name="Delete").click()
    assert f"{markup}.md" in console.page.locator("dialog#confirm").inner_text()
    assert console.page.evaluate(injected) == 0 and console.page.title() == "GraphRAG console"
    console.assert_only_local()


def test_an_unknown_entity_id_says_so_and_no_longer_shows_the_entity_before_it(console):
    console.open("graph/c%3Anw")
    console.enter_key()
    console.key_accepted()
    wait_until(console.page, "() => document.getElementById('graph').getAttribute('data-nodes') === '5'")
    console.page.goto(f"{console.base}/console#graph/c%3Anowhere")
    alert = console.page.get_by_role("alert")
    alert.wait_for(state="visible")
    assert "No entity 'c:nowhere'" in alert.inner_text()
    assert console.page.locator("#graph-heading").inner_text() == "Neighbourhood"
    console.errors = [e for e in console.errors if "404" not in e]  # Chromium logs the refused fetch itself
    console.assert_only_local()


def test_the_console_with_a_trailing_slash_opens_the_page(console):
    console.page.goto(f"{console.base}/console/")
    console.page.wait_for_selector("body[data-ready='true']", state="attached")
    assert console.page.url.split("#")[0] == f"{console.base}/console"
    console.assert_only_local()


def confirm_from_the_keyboard(page: Any, button: Any) -> None:
    button.focus()
    page.keyboard.press("Enter")
    page.locator("dialog#confirm").wait_for(state="visible")
    page.keyboard.press("Tab")  # from Cancel to the action
    page.keyboard.press("Enter")


def test_after_a_delete_from_the_keyboard_the_focus_stays_in_the_table(console):
    console.open("documents")
    console.enter_key()
    console.key_accepted()
    page = console.page
    wait_until(page, "() => document.querySelectorAll('#documents-body tr[data-doc]').length === 3")
    confirm_from_the_keyboard(page, page.get_by_role("button", name="Delete products.md"))
    wait_until(page, "() => document.querySelectorAll('#documents-body tr[data-doc]').length === 2")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Delete 簡介.md"  # the row now there
    console.assert_only_local()


def test_after_a_reextraction_from_the_keyboard_the_focus_is_back_on_its_button(console, fake_llm):
    fake_llm.set_default("alpha", Callback(extract_or_answer))
    post_document(console.base, {"doc_id": "offices.md", "text": OFFICES, "graph": None})
    console.open("documents")
    console.enter_key()
    console.key_accepted()
    page = console.page
    confirm_from_the_keyboard(page, page.get_by_role("button", name="Re-extract offices.md"))
    page.wait_for_selector("#documents-body tr[data-doc='offices.md'] .reextract-progress.done")
    wait_until(
        page, "() => !document.querySelector('#documents-body tr[data-doc=\"offices.md\"] button.reextract').disabled"
    )
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Re-extract offices.md"
    console.assert_only_local()


def test_a_delete_on_the_second_page_keeps_the_rows_loaded(console):
    for n in range(50):
        post_document(console.base, {"doc_id": f"notes/{n:02d}.md", "text": f"Note {n} on Northwind Thermal."})
    console.open("documents")
    console.enter_key()
    console.key_accepted()
    page = console.page
    wait_until(page, "() => document.querySelectorAll('#documents-body tr[data-doc]').length === 50")
    page.get_by_role("button", name="Load more").click()
    wait_until(page, "() => document.querySelectorAll('#documents-body tr[data-doc]').length === 53")
    page.get_by_role("button", name="Delete products.md").click()  # on the second page (doc_id order)
    page.locator("dialog#confirm").get_by_role("button", name="Delete").click()
    page.wait_for_selector("#key-status.good:has-text('Deleted products.md')")
    wait_until(page, "() => document.querySelectorAll('#documents-body tr[data-doc]').length === 52")
    console.assert_only_local()


def test_changing_the_hops_redraws_the_entity_shown(console):
    console.open("graph/p%3Alin")
    console.enter_key()
    console.key_accepted()
    wait_until(console.page, "() => document.getElementById('graph').getAttribute('data-nodes') === '5'")  # two hops
    console.page.get_by_label("Hops").select_option("1")
    wait_until(console.page, "() => document.getElementById('graph').getAttribute('data-nodes') === '2'")
    assert console.page.locator("#graph-heading").inner_text() == "Neighbourhood of Lin Xiaoming"
    console.assert_only_local()


def test_an_entity_answering_after_the_one_picked_next_does_not_replace_it(console):
    held: list[Any] = []
    console.page.route(
        "**/graph/neighbourhood?id=c%3Anw*", lambda route: held.append(route)
    )  # Northwind's answer waits
    console.open("graph/c%3Anw")
    console.enter_key()
    console.key_accepted()
    while not held:
        console.page.wait_for_timeout(20)
    console.page.goto(f"{console.base}/console#graph/x%3Abreeze")  # then Breeze 5 is picked, and answers first
    wait_until(
        console.page, "() => document.getElementById('graph-heading').textContent === 'Neighbourhood of Breeze 5'"
    )
    with console.page.expect_response("**/graph/neighbourhood?id=c%3Anw*") as late:
        held[0].continue_()
    late.value.finished()
    console.page.evaluate("() => new Promise(done => setTimeout(done, 100))")  # the late answer's turn to be handled
    assert console.page.locator("#graph-heading").inner_text() == "Neighbourhood of Breeze 5"
    console.assert_only_local()


MARKDOWN_ANSWER = (
    "## Who founded it\n\n"
    "**Lin Xiaoming** and *Sara Holm* founded it [1], see `founded_in` and [evil](javascript:document.title=2).\n\n"
    "- in **2011** [1]\n- in Taichung\n\n"
    "1. first\n2. second\n\n"
    "```\nlet x = '**not bold**' [1];\n```\n\n"
    "See [the site](https://example.org/nw) for <b>more</b>."
)


def test_markdown_in_an_answer_is_rendered_safely_with_its_markers_working(console, fake_llm):
    fake_llm.set_default("alpha", Callback(lambda body: Reply(MARKDOWN_ANSWER)))
    console.open()
    console.enter_key()
    console.key_accepted()
    console.page.get_by_label("Question").fill("Who founded Northwind Thermal?")
    console.page.get_by_label("Question").press("Enter")
    console.page.wait_for_selector("#answer.complete")
    answer = console.page.locator("#answer")
    assert int(answer.get_attribute("data-deltas")) > 3  # still rendered piece by piece
    assert answer.locator("h3, h4").first.inner_text() == "Who founded it"
    assert answer.locator("strong").first.inner_text() == "Lin Xiaoming"
    assert answer.locator("em").first.inner_text() == "Sara Holm"
    assert answer.locator("p code").first.inner_text() == "founded_in"
    assert answer.locator("ul > li").all_inner_texts() == ["in 2011 [1]", "in Taichung"]
    assert answer.locator("ol > li").all_inner_texts() == ["first", "second"]
    assert answer.locator("pre code").inner_text().strip() == "let x = '**not bold**' [1];"
    assert answer.locator("pre .cite").count() == 0  # code is code
    assert answer.locator("li strong").first.inner_text() == "2011"
    for raw in ("**", "## ", "```", "- in"):
        assert raw not in answer.inner_text().replace("'**not bold**'", "")
    # no link runs script; an http(s) link opens apart from the console
    assert console.page.evaluate("document.querySelectorAll('#answer a[href^=\"javascript\" i]').length") == 0
    links = answer.locator("a")
    assert links.count() == 1 and links.get_attribute("href") == "https://example.org/nw"
    assert "noopener" in links.get_attribute("rel")
    assert "javascript:document.title=2" in answer.inner_text()  # shown as text
    assert "<b>more</b>" in answer.inner_text() and answer.locator("b").count() == 0
    answer.locator("li .cite[data-n='1']").click()
    console.page.locator("#passage .passage-text").wait_for()
    assert FOUNDING in console.page.locator("#passage").inner_text()
    assert console.page.title() == "GraphRAG console"
    console.assert_only_local()


def test_markup_inside_markdown_in_an_answer_stays_text(console, fake_llm):
    markup = '<img src=x onerror="document.title=1">'
    text = f"## {markup}\n\n**{markup}** *{markup}* `{markup}`\n\n- {markup} [1]\n\n```\n{markup}\n```"
    fake_llm.set_default("alpha", Callback(lambda body: Reply(text)))
    console.open()
    console.enter_key()
    console.key_accepted()
    console.page.get_by_label("Question").fill("Who founded Northwind Thermal?")
    console.page.get_by_label("Question").press("Enter")
    console.page.wait_for_selector("#answer.complete")
    assert console.page.locator("#answer").inner_text().count(markup) == 6
    assert console.page.evaluate("document.querySelectorAll('#answer img').length") == 0
    assert console.page.title() == "GraphRAG console"
    console.assert_only_local()


def test_the_sources_show_each_number_once(console):
    console.open()
    console.enter_key()
    console.key_accepted()
    console.page.get_by_label("Question").fill("Who founded Northwind Thermal?")
    console.page.get_by_label("Question").press("Enter")
    console.page.wait_for_selector("#answer.complete")
    first = console.page.locator("#citations li").first
    assert re.match(r"^\[\d+\] ", first.inner_text())
    assert console.page.evaluate("getComputedStyle(document.querySelector('#citations li')).listStyleType") == "none"
    console.assert_only_local()


def test_an_entity_search_answering_after_a_newer_one_is_dropped(console):
    held: list[Any] = []
    console.page.route("**/graph/entities?q=Northwind*", lambda route: held.append(route))  # the first search waits
    console.open("graph")
    console.enter_key()
    console.key_accepted()
    search = console.page.get_by_label("Entity name")
    search.fill("Northwind Thermal")
    search.press("Enter")
    while not held:
        console.page.wait_for_timeout(20)
    search.fill("Breeze 5")
    search.press("Enter")
    wait_until(
        console.page, "() => document.getElementById('graph-heading').textContent === 'Neighbourhood of Breeze 5'"
    )
    with console.page.expect_response("**/graph/entities?q=Northwind*") as late:
        held[0].continue_()
    late.value.finished()
    console.page.evaluate("() => new Promise(done => setTimeout(done, 300))")  # the late answer's turn to be handled
    assert console.page.locator("#entities").inner_text().strip() == "Breeze 5 (Product)"
    assert console.page.locator("#graph-heading").inner_text() == "Neighbourhood of Breeze 5"
    assert not [url for url in console.requests if "neighbourhood?id=c%3Anw" in url]
    console.assert_only_local()
