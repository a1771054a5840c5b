"""The index on disk: a versioned, self-describing folder swapped in atomically.

Layout::

    index/CURRENT              name of the live version folder (replaced atomically)
    index/parts/<key>/         one report's chunks, vectors and tokens, reused by the next build
    index/parts.journal        the hash of each part as it was written: only a part that matches is reused
    index/v-<stamp>/manifest.json
                    chunks.jsonl      chunk table, row i = FAISS id i
                    dense.faiss       inner product over normalised chunk vectors: exact (flat)
                                      or HNSW by size (ingest/vectors.py); absent when the
                                      vectors live in Milvus (manifest "vector_store")
                    sentences.npy     one normalised vector per chunk sentence, in order
                    bm25/             bm25s index over jieba tokens, same order

A build writes a new version folder, then replaces CURRENT; a crash at any
point leaves the previous version live.
"""
from __future__ import annotations

import gc
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reportqa.errors import IndexMismatch, IndexMissing

from .models import Chunk
from .vectors import DenseStore, FaissStore, MilvusStore, ScopeRows, VectorStoreConfig, delete_milvus_ids, sync_milvus

FORMAT_VERSION = 2  # 2: report metadata on chunks, per-report parts
CURRENT = "CURRENT"
PARTS = "parts"  # per-report parts that builds reuse (ingest.build); never a version
PARTS_JOURNAL = "parts.journal"  # "<part key> <sha256>" of each part as it was written (ingest.build)


@dataclass
class Manifest:
    """What an index was built from; loading compares it with what is wanted."""

    embedder: dict  # {"name": str, "dim": int}
    chunker: dict
    sources: list[dict]  # [{"source", "sha256", "status", "reason"?}]
    chunk_count: int
    sentence_count: int
    format_version: int = FORMAT_VERSION
    # {"kind": "faiss", "index": "flat"|"hnsw"} or {"kind": "milvus", "uri", "collection"}; older indexes were flat
    vector_store: dict = field(default_factory=lambda: {"kind": "faiss", "index": "flat"})
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, row: dict) -> "Manifest":
        return cls(**{k: row[k] for k in cls.__dataclass_fields__ if k in row})

    def indexed(self) -> list[dict]:
        """The source rows of the reports that went in (not the skipped files)."""
        return [s for s in self.sources if s.get("status") == "indexed"]

    def source_hashes(self) -> dict[str, str]:
        return {s["source"]: s["sha256"] for s in self.sources}


def differences(manifest: Manifest, embedder: dict, chunker: dict, source_hashes: dict[str, str]) -> list[str]:
    """Why an index does not match what is wanted, as short English phrases."""
    reasons: list[str] = []
    if manifest.format_version != FORMAT_VERSION:
        reasons.append(f"index format {manifest.format_version}, this version reads {FORMAT_VERSION}")
    if manifest.embedder != embedder:
        reasons.append(f"built with embedder {manifest.embedder['name']} ({manifest.embedder['dim']}-dim), configured {embedder['name']} ({embedder['dim']}-dim)")
    if manifest.chunker != chunker:
        reasons.append(f"chunker settings changed ({manifest.chunker} -> {chunker})")
    built = manifest.source_hashes()
    for source in sorted(set(built) | set(source_hashes)):
        if source not in source_hashes:
            reasons.append(f"{source} was removed")
        elif source not in built:
            reasons.append(f"{source} is new")
        elif built[source] != source_hashes[source]:
            reasons.append(f"{source} changed")
    return reasons


@dataclass
class StoredIndex:
    """A loaded index version, checked for internal consistency."""

    path: Path
    manifest: Manifest
    chunks: list[Chunk]
    dense: DenseStore
    sentence_vectors: np.ndarray
    bm25: object  # bm25s.BM25
    rows_in: ScopeRows  # chunk-table rows inside a scope


def write_durably(path: Path, data: str | bytes) -> None:
    """Write (text as UTF-8) and fsync: a crash afterwards cannot leave the file half-written on disk."""
    with open(path, "wb") as handle:
        data = data.encode("utf-8") if isinstance(data, str) else data
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_index(index_dir: Path, manifest: Manifest, chunks: list[Chunk], chunk_vectors: np.ndarray,
                sentence_vectors: np.ndarray, bm25, vectors: VectorStoreConfig = VectorStoreConfig()) -> Path:
    """Write a new version folder and make it live; return its path.

    Sets ``manifest.vector_store``. With Milvus, new chunks are inserted first
    and vanished ones deleted only after the swap, so the version being served
    keeps its vectors throughout.
    """
    stale_ids = []
    if vectors.kind == "milvus":
        stale_ids = sync_milvus(vectors, chunks, chunk_vectors, manifest.embedder)
        manifest.vector_store = {"kind": "milvus", "uri": vectors.uri, "collection": vectors.collection}
    index_dir.mkdir(parents=True, exist_ok=True)
    version = index_dir / f"v-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
    version.mkdir()
    if vectors.kind == "faiss":
        dense = FaissStore.build(chunk_vectors, ScopeRows(chunks), vectors.exact_below)
        dense.write(version / "dense.faiss")
        manifest.vector_store = {"kind": "faiss", "index": dense.kind}
    np.save(version / "sentences.npy", np.ascontiguousarray(sentence_vectors, dtype=np.float32))
    bm25.save(str(version / "bm25"))
    write_durably(version / "chunks.jsonl", "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in chunks))
    # The manifest goes last: a folder without one is an unfinished build.
    write_durably(version / "manifest.json", json.dumps(manifest.to_dict(), ensure_ascii=False, indent=2))
    pointer = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
    write_durably(pointer, version.name)
    os.replace(pointer, index_dir / CURRENT)
    _remove_stale_versions(index_dir, keep=version.name)
    if stale_ids:
        delete_milvus_ids(vectors, stale_ids)
    return version


def _remove_stale_versions(index_dir: Path, keep: str) -> None:
    for child in index_dir.iterdir():
        if child.name not in (keep, CURRENT, PARTS, PARTS_JOURNAL):
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


def live_version(index_dir: Path) -> Path:
    pointer = index_dir / CURRENT
    if not pointer.is_file():
        raise IndexMissing(
            f"No index at {index_dir}. Run `reportqa ingest` to build it from the reports in data/raw.",
            "索引尚未建立，请先运行 reportqa ingest 导入报告。",
        )
    return index_dir / pointer.read_text(encoding="utf-8").strip()


def read_manifest(index_dir: Path) -> Manifest:
    version = live_version(index_dir)
    try:
        return Manifest.from_dict(json.loads((version / "manifest.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise _corrupt(index_dir, f"manifest unreadable: {exc}") from None


def _corrupt(index_dir: Path, reason: str) -> IndexMissing:
    return IndexMissing(
        f"The index at {index_dir} is damaged ({reason}). Run `reportqa ingest` to rebuild it.",
        "索引文件已损坏，请运行 reportqa ingest 重新建立索引。",
    )


def _store_mismatch(manifest: Manifest, vectors: VectorStoreConfig) -> str | None:
    """Why the index's vectors are not where the configuration looks for them, if they are not."""
    built = manifest.vector_store
    if vectors.kind == "faiss":
        return None if built["kind"] == "faiss" else f"its vectors are in Milvus ({built['uri']}), FAISS is configured"
    wanted = {"kind": "milvus", "uri": vectors.uri, "collection": vectors.collection}
    if built == wanted:
        return None
    where = "FAISS" if built["kind"] == "faiss" else f"Milvus {built['uri']} collection {built['collection']}"
    return f"its vectors are in {where}, Milvus {vectors.uri} collection {vectors.collection} is configured"


def read_chunks(path: Path) -> list[Chunk]:
    """The chunk table, one JSON object a line (parsed as one array: twice as fast at 200k rows).

    The cyclic garbage collector is paused meanwhile: the millions of objects a
    large table makes would otherwise trigger it again and again (8.6 s → 3.6 s
    for 200k chunks), and none of them can form a cycle.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        with open(path, encoding="utf-8") as handle:
            rows = json.loads("[" + ",".join(line for line in handle if line.strip()) + "]")
        return [Chunk.from_dict(row) for row in rows]
    finally:
        if paused:
            gc.enable()


def load_index(index_dir: Path, vectors: VectorStoreConfig = VectorStoreConfig()) -> StoredIndex:
    """Load the live version and check that its parts agree with the manifest."""
    import bm25s

    manifest = read_manifest(index_dir)
    version = live_version(index_dir)
    mismatch = _store_mismatch(manifest, vectors)
    if mismatch:
        raise IndexMissing(
            f"The index at {index_dir} was built with another vector store: {mismatch}. "
            "Run `reportqa ingest` to rebuild it.",
            "索引所用的向量库与当前配置不一致，请运行 reportqa ingest 重新建立索引。",
        )
    try:
        chunks = read_chunks(version / "chunks.jsonl")
        rows_in = ScopeRows(chunks)
        dense = FaissStore.read(version / "dense.faiss", rows_in, vectors.exact_below) if vectors.kind == "faiss" else None
        # Memory-mapped: a question reads the vectors of its hits' sentences only, and
        # start-up does not wait for 1.3 GB of them at 10,000 reports.
        sentence_vectors = np.load(version / "sentences.npy", mmap_mode="r")
        bm25 = bm25s.BM25.load(str(version / "bm25"), mmap=True)
    except Exception as exc:  # faiss raises RuntimeError, numpy ValueError, json ValueError…
        raise _corrupt(index_dir, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    n_sentences = sum(len(c.sentences) for c in chunks)
    problems = []
    n_vectors = len(dense) if dense is not None else len(chunks)  # Milvus counts its own in MilvusStore.open
    if not (len(chunks) == n_vectors == manifest.chunk_count):
        problems.append(f"{len(chunks)} chunks, {n_vectors} vectors, manifest says {manifest.chunk_count}")
    if sentence_vectors.shape != (n_sentences, manifest.embedder["dim"]) or n_sentences != manifest.sentence_count:
        problems.append(f"sentence vectors {sentence_vectors.shape}, expected ({n_sentences}, {manifest.embedder['dim']})")
    if dense is not None and dense.dim != manifest.embedder["dim"]:
        problems.append(f"vector dimension {dense.dim}, manifest says {manifest.embedder['dim']}")
    if problems:
        raise _corrupt(index_dir, "; ".join(problems))
    if dense is None:  # checked last: only a complete index folder is worth a round trip to Milvus
        dense = MilvusStore.open(vectors, chunks)
    return StoredIndex(version, manifest, chunks, dense, sentence_vectors, bm25, rows_in)


def check_matches(manifest: Manifest, embedder: dict, chunker: dict, source_hashes: dict[str, str], index_dir: Path) -> None:
    """Raise IndexMismatch naming every difference between the index and the config."""
    reasons = differences(manifest, embedder, chunker, source_hashes)
    if reasons:
        raise IndexMismatch(
            f"The index at {index_dir} is out of date: {'; '.join(reasons)}. "
            "Run `reportqa ingest` to rebuild it (`make run` rebuilds it automatically).",
            "索引与当前报告或模型设置不一致，请运行 reportqa ingest 重新建立索引。",
        )
