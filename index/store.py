"""The index on disk: a versioned, self-describing folder swapped in atomically.

Layout::

    index/CURRENT              name of the live version folder (replaced atomically)
    index/parts/<key>/         one report's chunks, text, tokens and vectors, reused by the next build (index.parts)
    index/parts.journal        the hash of each part as it was written: only a part that matches is reused
    index/v-<stamp>/manifest.json     what it was built from, counts, and the size of every file below
                    table/            chunk table in columns (index.table), row i = FAISS id i
                    dense.faiss       inner product over normalised chunk vectors: exact (flat)
                                      or HNSW over float16 vectors by size (index/vectors.py);
                                      absent when the vectors live in Milvus (manifest "vector_store")
                    sentences.npy     one int8 vector per chunk sentence, in order, and its scale in
                    sentence_scales.npy   (index.quantized): the only copy, parts drop theirs
                    bm25/             bm25s index over jieba tokens, same order

A build writes a new version folder, then replaces CURRENT; a crash at any
point leaves the previous version live. Everything is memory-mapped when
loaded: start-up reads the manifest, the small columns and the FAISS graph,
and a question reads the chunks, sentence vectors and BM25 columns it touches.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import IndexMismatch, IndexMissing
from core.files import replace_atomically, write_durably
from core.types import Chunk

from .manifest import FORMAT_VERSION, Manifest, differences
from .milvus import MilvusStore, delete_milvus_ids, sync_milvus
from .parts import PARTS, PARTS_JOURNAL
from .quantized import QuantizedVectors
from .table import TABLE, ChunkTable, write_table
from .vectors import DenseStore, FaissStore, ScopeRows, VectorStoreConfig

CURRENT = "CURRENT"
MANIFEST = "manifest.json"


@dataclass
class StoredIndex:
    """A loaded index version, checked for internal consistency.

    ``chunks`` builds each Chunk when it is read (index.table); ``sentence_vectors``
    gives float32 rows of the int8 vectors (index.quantized). The sentences of
    the chunk in row i are rows ``sentence_offsets[i]:sentence_offsets[i + 1]``
    of ``sentence_vectors``; ``sentence_start[chunk_id]`` is the first of them.
    """

    path: Path
    manifest: Manifest
    chunks: Sequence[Chunk]
    dense: DenseStore
    sentence_vectors: QuantizedVectors
    bm25: object  # bm25s.BM25
    rows_in: ScopeRows  # chunk-table rows inside a scope
    sentence_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    _sentence_start: dict[str, int] | None = field(default=None, repr=False)

    @property
    def sentence_start(self) -> Mapping[str, int]:
        """chunk id -> row of its first sentence in ``sentence_vectors`` (made on first use, ~0.1 s at 200k)."""
        if self._sentence_start is None:
            ids = self.chunks.chunk_ids if isinstance(self.chunks, ChunkTable) else [c.chunk_id for c in self.chunks]
            self._sentence_start = dict(zip(ids, self.sentence_offsets[:-1].tolist()))
        return self._sentence_start

    def sentence_rows(self, row: int) -> slice:
        """The rows of ``sentence_vectors`` holding the sentences of chunk-table row ``row``."""
        return slice(int(self.sentence_offsets[row]), int(self.sentence_offsets[row + 1]))


def write_index(index_dir: Path, manifest: Manifest, chunks: Sequence[Chunk], chunk_vectors: np.ndarray,
                sentence_vectors: QuantizedVectors, bm25, vectors: VectorStoreConfig = VectorStoreConfig()) -> Path:
    """Write a new version folder and make it live; return its path.

    Sets ``manifest.vector_store`` and ``manifest.files``. With Milvus, new chunks are inserted first
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
        dense = FaissStore.build(chunk_vectors, ScopeRows.of_chunks(chunks), vectors.exact_below)
        dense.write(version / "dense.faiss")
        manifest.vector_store = {"kind": "faiss", "index": dense.kind}
    sentence_vectors.save(version)
    bm25.save(str(version / "bm25"))
    write_table(version / TABLE, chunks)
    manifest.files = _file_sizes(version)
    # The manifest goes last: a folder without one is an unfinished build.
    write_durably(version / MANIFEST, json.dumps(manifest.to_dict(), ensure_ascii=False, indent=1))
    replace_atomically(index_dir / CURRENT, version.name)
    _remove_stale_versions(index_dir, keep=version.name)
    if stale_ids:
        delete_milvus_ids(vectors, stale_ids)
    return version


def _file_sizes(version: Path) -> dict[str, int]:
    """Every file of a version folder (but the manifest) and its size in bytes."""
    return {str(p.relative_to(version)): p.stat().st_size
            for p in sorted(version.rglob("*")) if p.is_file() and p.name != MANIFEST}


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
        return Manifest.from_dict(json.loads((version / MANIFEST).read_text(encoding="utf-8")))
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


def _check_files(version: Path, manifest: Manifest) -> None:
    """ValueError naming the first file that is missing or not the size the manifest recorded."""
    for name, size in manifest.files.items():
        try:
            found = os.stat(version / name).st_size
        except OSError:
            raise ValueError(f"{name} is missing") from None
        if found != size:
            raise ValueError(f"{name} is {found} bytes, {size} were written")


def load_index(index_dir: Path, vectors: VectorStoreConfig = VectorStoreConfig()) -> StoredIndex:
    """Load the live version and check that its files agree with each other and with the manifest."""
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
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatch(
            f"The index at {index_dir} has format {manifest.format_version}, this version reads {FORMAT_VERSION}. "
            "Run `reportqa ingest` to rebuild it (`make run` rebuilds it automatically).",
            "索引格式已更新，请运行 reportqa ingest 重新建立索引。",
        )
    try:
        _check_files(version, manifest)
        chunks = ChunkTable(version / TABLE)
        rows_in = ScopeRows(chunks.report_rows(), [(r[0], r[2], r[3]) for r in chunks.reports])
        dense = FaissStore.read(version / "dense.faiss", rows_in, vectors.exact_below) if vectors.kind == "faiss" else None
        # Memory-mapped: a question reads the vectors of its hits' sentences only.
        sentence_vectors = QuantizedVectors.load(version)
        bm25 = bm25s.BM25.load(str(version / "bm25"), mmap=True)
    except Exception as exc:  # faiss raises RuntimeError, numpy ValueError, json ValueError…
        raise _corrupt(index_dir, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    problems = []
    n_vectors = len(dense) if dense is not None else len(chunks)  # Milvus counts its own in MilvusStore.open
    if not (len(chunks) == n_vectors == manifest.chunk_count):
        problems.append(f"{len(chunks)} chunks, {n_vectors} vectors, manifest says {manifest.chunk_count}")
    n_sentences = chunks.sentence_count
    if sentence_vectors.shape != (n_sentences, manifest.embedder["dim"]) or n_sentences != manifest.sentence_count:
        problems.append(f"sentence vectors {sentence_vectors.shape}, expected ({n_sentences}, {manifest.embedder['dim']})")
    if dense is not None and dense.dim != manifest.embedder["dim"]:
        problems.append(f"vector dimension {dense.dim}, manifest says {manifest.embedder['dim']}")
    if int(bm25.scores["num_docs"]) != len(chunks):
        problems.append(f"BM25 indexes {int(bm25.scores['num_docs'])} chunks, the table holds {len(chunks)}")
    if problems:
        raise _corrupt(index_dir, "; ".join(problems))
    if dense is None:  # checked last: only a complete index folder is worth a round trip to Milvus
        dense = MilvusStore.open(vectors, chunks.chunk_ids)
    return StoredIndex(version, manifest, chunks, dense, sentence_vectors, bm25, rows_in, chunks.sentence_offsets())


def live_sentence_vectors(index_dir: Path) -> Callable[[str], QuantizedVectors | None]:
    """The sentence vectors the live version holds for a part, by part key (None for a part it does not hold).

    For a build: a part whose vectors were absorbed into the live version gets them back from it. A
    missing or damaged version holds nothing; the part's hash check catches a version edited on disk.
    """
    try:
        manifest = read_manifest(index_dir)
        version = live_version(index_dir)
        if manifest.format_version != FORMAT_VERSION:
            return lambda key: None
        _check_files(version, manifest)
        offsets = ChunkTable(version / TABLE).sentence_offsets()
        vectors = QuantizedVectors.load(version)
    except Exception:  # noqa: BLE001 - no usable live version: nothing is held there
        return lambda key: None
    ranges, row = {}, 0
    for report in manifest.indexed():
        if report.part:
            ranges[report.part] = (row, row + report.chunks)
        row += report.chunks
    if row != len(offsets) - 1 or int(offsets[-1]) != len(vectors):
        return lambda key: None

    def held(key: str) -> QuantizedVectors | None:
        if key not in ranges:
            return None
        first, last = ranges[key]
        return vectors.slice(int(offsets[first]), int(offsets[last]))

    return held


def check_matches(manifest: Manifest, embedder: dict, chunker: dict, source_hashes: dict[str, str], index_dir: Path) -> None:
    """Raise IndexMismatch naming every difference between the index and the config."""
    reasons = differences(manifest, embedder, chunker, source_hashes)
    if reasons:
        raise IndexMismatch(
            f"The index at {index_dir} is out of date: {'; '.join(reasons)}. "
            "Run `reportqa ingest` to rebuild it (`make run` rebuilds it automatically).",
            "索引与当前报告或模型设置不一致，请运行 reportqa ingest 重新建立索引。",
        )
