"""Retrieve function: /index/chunks, /search, /retrieve, /answer, /documents (status, upload, estimate, delete)."""

from gateway_core.http import create_app, lambda_handler
from gateway_core.routers import answer, documents, retrieve

app = create_app(retrieve.router, answer.router, documents.router, title="GraphRAG gateway: retrieve")
handler = lambda_handler(app)
