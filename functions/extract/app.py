"""Extract function: /graph/probe, /graph/extract, /graph/upsert, /graph/query."""

from gateway_core import snapstart
from gateway_core.http import create_app, lambda_handler, preload
from gateway_core.routers import graph

app = create_app(graph.router, title="GraphRAG gateway: extract")
handler = lambda_handler(app)
# At init rather than in the first request: the graph driver, the LLM client (probe, extract), the
# embedder and vector store entity resolution uses on upsert.
preload(llm=True)
snapstart.install()  # SnapStart: close connections before the snapshot, renew per-sandbox state after a restore
