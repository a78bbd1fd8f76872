"""Retrieve function: /index/chunks, /search, /retrieve, /answer, /documents (status, upload, estimate, delete),
/console (the browser console, no key) and /graph/entities, /graph/neighbourhood (its graph view)."""

from gateway_core import snapstart
from gateway_core.http import create_app, lambda_handler, preload
from gateway_core.routers import answer, console, documents, retrieve

app = create_app(retrieve.router, answer.router, documents.router, console.router, title="GraphRAG gateway: retrieve")
handler = lambda_handler(app)
# At init rather than in the first request: the stores, the embedder, the LLM client (/answer, extraction
# of an uploaded document) and the PDF parser (/documents uploads).
preload(llm=True, documents=True)
snapstart.install()  # SnapStart: close connections before the snapshot, renew per-sandbox state after a restore
