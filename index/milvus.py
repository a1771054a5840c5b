"""Chunk vectors in a Milvus collection (a server, a cluster, or Milvus Lite in a local folder).

Chosen by REPORTQA_VECTOR_STORE_URI; ingest keeps the collection in step with
the chunk table (``sync_milvus`` before a version goes live, ``delete_milvus_ids``
after), and ``MilvusStore`` searches it as a ``DenseStore``.
"""
from __future__ import annotations

import json
import logging

import numpy as np

from core.errors import IndexMissing, VectorStoreUnavailable
from core.types import Chunk, Scope

from .vectors import VectorStoreConfig

FILTER_FIELDS = ("source", "issuer", "year")
MILVUS_BATCH = 1000  # rows a request: far below gRPC's 64 MB message limit at 384 dims


def milvus_filter(scope: Scope) -> str:
    """A scope as a Milvus boolean expression over the rows' source/issuer/year fields."""
    parts = []
    for field, values in (("source", scope.sources), ("issuer", scope.issuers), ("year", scope.years)):
        if values:
            parts.append(f"{field} in {json.dumps(list(values), ensure_ascii=False)}")
    return " and ".join(parts)


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
    # Milvus Lite has no server clock for query iterators and warns on every listing; harmless.
    logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
    # A Lite file that will not open is logged with a traceback; VectorStoreUnavailable says it in one line.
    logging.getLogger("milvus_lite.server_manager").setLevel(logging.CRITICAL)
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
    def open(cls, config: VectorStoreConfig, chunk_ids: list[str]) -> "MilvusStore":
        """Connect and check the collection holds exactly the chunk table's ids (in row order)."""
        store = cls(milvus_client(config), config, list(chunk_ids))
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
            filter=milvus_filter(scope) if scope else "", output_fields=["id"],
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
