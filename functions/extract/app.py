"""Extract function: /graph/probe, /graph/extract, /graph/upsert, /graph/query."""

from gateway_core.http import create_app, lambda_handler
from gateway_core.routers import graph

app = create_app(graph.router, title="GraphRAG gateway: extract")
handler = lambda_handler(app)
