"""The server under test for `make bench`: every route, served by uvicorn in its own process.

`python -m infra.bench.server --port N` reads its stores from the environment
(FALKORDB_URL, QDRANT_PATH, EMBEDDINGS_URL, ...), exactly as `make dev` does,
so the load generator's CPU never counts as the server's. Its init ends as a
Lambda function's does (`preload`: imports, then gc.freeze).
"""

from __future__ import annotations

import argparse
import sys

import uvicorn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from gateway_core.http import preload
    from infra.local.api_server import KEEP_ALIVE_S, build_app

    app = build_app()
    preload(llm=True, documents=True)  # as functions/retrieve/app.py does at init
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, timeout_keep_alive=KEEP_ALIVE_S
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
