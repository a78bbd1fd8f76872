"""Retrieve function: /index/chunks, /search, /retrieve, /answer, /documents (status, upload, estimate, delete),
/console (the browser console, no key) and /graph/entities, /graph/neighbourhood (its graph view)."""

from gateway_core.http import create_app, lambda_handler, preload
from gateway_core.routers import answer, console, documents, retrieve

app = create_app(retrieve.router, answer.router, documents.router, console.router, title="GraphRAG gateway: retrieve")
handler = lambda_handler(app)
preload()  # the configured stores' and embedder's modules, at init rather than in the first request
