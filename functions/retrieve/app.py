"""Retrieve function: /index/chunks, /search, /retrieve, DELETE /documents/{doc_id}."""

from gateway_core.http import create_app, lambda_handler
from gateway_core.routers import retrieve

app = create_app(retrieve.router, title="GraphRAG gateway: retrieve")
handler = lambda_handler(app)
