"""Chat function: /chat, /embed, /rerank and the OpenAI-compatible /v1 routes.

Only the RAG model (`graphrag`) on /v1 reaches the stores, and creates them on first use.
"""

from gateway_core import snapstart
from gateway_core.http import create_app, lambda_handler, preload
from gateway_core.routers import chat, openai_compat

app = create_app(chat.router, openai_compat.router, title="GraphRAG gateway: chat")
handler = lambda_handler(app)
# At init rather than in the first request: the LLM client (/chat, /v1) and the embedder (/embed). Not the
# stores: only the `graphrag` model on /v1 reaches them, and importing them would lengthen every INIT.
preload(stores=False, llm=True)
snapstart.install()  # SnapStart: close connections before the snapshot, renew per-sandbox state after a restore
