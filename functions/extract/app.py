"""Extract function: /graph/probe, /graph/extract, /graph/upsert, /graph/query."""

from gateway_core.http import create_app, lambda_handler, preload
from gateway_core.routers import graph

app = create_app(graph.router, title="GraphRAG gateway: extract")
handler = lambda_handler(app)
preload(embeddings=False)  # the configured graph driver, at init rather than in the first request
