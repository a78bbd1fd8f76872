"""Configuration from environment variables (names fixed by the design)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProviderConfig(BaseModel):
    """One OpenAI-compatible LLM endpoint."""

    name: str
    base_url: str
    api_key: str = "not-needed"
    model: str
    json_mode: bool = True


class Settings(BaseSettings):
    # An empty variable means "not configured", not "invalid JSON".
    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True, populate_by_name=True)

    # --- auth -------------------------------------------------------------
    api_keys: str = Field(default="", repr=False)
    api_keys_secret: str | None = None
    api_keys_param: str | None = None
    api_keys_cache_s: int = 300

    # --- secrets: Secrets Manager names whose values replace the setting (secrets.py) ---------
    llm_providers_secret: str | None = None
    embeddings_api_key_secret: str | None = None
    reranker_api_key_secret: str | None = None
    qdrant_api_key_secret: str | None = None
    neo4j_password_secret: str | None = None
    falkordb_url_secret: str | None = None
    secrets_cache_s: int = 300

    # --- LLM --------------------------------------------------------------
    llm_providers: list[ProviderConfig] = []
    model_aliases: dict[str, list[str]] = {}
    llm_max_retries: int = 2
    extract_strategy: Literal["race", "hedge", "sequential"] = "race"
    hedge_delay_s: float = 0.5
    # /answer and the RAG model on /v1: the model name clients pick, and the alias that writes answers.
    rag_model_name: str = "graphrag"
    answer_model: str | None = None  # a MODEL_ALIASES alias or provider name; unset: every provider, in order

    # --- embeddings / reranker ---------------------------------------------
    embeddings_url: str | None = None
    embeddings_model: str = "multilingual-e5-small"
    embeddings_api_key: str = Field(default="not-needed", repr=False)
    embeddings_query_prefix: str = ""
    embeddings_passage_prefix: str = ""
    embed_batch_size: int = 64
    reranker_url: str | None = None
    reranker_api_key: str = Field(default="", repr=False)

    # --- vector store -----------------------------------------------------
    qdrant_url: str | None = None
    qdrant_api_key: str | None = Field(default=None, repr=False)
    qdrant_path: str = ".data/qdrant"
    qdrant_collection: str = "chunks"
    # Embedded engine without QDRANT_URL: qdrant-edge (measured ~40x faster than client local mode).
    qdrant_local_engine: Literal["client", "edge"] = "edge"
    # qdrant-edge indexes only when asked: optimize a collection once this many points were written to it.
    qdrant_optimize_after: int = Field(default=1000, ge=1)
    # qdrant-edge's search threads per collection. One: a query's CPU fell 0.73 -> 0.29 ms (2k chunks; the
    # engine's default pool of 8 hands each query between threads), and a function serves one request at once.
    qdrant_search_threads: int = Field(default=1, ge=1, le=64)

    # --- graph store ------------------------------------------------------
    neo4j_uri: str | None = None
    neo4j_user: str | None = None
    neo4j_password: str | None = Field(default=None, repr=False)
    neo4j_database: str | None = None
    # One database per tenant (`<GRAPH_NAME>-<tenant>`, created by the operator) instead of a shared one.
    neo4j_database_per_tenant: bool = False
    falkordb_url: str | None = None
    graph_name: str = "kg"
    # Connections to the graph server per execution environment; a request that finds them all busy
    # waits for one, within its own deadline.
    graph_max_connections: int = Field(default=64, ge=1)

    # --- retrieval ----------------------------------------------------------
    # Dense candidates that enter the graph ranking (with the passages the seeds' facts cite).
    retrieve_dense_candidates: int = 20
    # Neighbourhood the graph ranking reads: facts per entity and in total.
    retrieve_graph_fan_out: int = 25
    retrieve_graph_limit: int = 400

    # --- entity resolution (at write time) ----------------------------------
    # Off: nodes and relation types are written exactly as given (no key, alias or similarity merge).
    entity_resolution: bool = True
    # The similarity merge: a new entity is merged into a stored one of the same type whose name embedding
    # is at least this similar (cosine) and whose words agree. multilingual-e5-small packs names closely
    # (New York / New York City: 0.966), so 0.98 only merges spelling variants. Off by default: on the
    # benchmark its (mostly right) merges cost 1.0 recall@5 and 2.0 recall@2 (README, Retrieval quality).
    entity_similarity_merge: bool = False
    # The entity name index (<QDRANT_COLLECTION>_entities) is filled at write time when this, the similarity
    # merge or dense linking is on: set it ahead of turning them on, or entities written before are missed.
    entity_name_index: bool = False
    entity_merge_min_similarity: float = Field(default=0.98, gt=0, le=1.0)
    # When no name key matches, /retrieve links the question's name-like pieces through the entity name
    # index (paraphrases, translations) at this name cosine. Off: with multilingual-e5-small a wrong name
    # scores above a right translation (Hornets Nest / Hornpipe Heights 0.916, 北風熱能 / Northwind
    # Thermal 0.879), so no threshold separates them; turn it on with an embedder that spreads names.
    dense_linking: bool = False
    dense_link_min_similarity: float = Field(default=0.87, gt=0, le=1.0)

    # --- requests ---------------------------------------------------------
    request_timeout_s: float = 25.0
    # Larger bodies answer 413 (API Gateway's own limit for a Lambda payload is about 6 MB).
    max_body_bytes: int = 6_000_000
    # JSON bodies nested deeper answer 400: nothing the API takes comes close.
    max_json_depth: int = 64
    deadline_margin_s: float = 0.5

    # --- ingestion ----------------------------------------------------------
    idempotency_table: str | None = None
    ingest_max_bytes: int = 20_000_000
    ingest_concurrency: int = 4
    # A batch's budget, cut to the function's remaining time (Lambda's own timeout is at most 900 s).
    ingest_timeout_s: float = 900.0
    extract_concurrency: int = 4
    chunk_size: int = 800
    chunk_overlap: int = 120
    # Extraction: off (index only), on (every changed chunk), sample (EXTRACT_SAMPLE_CHUNKS of them).
    extract_mode: Literal["off", "on", "sample"] = "on"
    extract_sample_chunks: int = 3
    # Prompt + completion tokens a tenant may spend on extraction (provider usage); unset: no budget.
    extract_token_budget: int | None = None
    extract_token_budgets: dict[str, int] = {}  # per tenant, over EXTRACT_TOKEN_BUDGET
    # Document status and unfinished extractions: a collection of the vector store (default `<collection>_documents`).
    documents_collection: str | None = None
    # Where a deferred record is sent again (default: the queue it came from); seconds a paused record waits.
    ingest_queue_url: str | None = None
    ingest_paused_retry_s: int = 900
    ingest_rate_limited_retry_s: int = 60  # a 429 without Retry-After

    @property
    def graph_backend(self) -> Literal["neo4j", "falkordb"] | None:
        if self.neo4j_uri:
            return "neo4j"
        if self.falkordb_url:
            return "falkordb"
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    from .secrets import resolve_secrets  # reads the *_SECRET names, if any, once per environment

    return resolve_secrets(Settings())


def reset_settings() -> None:
    """Forget the cached settings (tests, and the local server after env changes)."""
    get_settings.cache_clear()
