"""Every function's routes in one ASGI app, served by uvicorn on 127.0.0.1.

This is the stand-in for `sam local start-api` where Docker is missing: the
routers are mounted exactly as template.yaml routes them to the functions.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Self

import uvicorn
from fastapi import FastAPI

from gateway_core.http import create_app
from gateway_core.registry import registry
from gateway_core.routers import answer, chat, console, documents, graph, openai_compat, retrieve


def build_app() -> FastAPI:
    """Every router, as template.yaml routes them to the chat, retrieve and extract functions."""
    app = create_app(
        chat.router,
        openai_compat.router,
        retrieve.router,
        documents.router,
        answer.router,
        graph.router,
        console.router,
        title="GraphRAG gateway (local)",
    )
    # A long-lived server, unlike Lambda, closes its clients when it stops.
    app.router.on_shutdown.append(registry.aclose)
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Longer than any request's budget (29 s) and a client pool's idle time: with uvicorn's 5 s, a loaded 2-core
# machine (`make bench`, /retrieve at concurrency 200) had clients reuse a pooled connection the server was
# closing that moment, and they read a reset (ReadError) instead of an answer.
KEEP_ALIVE_S = 75


class BackgroundServer:
    """uvicorn in a daemon thread; `with BackgroundServer(app) as server: server.url`."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", timeout_keep_alive=KEEP_ALIVE_S
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="local-api", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the local API server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
