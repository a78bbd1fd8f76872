"""`make eval`: retrieval quality on a public multi-hop benchmark, through the real handlers.

1. reads the benchmark sample (EVAL_DATA, default ../shared/eval/musique-dev.json.gz);
   exits 0 with a message when it is absent;
2. starts FalkorDB on 127.0.0.1 and indexes every passage through /index/chunks and its
   triples through /graph/upsert (each passage's facts cite that passage), into
   .data/eval/<hash of the data and of the indexing code>/, so a rerun skips indexing;
3. asks every question through /search (dense) and /retrieve (each preset), and
4. writes eval-results.md (and prints it): recall@2 and recall@5 of the supporting
   passages, latency per question, overall and on the questions where no entity links.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.eval import data

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "musique-dev.json.gz"
CACHE = ROOT / ".data" / "eval"
RESULTS = ROOT / "eval-results.md"
# The code that decides what each index holds: a change there rebuilds that cached index only.
VECTOR_CODE = (
    "infra/eval/data.py",
    "shared/gateway_core/services/index.py",
    "shared/gateway_core/stores/vectors.py",
    "shared/gateway_core/stores/qdrant.py",
    "shared/gateway_core/stores/qdrant_edge.py",
)
GRAPH_CODE = (
    "infra/eval/data.py",
    "shared/gateway_core/stores/graph",
    "shared/gateway_core/models/graph.py",
    "shared/gateway_core/services/graph.py",
    "shared/gateway_core/services/resolution.py",
)
TENANT, KEY = "eval", "eval-key"
CHUNK_BATCH = 64
TOP_K = 5
DEFAULT_PRESET = "graph"  # what /retrieve does without options


@dataclass
class Mode:
    """One way of asking: a route and the body fields it adds."""

    label: str
    path: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Answer:
    ids: list[str]
    latency_ms: float
    linked: bool | None  # whether the question linked to an entity (None: the route does not say)


def progress(label: str, done: int, total: int, started: float) -> None:
    width = 30
    filled = width * done // max(total, 1)
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done >= total else ""
    print(f"\r  {label:<28} [{bar}] {done}/{total} {time.perf_counter() - started:5.1f}s", end=end, flush=True)


def tracked(label: str, items: list[Any]) -> Iterator[Any]:
    started = time.perf_counter()
    for number, item in enumerate(items, 1):
        yield item
        progress(label, number, len(items), started)


def cache_folder(kind: str, sample: data.Sample, code: tuple[str, ...]) -> Path:
    digest = hashlib.sha256(sample.digest.encode())
    for entry in code:
        path = ROOT / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(ROOT).as_posix().encode())
            digest.update(file.read_bytes())
    return CACHE / f"{kind}-{digest.hexdigest()[:16]}"


def call(function: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    from infra.local.invoke import invoke
    from infra.local.lambda_events import http_event

    response = invoke(function, http_event("POST", path, body, api_key=KEY), timeout_s=600.0)
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}: {response.text[:500]}")
    result: dict[str, Any] = response.json()
    return result


def index_passages(sample: data.Sample) -> None:
    chunks = [data.chunk(passage) for passage in sample.passages]
    batches = [chunks[start : start + CHUNK_BATCH] for start in range(0, len(chunks), CHUNK_BATCH)]
    for batch in tracked("passages -> /index/chunks", batches):
        call("retrieve", "/index/chunks", {"chunks": batch})


def index_graph(sample: data.Sample) -> None:
    for passage in tracked("triples -> /graph/upsert", sample.passages):
        graph = data.graph(passage)
        if graph["nodes"]:
            call("extract", "/graph/upsert", {"data": graph, "sources": [passage["id"]]})


def hit_ids(path: str, response: dict[str, Any]) -> list[str]:
    if path == "/search":
        return [hit["payload"]["chunk_id"] for hit in response["hits"]]
    return [hit["citations"][0]["chunk_id"] for hit in response["hits"]]


def linked(response: dict[str, Any]) -> bool | None:
    if "seeds" in response:
        return bool(response["seeds"])
    if "subgraph" in response:
        return bool(response["subgraph"]["nodes"])
    return None


def ask(mode: Mode, question: str) -> Answer:
    started = time.perf_counter()
    response = call("retrieve", mode.path, {"query": question, "top_k": TOP_K, **mode.extra})
    latency = (time.perf_counter() - started) * 1000
    return Answer(hit_ids(mode.path, response), latency, linked(response))


def recall(gold: list[str], ids: list[str], k: int) -> float:
    return len(set(gold) & set(ids[:k])) / len(gold)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


def row(label: str, questions: list[dict[str, Any]], answers: list[Answer]) -> str:
    if not answers:
        return f"| {label} | 0 | - | - | - | - |"
    r2 = statistics.mean(recall(q["gold"], a.ids, 2) for q, a in zip(questions, answers)) * 100
    r5 = statistics.mean(recall(q["gold"], a.ids, 5) for q, a in zip(questions, answers)) * 100
    latencies = [a.latency_ms for a in answers]
    return (
        f"| {label} | {len(answers)} | {r2:.1f} | {r5:.1f} | "
        f"{percentile(latencies, 0.5):.0f} | {percentile(latencies, 0.95):.0f} |"
    )


def report(sample: data.Sample, modes: list[Mode], answers: dict[str, list[Answer]], index_s: float) -> str:
    questions = sample.questions
    graph_answers = answers[modes[-1].label]
    unlinked = [i for i, answer in enumerate(graph_answers) if answer.linked is False]
    header = (
        "| retrieval | questions | recall@2 | recall@5 | p50 ms | p95 ms |\n| --- | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [
        "# Retrieval quality",
        "",
        (
            f"{len(questions)} questions, {len(sample.passages)} passages indexed "
            f"(data sha256 {sample.digest[:12]}), top_k={TOP_K}, in-process handlers; "
            f"indexing {index_s:.0f} s (0 when reused)."
        ),
        "",
        "All questions:",
        "",
        header,
        *(row(mode.label, questions, answers[mode.label]) for mode in modes),
        "",
        f"Questions where no entity links ({len(unlinked)}):",
        "",
        header,
        *(
            row(mode.label, [questions[i] for i in unlinked], [answers[mode.label][i] for i in unlinked])
            for mode in modes
        ),
        "",
        "Recall@k: share of a question's supporting passages among the first k hits, averaged over questions.",
        "Latency: per question, through the whole handler (event -> Mangum -> FastAPI -> services -> stores).",
        "",
    ]
    return "\n".join(lines)


def available_modes() -> list[Mode]:
    """Dense (/search), then each other /retrieve preset this version knows, then /retrieve's default path last."""
    from gateway_core.routers import retrieve as retrieve_router

    presets = [p for p in getattr(retrieve_router, "PRESETS", ()) if p not in ("dense", DEFAULT_PRESET)]
    return [
        Mode("dense (/search)", "/search"),
        *(Mode(f"{p} (/retrieve preset={p})", "/retrieve", {"preset": p}) for p in presets),
        Mode("graph (/retrieve, default)", "/retrieve"),
    ]


def needs_filling(folder: Path) -> bool:
    """Whether an index folder still has to be filled (a half-built one is started over)."""
    if (folder / "ready").exists():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return True


def run(data_path: Path, out: Path, say: Callable[[str], None] = print) -> int:
    if not data_path.exists():
        say(f"make eval: no benchmark data at {data_path} (set EVAL_DATA to its path); skipping.")
        return 0
    from infra.local.falkordb_server import LocalFalkorDB
    from infra.local.invoke import execution_environment

    sample = data.load(data_path)
    # Resolution keeps its entity names and merges in the vector folder: a new graph needs fresh vectors too.
    vectors = cache_folder("vectors", sample, VECTOR_CODE + GRAPH_CODE)
    graph = cache_folder("graph", sample, GRAPH_CODE)
    say(f"Benchmark: {len(sample.questions)} questions, {len(sample.passages)} passages; indexes in {CACHE}")
    with ExitStack() as stack:
        fill_vectors, fill_graph = needs_filling(vectors), needs_filling(graph)
        falkordb = stack.enter_context(LocalFalkorDB(data_dir=graph))
        stack.enter_context(
            execution_environment(
                {"FALKORDB_URL": falkordb.url, "QDRANT_PATH": str(vectors), "API_KEYS": f"{KEY}:{TENANT}"}
            )
        )
        started = time.perf_counter()
        if fill_vectors:
            index_passages(sample)
            (vectors / "ready").write_text(sample.digest)
        if fill_graph:
            index_graph(sample)
            falkordb_save(falkordb.url)
            (graph / "ready").write_text(sample.digest)
        if not (fill_vectors or fill_graph):
            say("  indexes reused (same data, same indexing code)")
        index_s = time.perf_counter() - started
        modes = available_modes()
        for mode in modes:  # the first call loads the embedding model: keep it out of the latencies
            ask(mode, sample.questions[0]["question"])
        answers = {
            mode.label: [ask(mode, q["question"]) for q in tracked(mode.label, sample.questions)] for mode in modes
        }
    text = report(sample, modes, answers, index_s)
    out.write_text(text, encoding="utf-8")
    say("")
    say(text)
    say(f"Written to {out.name}")
    return 0


def falkordb_save(url: str) -> None:
    """Persist the graph now, so a rerun finds it even if this run is interrupted later."""
    import redis

    redis.Redis.from_url(url).save()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EVAL_DATA") or DEFAULT_DATA))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    # Before the core is imported: its logger and metrics read these once.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    return run(args.data, args.out)


if __name__ == "__main__":
    sys.exit(main())
