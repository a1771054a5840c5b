"""The index on disk: a versioned, self-describing folder swapped in atomically.

Layout::

    index/CURRENT              name of the live version folder (replaced atomically)
    index/parts/<key>/         one report's chunks, vectors and tokens, reused by the next build
    index/parts.journal        the hash of each part as it was written: only a part that matches is reused
    index/v-<stamp>/manifest.json
                    chunks.jsonl      chunk table, row i = FAISS id i
                    dense.faiss       inner product over normalised chunk vectors: exact (flat)
                                      or HNSW by size (index/vectors.py); absent when the
                                      vectors live in Milvus (manifest "vector_store")
                    sentences.npy     one normalised vector per chunk sentence, in order
                    bm25/             bm25s index over jieba tokens, same order

A build writes a new version folder, then replaces CURRENT; a crash at any
point leaves the previous version live.
"""
from __future__ import annotations

import gc
import json
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import IndexMismatch, IndexMissing
from core.files import replace_atomically, write_durably
from core.types import Chunk

from .manifest import Manifest, differences
from .milvus import MilvusStore, delete_milvus_ids, sync_milvus
from .parts import PARTS, PARTS_JOURNAL
from .vectors import DenseStore, FaissStore, ScopeRows, VectorStoreConfig

CURRENT = "CURRENT"


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
    replace_atomically(index_dir / CURRENT, version.name)
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
