"""Chat function: /chat, /embed, /rerank and the OpenAI-compatible /v1 routes.

Only the RAG model (`graphrag`) on /v1 reaches the stores, and creates them on first use.
"""

from gateway_core.http import create_app, lambda_handler
from gateway_core.routers import chat, openai_compat

app = create_app(chat.router, openai_compat.router, title="GraphRAG gateway: chat")
handler = lambda_handler(app)
