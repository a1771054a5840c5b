"""Where chunk vectors live: FAISS in the index folder (default) or a Milvus collection.

``VectorStoreConfig`` is chosen by configuration (REPORTQA_VECTOR_STORE_URI):
empty → FAISS beside the chunk table; a Milvus URI (``./data/milvus.db`` for
Milvus Lite, ``http://host:19530`` for a server or cluster) → Milvus.

Either way retrieval sees a ``DenseStore``: rows of the chunk table, best
first, by inner product of normalised vectors (= cosine).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from reportqa.errors import IndexMissing, VectorStoreUnavailable

from .models import Chunk

if TYPE_CHECKING:
    from retrieval.scope import Scope

# HNSW settings, measured by bench/index_recall.py (README, "Vector store and index size").
# M=32 costs 256 bytes a vector beside the vector's own 1536 (+18% memory) and keeps
# the graph connected across the tight clusters e5 vectors form.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80  # 100k vectors build in about 30 s on 2 cores, 200k in 1-3 minutes
# The retriever asks for 50 neighbours. ef=512: recall@10 >= 0.96 up to 200k clustered
# vectors for ~2 ms a query (ef=64: 0.69 at 200k); latency is cheap next to the 30 ms budget.
HNSW_EF_SEARCH = 512

FILTER_FIELDS = ("source", "issuer", "year")
MILVUS_BATCH = 1000  # rows a request: far below gRPC's 64 MB message limit at 384 dims
# Milvus Lite has no server clock for query iterators and warns on every listing; harmless.
logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
# A Lite file that will not open is logged with a traceback; VectorStoreUnavailable says it in one line.
logging.getLogger("milvus_lite.server_manager").setLevel(logging.CRITICAL)


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

    @classmethod
    def from_settings(cls, settings) -> "VectorStoreConfig":
        return cls(uri=settings.vector_store_uri or None, collection=settings.milvus_collection,
                   exact_below=settings.faiss_exact_below)


class DenseStore(Protocol):
    """Chunk vectors by row of the chunk table."""

    def search(self, vector: np.ndarray, k: int, scope: Scope | None = None) -> list[tuple[int, float]]:
        """Up to ``k`` (row, inner product) pairs inside ``scope``, best first."""

    def vector(self, row: int) -> np.ndarray: ...

    def __len__(self) -> int: ...


class ScopeRows:
    """Rows of the chunk table inside a scope; cached, as a UI asks the same few scopes again and again."""

    def __init__(self, chunks: list[Chunk]):
        # Each row's source, issuer and year as codes: a scope is then a few vectorised
        # comparisons (~1 ms at 200k chunks) instead of a Python pass over every chunk.
        self._codes: dict[str, dict] = {"source": {}, "issuer": {}}
        self._source = self._encode("source", (c.source for c in chunks))
        self._issuer = self._encode("issuer", (c.issuer for c in chunks))
        self._year = np.fromiter((c.year or 0 for c in chunks), dtype=np.int32, count=len(chunks))
        self._cached = lru_cache(maxsize=64)(self._rows)

    def _encode(self, field: str, values) -> np.ndarray:
        codes = self._codes[field]
        return np.fromiter((codes.setdefault(v, len(codes)) for v in values), dtype=np.int32)

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
    """Exact inner product below ``exact_below`` vectors, HNSW at and above.

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
            index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, rows_in, exact_below)

    @classmethod
    def read(cls, path: Path, rows_in: ScopeRows, exact_below: int) -> "FaissStore":
        import faiss

        return cls(faiss.read_index(str(path)), rows_in, exact_below)

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


def _unavailable(config: VectorStoreConfig, exc: Exception) -> VectorStoreUnavailable:
    reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return VectorStoreUnavailable(
        f"Cannot reach the Milvus vector store at {config.uri} ({reason}). Start Milvus, fix "
        "REPORTQA_VECTOR_STORE_URI (a Milvus Lite file such as ./data/milvus.db is usable by one process at a time), "
        "or unset it to keep vectors in FAISS.",
        "无法连接向量数据库（Milvus），请联系管理员检查服务或配置。",
    )


def milvus_client(config: VectorStoreConfig):
    """A connected client, or VectorStoreUnavailable naming the URI and the fix."""
    try:
        from pymilvus import MilvusClient

        return MilvusClient(config.uri, timeout=10)
    except Exception as exc:  # MilvusException, a locked Lite folder (OSError), ImportError…
        raise _unavailable(config, exc) from None


def _collection_mismatch(config: VectorStoreConfig, reason: str) -> IndexMissing:
    return IndexMissing(
        f"The Milvus collection {config.collection!r} at {config.uri} does not match the index ({reason}). "
        "Run `reportqa ingest` to rebuild it.",
        "向量库与索引不一致，请运行 reportqa ingest 重新建立索引。",
    )


class MilvusStore:
    """Chunk vectors in a Milvus collection keyed by chunk id; rows map through the chunk table."""

    def __init__(self, client, config: VectorStoreConfig, chunk_ids: list[str]):
        self.client = client
        self.config = config
        self.chunk_ids = chunk_ids
        self._row = {chunk_id: i for i, chunk_id in enumerate(chunk_ids)}

    @classmethod
    def open(cls, config: VectorStoreConfig, chunks: list[Chunk]) -> "MilvusStore":
        """Connect and check the collection holds exactly the chunk table's ids."""
        store = cls(milvus_client(config), config, [c.chunk_id for c in chunks])
        try:
            store._check()
        except IndexMissing:
            raise
        except Exception as exc:
            raise _unavailable(config, exc) from None
        return store

    def _check(self) -> None:
        name = self.config.collection
        if not self.client.has_collection(name):
            raise _collection_mismatch(self.config, "the collection does not exist")
        self.client.load_collection(name)
        count = self._count()
        present = sum(len(self.client.query(name, ids=batch, output_fields=["id"]))
                      for batch in _batches(self.chunk_ids))
        if not count == present == len(self.chunk_ids):
            raise _collection_mismatch(
                self.config, f"{count} vectors, {present} of the {len(self.chunk_ids)} chunks")

    def _count(self) -> int:
        return int(self.client.query(self.config.collection, filter="", output_fields=["count(*)"])[0]["count(*)"])

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def vector(self, row: int) -> np.ndarray:
        (found,) = self.client.query(self.config.collection, ids=[self.chunk_ids[row]], output_fields=["vector"])
        return np.asarray(found["vector"], dtype=np.float32)


    def search(self, vector: np.ndarray, k: int, scope: Scope | None = None) -> list[tuple[int, float]]:
        found = self.client.search(
            self.config.collection, data=[np.asarray(vector, dtype=np.float32).tolist()], limit=k,
            filter=scope.milvus_expr() if scope else "", output_fields=["id"],
            search_params={"metric_type": "IP"})[0]
        # An id not in this chunk table belongs to an ingest running right now: its rows go live with it.
        return [(self._row[h["id"]], float(h["distance"])) for h in found if h["id"] in self._row]


def _batches(items: list, size: int = MILVUS_BATCH):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def sync_milvus(config: VectorStoreConfig, chunks: list[Chunk], vectors: np.ndarray, embedder: dict) -> list[str]:
    """Upsert the chunks the collection lacks or holds with other source/issuer/year; return the ids
    it holds that the table no longer has.

    The caller deletes those (``delete_milvus_ids``) once the new index version
    is live, so the version being served keeps its vectors until then. A
    collection made with another embedder is dropped and refilled: chunk ids
    do not change with the model, their vectors do.
    """
    client = milvus_client(config)
    try:
        name = config.collection
        if client.has_collection(name) and client.describe_collection(name).get("description") != _describe(embedder):
            client.drop_collection(name)
        if not client.has_collection(name):
            _create_collection(client, name, embedder)
        client.load_collection(name)
        held = _held_rows(client, name)
        # New chunks, and chunks whose report metadata changed (a sidecar edit keeps the chunk id).
        rows = [(i, c) for i, c in enumerate(chunks) if held.get(c.chunk_id) != _filter_fields(c)]
        for batch in _batches(rows):
            client.upsert(name, [{"id": c.chunk_id, "vector": vectors[i].astype(np.float32).tolist(),
                                  **_filter_fields(c)} for i, c in batch])
        return sorted(set(held) - {c.chunk_id for c in chunks})
    except Exception as exc:
        raise _unavailable(config, exc) from None


def delete_milvus_ids(config: VectorStoreConfig, ids: list[str]) -> None:
    client = milvus_client(config)
    try:
        for batch in _batches(ids):
            client.delete(config.collection, ids=batch)
    except Exception as exc:
        raise _unavailable(config, exc) from None


def _describe(embedder: dict) -> str:
    return f"reportqa chunks: {embedder['name']} ({embedder['dim']}-dim)"


def _create_collection(client, name: str, embedder: dict) -> None:
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=_describe(embedder))
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=embedder["dim"])
    schema.add_field("source", DataType.VARCHAR, max_length=1024)
    schema.add_field("issuer", DataType.VARCHAR, max_length=256)
    schema.add_field("year", DataType.INT64)
    index = client.prepare_index_params()
    # FLAT: exact, so Milvus gives the same neighbours as FAISS; a server with millions of chunks may prefer HNSW.
    index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index)


def _filter_fields(chunk: Chunk) -> dict:
    """What a scope filters a Milvus row on (Milvus has no NULL here: "" and 0 for unknown)."""
    return {"source": chunk.source, "issuer": chunk.issuer or "", "year": chunk.year or 0}


def _held_rows(client, name: str) -> dict[str, dict]:
    """Every id in the collection with its filter fields."""
    iterator = client.query_iterator(name, batch_size=MILVUS_BATCH, output_fields=["id", *FILTER_FIELDS])
    rows: dict[str, dict] = {}
    try:
        while batch := iterator.next():
            rows.update((row["id"], {f: row[f] for f in FILTER_FIELDS}) for row in batch)
    finally:
        iterator.close()
    return rows
