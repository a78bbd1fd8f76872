"""The local API server keeps an idle connection open longer than uvicorn's 5 s default.

A pooled client reuses a connection after its previous answer; on a loaded machine that can be more
than 5 s later, and a server that closed it meanwhile answers the new request with a reset.
"""

from __future__ import annotations

import http.client
import time

from fastapi import FastAPI

from infra.local.api_server import KEEP_ALIVE_S, BackgroundServer


def test_a_connection_idle_past_uvicorns_default_still_answers_its_next_request() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    with BackgroundServer(app) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.request("GET", "/ping")
            assert connection.getresponse().read() == b'{"ok":true}'
            time.sleep(6)  # idle past uvicorn's default keep-alive (5 s)
            connection.request("GET", "/ping")  # the same socket: http.client reconnects only once it is closed
            assert connection.getresponse().read() == b'{"ok":true}'
            assert KEEP_ALIVE_S > 29  # and past any request's budget
        finally:
            connection.close()
