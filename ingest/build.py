"""Turn report files into a complete index version: parse, chunk, embed, write."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from reportqa.embeddings import Embedder
from reportqa.errors import ReportFileError

from .chunker import ChunkerSettings, chunk_document
from .loader import SUPPORTED_SUFFIXES, find_reports, load_report, sha256_file
from .models import Chunk
from .store import Manifest, load_index, write_index
from .text import tokenize
from .vectors import VectorStoreConfig

Progress = Callable[[str], None]


@dataclass
class BuildResult:
    manifest: Manifest
    version: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, English reason)


def passage_text(chunk: Chunk) -> str:
    """What the embedder sees: the section path gives a short passage its topic."""
    return f"{chunk.section}\n{chunk.text}" if chunk.section_path else chunk.text


def embedder_info(embedder: Embedder) -> dict:
    return {"name": embedder.name, "dim": embedder.dim}


def source_hashes(paths: list[Path], root: Path) -> dict[str, str]:
    """sha256 of every report file the index should be built from."""
    return {_source_name(p, root): sha256_file(p) for p in find_reports(paths)}


def _source_name(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else path.name


def _previous_vectors(index_dir: Path, embedder: Embedder) -> dict[str, np.ndarray]:
    """Vectors of the live index by the text they embed, when it used the same model.

    A rebuild after one report changed then embeds only the new passages.
    """
    try:
        previous = load_index(index_dir)
    except Exception:  # no index yet, or a damaged one: embed everything
        return {}
    if previous.manifest.embedder != embedder_info(embedder):
        return {}
    vectors: dict[str, np.ndarray] = {}
    row = 0
    for i, chunk in enumerate(previous.chunks):
        vectors[passage_text(chunk)] = previous.dense.reconstruct(i)
        for span in chunk.sentences:
            vectors[chunk.sentence_text(span)] = previous.sentence_vectors[row]
            row += 1
    return vectors


def _embed(texts: list[str], embedder: Embedder, known: dict[str, np.ndarray]) -> np.ndarray:
    """Embed texts as passages, taking vectors already known from the previous build."""
    missing = sorted({t for t in texts if t not in known})
    if missing:
        known = {**known, **dict(zip(missing, embedder.encode_passages(missing)))}
    if not texts:
        return np.zeros((0, embedder.dim), np.float32)
    return np.stack([known[t] for t in texts]).astype(np.float32)


def build_index(paths: list[Path], root: Path, index_dir: Path, embedder: Embedder,
                chunker: ChunkerSettings = ChunkerSettings(), progress: Progress = lambda _: None,
                vectors: VectorStoreConfig = VectorStoreConfig()) -> BuildResult:
    """Parse and embed every report under ``paths``; skip unreadable files with a reason.

    Raises ReportFileError when no file could be used; the live index is then untouched.
    """
    import bm25s

    chunks: list[Chunk] = []
    sources: list[dict] = []
    skipped: list[tuple[str, str]] = []
    for path in find_reports(paths):
        name = _source_name(path, root)
        try:
            doc = load_report(path, root)
        except ReportFileError as exc:
            skipped.append((name, exc.message))
            sources.append({"source": name, "sha256": sha256_file(path), "status": "skipped", "reason": exc.message})
            progress(f"skipped {exc.message}")
            continue
        doc_chunks = chunk_document(doc, chunker)
        chunks.extend(doc_chunks)
        sources.append({"source": name, "sha256": doc.sha256, "status": "indexed", "title": doc.title,
                        "chunks": len(doc_chunks)})
        progress(f"parsed {name}: {len(doc.paragraphs)} paragraphs, {len(doc_chunks)} chunks")
    if not chunks:
        reasons = "; ".join(r for _, r in skipped) or (
            f"no {'/'.join(SUPPORTED_SUFFIXES)} reports under {', '.join(map(str, paths))}")
        raise ReportFileError(f"Nothing to index: {reasons}. The existing index was left as it was.",
                              "没有可导入的报告，原有索引保持不变。")

    known = _previous_vectors(index_dir, embedder)
    passages = [passage_text(c) for c in chunks]
    sentences = [c.sentence_text(s) for c in chunks for s in c.sentences]
    new = len({t for t in passages + sentences if t not in known})
    progress(f"embedding {new} new passages and sentences with {embedder.name} ({len(known)} reused)")
    chunk_vectors = _embed(passages, embedder, known)
    sentence_vectors = _embed(sentences, embedder, known)
    bm25 = bm25s.BM25()
    bm25.index([tokenize(passage_text(c)) or [""] for c in chunks], show_progress=False)

    manifest = Manifest(
        embedder=embedder_info(embedder),
        chunker=chunker.to_dict(),
        sources=sources,
        chunk_count=len(chunks),
        sentence_count=len(sentences),
    )
    version = write_index(index_dir, manifest, chunks, chunk_vectors, sentence_vectors, bm25, vectors)
    progress(f"wrote {version}")
    return BuildResult(manifest, version, skipped)
