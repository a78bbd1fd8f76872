"""`make bench`: the project's benchmark, through the whole handler stack.

Prints a table and writes it to bench-results.md. Every number is measured
here, in one run, on this machine; ratios are what the targets speak about.

1. warm overhead: API Gateway event -> Mangum -> FastAPI -> /health, per call;
2. cold start: import time of each function's app module (fresh process);
3. retrieve critical path: real stores with injected latency (embed +20 ms,
   vector +50 ms, graph +80 ms): p50 total vs p50 max(embed + vector, graph);
4. scaling: /retrieve through one uvicorn server at concurrency 1, 50, 200,
   with a remote-style embedding endpoint (a fake OpenAI server in another
   process, 20 ms), qdrant-edge and FalkorDB: efficiency = thr(c) / (c x thr(1));
5. provider race: A (429 then hangs 1 s), B (invalid JSON after 1 s), C (valid
   after 0.5 s): latency of /graph/extract vs C's 0.5 s, losers cancelled.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results.md"
BENCH_KEY = "bench-key"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def configure(**variables: str) -> None:
    from gateway_core.registry import registry
    from gateway_core.settings import reset_settings

    os.environ.update(variables)
    reset_settings()
    registry.reset()


def bench_warm_overhead(rows: list[tuple[str, str, str]]) -> None:
    from infra.local.invoke import invoke
    from infra.local.lambda_events import http_event

    event = http_event("GET", "/health", api_key=None)
    for _ in range(20):
        invoke("chat", event)
    samples = []
    for _ in range(300):
        started = time.perf_counter()
        invoke("chat", event)
        samples.append((time.perf_counter() - started) * 1000)
    rows.append(
        (
            "warm invocation, GET /health through the handler",
            f"p50 {percentile(samples, 0.5):.2f} ms, p95 {percentile(samples, 0.95):.2f} ms",
            "a few ms at most",
        )
    )


def bench_imports(rows: list[tuple[str, str, str]]) -> None:
    probe = "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"
    for function in sorted(p for p in (ROOT / "functions").iterdir() if p.is_dir()):
        runs = [
            float(
                subprocess.run([sys.executable, "-c", probe], cwd=function, capture_output=True, text=True, check=True)
                .stdout.strip()
                .splitlines()[-1]
            )
            for _ in range(3)
        ]
        rows.append(
            (
                f"cold start: import functions/{function.name}/app",
                f"{statistics.median(runs):.0f} ms",
                "imports only what it uses",
            )
        )


def bench_critical_path(rows: list[tuple[str, str, str]], falkordb_url: str, data: Path) -> None:
    from gateway_core import dependencies
    from gateway_core.clients.embeddings import get_embedder
    from gateway_core.registry import registry
    from infra.local.invoke import invoke
    from infra.local.lambda_events import http_event
    from infra.local.latency import Delayed

    configure(FALKORDB_URL=falkordb_url, QDRANT_PATH=str(data / "critical"), API_KEYS=BENCH_KEY)
    _seed(invoke, http_event)
    invoke("retrieve", http_event("POST", "/retrieve", {"query": "warm-up"}, api_key=BENCH_KEY))
    registry.put("embedder:local", Delayed(get_embedder(), 0.02, ("embed_query",)))
    registry.put("vector_store", Delayed(dependencies.vector_store(), 0.05, ("search",)))
    registry.put("graph_store", Delayed(dependencies.graph_store(), 0.08, ("expand",)), loop_bound=True)
    totals, paths, sums = [], [], []
    for _ in range(30):
        body = invoke(
            "retrieve", http_event("POST", "/retrieve", {"query": "Who founded Northwind Thermal?"}, api_key=BENCH_KEY)
        ).json()
        t = body["timings_ms"]
        totals.append(t["total"])
        paths.append(max(t["embed"] + t["vector"], t["graph"]))
        sums.append(t["embed"] + t["vector"] + t["graph"])
    p50_total, p50_path, p50_sum = (statistics.median(v) for v in (totals, paths, sums))
    rows.append(
        (
            "retrieve p50 vs critical path max(embed+vector, graph)",
            (f"{p50_total:.1f} ms vs {p50_path:.1f} ms: {p50_total / p50_path - 1:+.1%} (serial sum {p50_sum:.1f} ms)"),
            "within 5%",
        )
    )


def _seed(invoke: Any, http_event: Any) -> None:
    chunks = [
        {"doc_id": "bench.md", "text": f"Northwind Thermal fact number {i}: Lin Xiaoming founded it."}
        for i in range(50)
    ]
    invoke("retrieve", http_event("POST", "/index/chunks", {"chunks": chunks}, api_key=BENCH_KEY))
    graph = {
        "nodes": [
            {"id": "person:lin", "type": "Person", "name": "Lin Xiaoming"},
            {"id": "company:northwind", "type": "Company", "name": "Northwind Thermal"},
        ],
        "edges": [{"src": "person:lin", "dst": "company:northwind", "type": "FOUNDED"}],
    }
    invoke("extract", http_event("POST", "/graph/upsert", {"data": graph}, api_key=BENCH_KEY))


def bench_scaling(rows: list[tuple[str, str, str]], falkordb_url: str, data: Path) -> None:

    from infra.local.api_server import BackgroundServer, build_app, free_port
    from infra.local.invoke import invoke
    from infra.local.lambda_events import http_event

    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "infra.local.openai_server", "--port", str(port), "--embedding-latency", "0.02"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/v1/models")
        configure(
            FALKORDB_URL=falkordb_url,
            QDRANT_PATH=str(data / "scaling"),
            API_KEYS=BENCH_KEY,
            EMBEDDINGS_URL=f"http://127.0.0.1:{port}/v1",
            EMBEDDINGS_MODEL="bench-embed",
        )
        _seed(invoke, http_event)
        from gateway_core.registry import registry

        registry.reset()  # the server runs its own loop
        with BackgroundServer(build_app()) as server:
            results = {c: asyncio.run(_load(server.url, c, seconds=4.0)) for c in (1, 50, 200)}
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    base = results[1][0]
    for concurrency in (50, 200):
        throughput, failed = results[concurrency]
        efficiency = throughput / (concurrency * base)
        rows.append(
            (
                f"scaling efficiency at concurrency {concurrency} (/retrieve, one server)",
                f"{efficiency:.2f} ({throughput:.0f} req/s vs {base:.1f} req/s at 1; {failed} failed)",
                ">= 0.95" if concurrency == 50 else ">= 0.90",
            )
        )


async def _load(url: str, concurrency: int, seconds: float) -> tuple[float, int]:
    """(successful requests per second, failed requests)."""
    import httpx

    body = {"query": "Who founded Northwind Thermal?", "top_k": 3}
    done = failed = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": BENCH_KEY}, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal done, failed
            while time.perf_counter() < stop:
                try:
                    response = await client.post("/retrieve", json=body)
                    response.raise_for_status()
                    done += 1
                except httpx.HTTPError:
                    failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started), failed


def _wait_for(url: str) -> None:
    import httpx

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def bench_race(rows: list[tuple[str, str, str]]) -> None:
    from infra.local.invoke import invoke
    from infra.local.lambda_events import http_event
    from infra.local.openai_server import Error, FakeOpenAI, Hang, InvalidJson, Reply

    graph = {"nodes": [{"id": "a", "type": "Person", "name": "A"}], "edges": []}
    with FakeOpenAI() as fake:
        providers = [{"name": n, "base_url": fake.base_url, "api_key": "x", "model": n} for n in "ABC"]
        configure(LLM_PROVIDERS=json.dumps(providers), API_KEYS=BENCH_KEY, LLM_MAX_RETRIES="1")
        latencies, cancelled = [], 0
        for _ in range(5):
            fake.reset()
            fake.script("A", Error(429, retry_after=0.0), Hang(1.0))
            fake.script("B", InvalidJson("{oops", latency=1.0))
            fake.script("C", Reply(graph, latency=0.5))
            started = time.perf_counter()
            body = invoke(
                "extract",
                http_event("POST", "/graph/extract", {"context": "A.", "strategy": "race"}, api_key=BENCH_KEY),
            ).json()
            latencies.append(time.perf_counter() - started)
            assert body["provider"] == "C", body
            fake.wait_for(lambda: sum(r.disconnected for r in fake.requests) >= 2, timeout=3)
            cancelled += sum(r.disconnected for r in fake.requests)
        p50 = statistics.median(latencies)
        rows.append(
            (
                "provider race: /graph/extract vs fastest acceptable (0.5 s)",
                f"{p50 * 1000:.0f} ms: {p50 / 0.5 - 1:+.1%}; losers disconnected {cancelled}/10",
                "within 5%, losers cancelled",
            )
        )


def main() -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from infra.local.falkordb_server import LocalFalkorDB

    rows: list[tuple[str, str, str]] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        falkordb = stack.enter_context(LocalFalkorDB())
        os.environ["API_KEYS"] = BENCH_KEY
        for name, step in [
            ("warm overhead", lambda: bench_warm_overhead(rows)),
            ("imports", lambda: bench_imports(rows)),
            ("critical path", lambda: bench_critical_path(rows, falkordb.url, Path(tmp))),
            ("scaling", lambda: bench_scaling(rows, falkordb.url, Path(tmp))),
            ("provider race", lambda: bench_race(rows)),
        ]:
            print(f"running: {name} ...", flush=True)
            step()
    table = ["| measure | result | target |", "| --- | --- | --- |", *(f"| {a} | {b} | {c} |" for a, b, c in rows)]
    header = f"# Benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, Python {sys.version.split()[0]})"
    text = "\n".join([header, "", *table, ""])
    print("\n" + text)
    RESULTS.write_text(text, encoding="utf-8")
    print(f"written to {RESULTS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
