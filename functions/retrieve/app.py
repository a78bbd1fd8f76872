"""Retrieve function: /index/chunks, /search, /retrieve, /answer, DELETE /documents/{doc_id}."""

from gateway_core.http import create_app, lambda_handler
from gateway_core.routers import answer, retrieve

app = create_app(retrieve.router, answer.router, title="GraphRAG gateway: retrieve")
handler = lambda_handler(app)
