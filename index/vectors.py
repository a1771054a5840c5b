"""Where chunk vectors live: FAISS in the index folder (default) or a Milvus collection.

``VectorStoreConfig`` is chosen by configuration (REPORTQA_VECTOR_STORE_URI):
empty → FAISS beside the chunk table; a Milvus URI (``./data/milvus.db`` for
Milvus Lite, ``http://host:19530`` for a server or cluster) → Milvus.

Either way retrieval sees a ``DenseStore``: rows of the chunk table, best
first, by inner product of normalised vectors (= cosine).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from core.types import Chunk, Scope

# HNSW settings, measured by bench/index_recall.py (README, "Vector store and index size").
# M=32 costs 256 bytes a vector beside the vector's own 1536 (+18% memory) and keeps
# the graph connected across the tight clusters e5 vectors form.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80  # 100k vectors build in about 30 s on 2 cores, 200k in 1-3 minutes
# The retriever asks for 50 neighbours. ef=512: recall@10 >= 0.96 up to 200k clustered
# vectors for ~2 ms a query (ef=64: 0.69 at 200k); latency is cheap next to the 30 ms budget.
HNSW_EF_SEARCH = 512
# The HNSW index keeps its vectors as float16: half the memory and disk (154 MB instead of 307 MB at
# 200k chunks), the same neighbours (bench/index_recall.py). Chunk vectors are rounded to float16
# when they are made (ingest.build), so the flat index, HNSW and Milvus all hold the same values.



@dataclass(frozen=True)
class VectorStoreConfig:
    uri: str | None = None  # None: FAISS in the index folder
    collection: str = "reportqa_chunks"
    # FAISS: exact search below this many chunks, HNSW at and above. Exact search p95 is ~6 ms
    # at 10k chunks and ~12 ms at 20k on 2 cores; HNSW finds the same top 10 there in ~1 ms.
    exact_below: int = 10_000

    @property
    def kind(self) -> str:
        return "milvus" if self.uri else "faiss"


class DenseStore(Protocol):
    """Chunk vectors by row of the chunk table."""

    def search(self, vector: np.ndarray, k: int, scope: Scope | None = None) -> list[tuple[int, float]]:
        """Up to ``k`` (row, inner product) pairs inside ``scope``, best first."""

    def vector(self, row: int) -> np.ndarray: ...

    def __len__(self) -> int: ...


class ScopeRows:
    """Rows of the chunk table inside a scope; cached, as a UI asks the same few scopes again and again.

    Built from each row's report and each report's (source, issuer, year): a
    scope is then a few vectorised comparisons (~1 ms at 200k chunks) instead
    of a Python pass over every chunk, and no chunk is built to know its report.
    """

    def __init__(self, report_of_row: np.ndarray, reports: list[tuple[str, str | None, int | None]]):
        self._codes: dict[str, dict] = {"source": {}, "issuer": {}}
        report_of_row = np.asarray(report_of_row, dtype=np.int64)
        by_report = {field: self._encode(field, values) for field, values in
                     (("source", [r[0] for r in reports]), ("issuer", [r[1] for r in reports]))}
        self._source = by_report["source"][report_of_row]
        self._issuer = by_report["issuer"][report_of_row]
        self._year = np.asarray([r[2] or 0 for r in reports], dtype=np.int32).reshape(-1)[report_of_row] \
            if len(reports) else np.zeros(len(report_of_row), np.int32)
        self._cached = lru_cache(maxsize=64)(self._rows)

    @classmethod
    def of_chunks(cls, chunks: Sequence[Chunk]) -> "ScopeRows":
        reports: dict[tuple, int] = {}
        rows = np.fromiter((reports.setdefault((c.source, c.issuer, c.year), len(reports)) for c in chunks),
                           dtype=np.int64, count=len(chunks))
        return cls(rows, list(reports))

    def _encode(self, field: str, values) -> np.ndarray:
        codes = self._codes[field]
        return np.fromiter((codes.setdefault(v, len(codes)) for v in values), dtype=np.int32, count=len(values))

    def __call__(self, scope: Scope) -> np.ndarray:
        return self._cached(scope)

    def _rows(self, scope: Scope) -> np.ndarray:
        mask = np.ones(len(self._year), dtype=bool)
        for column, field, wanted in ((self._source, "source", scope.sources), (self._issuer, "issuer", scope.issuers)):
            if wanted:
                mask &= np.isin(column, [self._codes[field][v] for v in wanted if v in self._codes[field]])
        if scope.years:
            mask &= np.isin(self._year, list(scope.years))
        return np.flatnonzero(mask).astype(np.int64)


class FaissStore:
    """Exact inner product below ``exact_below`` vectors, HNSW (float16 vectors) at and above.

    A scope narrower than ``exact_below`` rows is searched exactly over those
    rows even in an HNSW index (its flat storage, through an ID selector): a
    filtered graph walk misses most of a small scope's rows.
    """

    def __init__(self, index, rows_in: ScopeRows, exact_below: int):
        import faiss

        self.index = index
        self.rows_in = rows_in
        self.exact_below = exact_below
        self.kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        self._exact = faiss.downcast_index(index.storage) if self.kind == "hnsw" else index

    @classmethod
    def build(cls, vectors: np.ndarray, rows_in: ScopeRows, exact_below: int) -> "FaissStore":
        import faiss

        dim = vectors.shape[1]
        if len(vectors) < exact_below:
            index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, rows_in, exact_below)

    @classmethod
    def read(cls, path: Path, rows_in: ScopeRows, exact_below: int) -> "FaissStore":
        import faiss

        # Memory-mapped: the vectors are paged in as searches reach them, not read whole at start-up.
        return cls(faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC), rows_in, exact_below)

    def write(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    @property
    def dim(self) -> int:
        return self.index.d

    def __len__(self) -> int:
        return self.index.ntotal

    def vector(self, row: int) -> np.ndarray:
        return self.index.reconstruct(int(row))

    def vectors(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) as float32 (the stored values: float16-exact)."""
        return self.index.reconstruct_n(int(start), int(stop - start)) if stop > start \
            else np.zeros((0, self.dim), np.float32)

    def search(self, vector: np.ndarray, k: int, scope: Scope | None = None) -> list[tuple[int, float]]:
        import faiss

        rows = self.rows_in(scope) if scope else None
        k = min(k, len(self) if rows is None else len(rows))
        if k <= 0:
            return []
        query = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        selector = faiss.IDSelectorBatch(rows) if rows is not None else None
        if self.kind == "hnsw" and (rows is None or len(rows) >= self.exact_below):
            scores, ids = self.index.search(query, k, params=faiss.SearchParametersHNSW(
                sel=selector, efSearch=max(HNSW_EF_SEARCH, k)))
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
            scores, ids = self._exact.search(query, k, params=params)
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]
