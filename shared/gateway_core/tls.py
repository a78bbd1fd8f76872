"""One TLS context per HTTP library, built once and shared by every client of the process.

Building one loads the CA certificates (about 35 ms on 2 cores), and each httpx client built its own on
first use: the embeddings', every LLM provider's, the reranker's, Qdrant's, each inside a request. These are the
libraries' own defaults (`httpcore2.default_ssl_context` for the openai client's httpx2,
`httpx.create_ssl_context`), so SSL_CERT_FILE and SSL_CERT_DIR apply as before; an SSLContext is safe
to share between connections. The remote embedder's aiohttp session opens TLS with `for_httpx2()` too:
the certificates it trusted when it posted with httpx2. `coldstart.preload` builds them at init; SnapStart's before-snapshot hook
forgets them, so that a restored sandbox never reuses a context from the snapshot.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def for_httpx2() -> ssl.SSLContext:
    import httpcore2

    return httpcore2.default_ssl_context()


@functools.cache
def for_httpx() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()


def forget() -> None:
    for_httpx2.cache_clear()
    for_httpx.cache_clear()
