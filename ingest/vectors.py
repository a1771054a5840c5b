"""Where chunk vectors live: FAISS in the index folder (default) or a Milvus collection.

``VectorStoreConfig`` is chosen by configuration (REPORTQA_VECTOR_STORE_URI):
empty → FAISS beside the chunk table; a Milvus URI (``./data/milvus.db`` for
Milvus Lite, ``http://host:19530`` for a server or cluster) → Milvus.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VectorStoreConfig:
    uri: str | None = None  # None: FAISS in the index folder
    collection: str = "reportqa_chunks"
    exact_below: int = 50_000  # FAISS: exact search below this many chunks, HNSW at and above

    @property
    def kind(self) -> str:
        return "milvus" if self.uri else "faiss"

    @classmethod
    def from_settings(cls, settings) -> "VectorStoreConfig":
        return cls(uri=settings.vector_store_uri or None, collection=settings.milvus_collection,
                   exact_below=settings.faiss_exact_below)
