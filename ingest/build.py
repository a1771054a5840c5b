"""Turn report files into a complete index version: parse, chunk, embed, write (through ``index``).

Per-file and resumable: each report's chunks, vectors and BM25 tokens are kept
as a part (``index.parts``), keyed by what they were made from (the file, its
sidecar, its name, the chunker and the embedder). A rebuild parses and embeds
only files whose key is new, takes the rest from their parts, and assembles
the version from the parts of the files present now, so a removed file leaves
the index. A part is written to a temporary folder and renamed, so an
interrupted ingest keeps every finished file; the next run starts where it
stopped. The live version is replaced only at the end (``index.store``). A part
is reused only when its bytes hash to what was recorded when it was written.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from core.embedding import Embedder
from core.errors import ReportFileError
from core.text import tokenize
from core.types import Chunk, ReportInfo, passage_text
from index.manifest import Manifest, embedder_info
from index.parts import PARTS, Part, absorb_parts, part_key, prune_parts, read_part, recorded_hashes, write_part
from index.quantized import QuantizedVectors
from index.store import live_sentence_vectors, read_manifest, write_index
from index.vectors import VectorStoreConfig

from .chunker import ChunkerSettings, chunk_document
from .formats import ParseLimits
from .loader import (PARSER_VERSION, SUPPORTED_SUFFIXES, Converter, load_report, report_stamps, scan_reports,
                     sidecar_path)
from .sandbox import ConverterProcess

Progress = Callable[[str], None]
FileProgress = Callable[[int, int, str], None]  # (files done, files in all, the file just done)


@dataclass
class BuildResult:
    manifest: Manifest
    version: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, English reason)
    parsed: list[str] = field(default_factory=list)  # sources parsed and embedded in this run
    reused: list[str] = field(default_factory=list)  # sources taken unchanged from earlier runs
    removed: list[str] = field(default_factory=list)  # sources of the previous version no longer present


def file_fingerprint(path: Path) -> str:
    """sha256 of the report and its sidecar: editing either makes the index stale."""
    digest = hashlib.sha256(path.read_bytes())
    sidecar = sidecar_path(path)
    if sidecar is not None:
        digest.update(b"\0sidecar\0" + sidecar.read_bytes())
    return digest.hexdigest()


def file_stamp(path: Path) -> tuple[int, ...]:
    """Size and mtime of the report and its sidecar: unchanged, the fingerprint is too (as git assumes)."""
    sidecar = sidecar_path(path)
    stats = [path.stat()] + ([sidecar.stat()] if sidecar else [])
    return tuple(n for st in stats for n in (st.st_size, st.st_mtime_ns))


def source_hashes(paths: list[Path], root: Path, known: list[ReportInfo] = ()) -> dict[str, str]:
    """Fingerprint of every report file the index should be built from.

    ``known``: the manifest's records; a file whose stamp matches its record keeps the record's fingerprint.
    """
    stamped = {report.source: report for report in known if report.stamp}
    hashes = {}
    for path, stamp in report_stamps(paths, file_stamp):
        name = _source_name(path, root)
        report = stamped.get(name)
        hashes[name] = report.sha256 if report and report.stamp == stamp else file_fingerprint(path)
    return hashes


def _source_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it is inside it, else its file name. First compared as text (what
    ``Path.relative_to`` finds for "data/raw/x.txt" under "data/raw", without its parsing: 10,000 reports at
    every start); a root the text cannot show (".") goes the Path way."""
    inside, text = os.path.join(str(root), ""), str(path)
    if text.startswith(inside):
        return text[len(inside):]
    return str(path.relative_to(root)) if path.is_relative_to(root) else path.name


# How passage vectors are made (part of a part's key: another way makes new parts).
PASSAGE_VECTORS = "sentence-mean+head/1"


def passage_head(chunk: Chunk) -> str:
    """What the embedder reads before a passage's sentences (core.types.passage_text without the text):
    its section path and table context; "" for a passage with neither."""
    full = passage_text(chunk)
    return full[: len(full) - len(chunk.text)].removesuffix("\n")


def passage_vectors(part: Part) -> np.ndarray:
    """Each chunk's vector, made from vectors already computed rather than by embedding the passage again:
    the mean of its head's and its sentences' vectors weighted by their lengths in characters (the
    model mean-pools over tokens, so a longer sentence counts more), normalised, rounded to float16
    (what the HNSW index stores, so flat, HNSW and Milvus hold the same values).

    Measured against embedding each passage (README, Ingest speed): the same Recall@5 on the
    evaluation set, at half the model time.
    """
    dim = part.head_vectors.shape[1] if part.head_vectors.ndim == 2 else part.sentence_vectors.shape[1]
    if not part.chunks:
        return np.zeros((0, dim), np.float32)
    spans = np.array([s for c in part.chunks for s in c.sentences], dtype=np.int64).reshape(-1, 2)
    weights = (spans[:, 1] - spans[:, 0]).astype(np.float32)
    weighted = part.sentence_vectors[:] * weights[:, None]
    starts = np.cumsum([0] + [len(c.sentences) for c in part.chunks[:-1]])
    sums = np.add.reduceat(weighted, starts, axis=0)
    head_row = {h: i for i, h in enumerate(part.heads)}
    heads = np.asarray(part.head_vectors, dtype=np.float32)
    for i, chunk in enumerate(part.chunks):
        head = passage_head(chunk)
        if head:
            sums[i] += len(head) * heads[head_row[head]]
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return sums.astype(np.float16).astype(np.float32)


def _known_vectors(part: Part | None) -> tuple[dict[str, tuple[np.ndarray, float]], dict[str, np.ndarray]]:
    """Vectors of an earlier version of the same report by the text they embed: sentences (as stored), heads."""
    if part is None:
        return {}, {}
    texts = [c.sentence_text(s) for c in part.chunks for s in c.sentences]
    sentences = {t: part.sentence_vectors.row(i) for i, t in enumerate(texts)}
    return sentences, dict(zip(part.heads, part.head_vectors))


def _embed_sentences_and_heads(chunks: list[Chunk], embedder: Embedder, earlier: Part | None
                               ) -> tuple[QuantizedVectors, list[str], np.ndarray]:
    """The sentence vectors (int8) and head vectors (float16) of ``chunks``: every distinct text the
    earlier part does not already hold is embedded once, in one batch; no passage is embedded."""
    sentences = [c.sentence_text(s) for c in chunks for s in c.sentences]
    heads = list(dict.fromkeys(h for h in map(passage_head, chunks) if h))
    known_sentences, known_heads = _known_vectors(earlier)
    missing = sorted((set(sentences) - known_sentences.keys()) | (set(heads) - known_heads.keys()))
    fresh = dict(zip(missing, embedder.encode_passages(missing))) if missing else {}
    new_sentences = sorted({t for t in sentences if t not in known_sentences})
    quantized = QuantizedVectors.quantize(np.stack([fresh[t] for t in new_sentences])) if new_sentences else None
    rows = dict(known_sentences)
    rows.update((t, quantized.row(i)) for i, t in enumerate(new_sentences))
    head_vectors = np.stack([known_heads[h] if h in known_heads else fresh[h] for h in heads]).astype(np.float16) \
        if heads else np.zeros((0, embedder.dim), np.float16)
    return QuantizedVectors.stack([rows[t] for t in sentences], embedder.dim), heads, head_vectors


def _make_part(path: Path, root: Path, embedder: Embedder, chunker: ChunkerSettings, earlier: Part | None,
               limits: ParseLimits, converter: Converter) -> Part:
    """Parse, chunk and embed one report (ReportFileError when it cannot be read)."""
    doc = load_report(path, root, limits, converter)
    chunks = chunk_document(doc, chunker)
    # The model runs in a worker thread while this one tokenises for BM25: the engine releases the GIL,
    # and jieba (loading its dictionary on a first report, ~1 s) would otherwise wait for it.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed") as worker:
        embedded = worker.submit(_embed_sentences_and_heads, chunks, embedder, earlier)
        tokens = [tokenize(passage_text(c)) or [""] for c in chunks]
        sentence_vectors, heads, head_vectors = embedded.result()
    return Part(chunks, sentence_vectors, heads, head_vectors, tokens, doc.text)


def _live_sources(index_dir: Path) -> list[ReportInfo]:
    """The live version's records, to reuse its parts; none when there is no index or a damaged one."""
    try:
        return read_manifest(index_dir).sources
    except Exception:  # noqa: BLE001 - no index yet, or a damaged one: nothing is reused from it
        return []


def build_index(paths: list[Path], root: Path, index_dir: Path, embedder: Embedder,
                chunker: ChunkerSettings = ChunkerSettings(), progress: Progress = lambda _: None,
                vectors: VectorStoreConfig = VectorStoreConfig(),
                on_file: FileProgress = lambda done, total, name: None,
                limits: ParseLimits = ParseLimits()) -> BuildResult:
    """Index every report under ``paths``: new or changed files are parsed and embedded, the rest reused.

    A file that cannot be read, is over one of ``limits`` or is not a regular
    file (a link) is skipped with its reason. Raises ReportFileError when no
    file could be used; the live index is then untouched.
    """
    import bm25s

    parts_dir = index_dir / PARTS
    live = _live_sources(index_dir)
    held = live_sentence_vectors(index_dir)  # sentence vectors of the parts the live version absorbed
    previous = {s.source: s.part for s in live if s.part}  # to reuse vectors of a changed report's unchanged text
    recorded = recorded_hashes(index_dir, live)
    files, refused = scan_reports(paths)
    for _, reason in refused:
        progress(f"skipped {reason}")
    sources: list[ReportInfo] = []
    result_parts: list[Part] = []
    skipped, parsed, reused = list(refused), [], []
    with ConverterProcess(limits) as converter:
        for done, path in enumerate(files, start=1):
            name = _source_name(path, root)
            stamp = file_stamp(path)  # before the hash: a file edited meanwhile then looks changed next time
            fingerprint = file_fingerprint(path)
            # PARSER_VERSION: a part parsed by an older parser is parsed again (its unchanged text keeps its vectors).
            key = part_key([name, fingerprint, chunker.to_dict(), embedder_info(embedder), PARSER_VERSION,
                            PASSAGE_VECTORS])
            found = read_part(parts_dir / key, recorded.get(key), lambda key=key: held(key))
            if found is not None:
                part, part_sha256 = found
                reused.append(name)
            else:
                try:
                    earlier = read_part(parts_dir / previous[name], recorded.get(previous[name]),
                                        lambda: held(previous[name])) if name in previous else None
                    part = _make_part(path, root, embedder, chunker, earlier[0] if earlier else None, limits,
                                      converter)
                except ReportFileError as exc:
                    skipped.append((name, exc.message))
                    sources.append(ReportInfo(name, "skipped", sha256=fingerprint, stamp=stamp, reason=exc.message))
                    progress(f"skipped {exc.message}")
                    on_file(done, len(files), name)
                    continue
                part_sha256 = write_part(parts_dir, key, part)
                parsed.append(name)
            first = part.chunks[0]
            sources.append(ReportInfo(name, "indexed", first.doc_title, first.issuer, first.year, first.url,
                                      len(part.chunks), fingerprint, stamp, key, part_sha256))
            result_parts.append(part)
            on_file(done, len(files), name)
    if not result_parts:
        reasons = "; ".join(r for _, r in skipped) or (
            f"no {'/'.join(SUPPORTED_SUFFIXES)} reports under {', '.join(map(str, paths))}")
        raise ReportFileError(f"Nothing to index: {reasons}. The existing index was left as it was.",
                              "没有可导入的报告，原有索引保持不变。")
    progress(f"{len(parsed)} report(s) parsed and embedded with {embedder.name}, {len(reused)} unchanged, "
             f"{len(skipped)} skipped")

    chunks = [c for p in result_parts for c in p.chunks]
    bm25 = bm25s.BM25()
    bm25.index([t for p in result_parts for t in p.tokens], show_progress=False)
    sentence_vectors = QuantizedVectors.concatenate([p.sentence_vectors for p in result_parts], embedder.dim)
    manifest = Manifest(
        embedder=embedder_info(embedder),
        chunker=chunker.to_dict(),
        sources=sources,
        chunk_count=len(chunks),
        sentence_count=len(sentence_vectors),
    )
    version = write_index(index_dir, manifest, chunks, np.concatenate([passage_vectors(p) for p in result_parts]),
                          sentence_vectors, bm25, vectors)
    kept = {s.part: s.part_sha256 for s in sources if s.part}
    absorb_parts(parts_dir, kept)  # the live version holds their sentence vectors now
    prune_parts(parts_dir, kept)
    progress(f"wrote {version}")
    removed = sorted(set(previous) - {s.source for s in sources})
    return BuildResult(manifest, version, skipped, parsed, reused, removed)
