"""Only the cold-start steps of `make bench`, in under a minute: `.venv/bin/python -m infra.bench.cold_start`.

Seeds the 2k data set as `make bench` does (FalkorDB in its own process, qdrant-edge, the fake embedder),
then runs `bench_first_request` (INIT and the first /retrieve, on demand and after a simulated SnapStart
restore) and `bench_imports` (INIT of each function, configured as on Lambda). Prints the table rows; does
not write bench-results.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from infra.bench import run


def main() -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from infra.local.falkordb_server import LocalFalkorDB

    rows: list[run.Row] = run.Rows()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        falkordb = stack.enter_context(LocalFalkorDB())
        os.environ["API_KEYS"] = run.BENCH_KEY
        with run.fake_embedder() as embeddings_url:
            env = {
                "FALKORDB_URL": falkordb.url,
                "GRAPH_NAME": "bench2000",
                "QDRANT_PATH": str(Path(tmp) / "scale-2000"),
                "API_KEYS": run.BENCH_KEY,
                "EMBEDDINGS_URL": embeddings_url,
                "EMBEDDINGS_MODEL": "bench-embed",
            }
            with run.ServerProcess(env) as server:
                run.ingest(server, 2000)
        run.bench_first_request(rows, falkordb.url, Path(tmp))
        run.bench_imports(rows)
    print("\n| measure | result | target |\n| --- | --- | --- |")
    for measure, result, target in rows:
        print(f"| {measure} | {result} | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
