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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from core.embedding import Embedder
from core.errors import ReportFileError
from core.text import tokenize
from core.types import ReportInfo, passage_text
from index.manifest import Manifest, embedder_info
from index.parts import PARTS, Part, part_key, prune_parts, read_part, recorded_hashes, write_part
from index.store import read_manifest, write_index
from index.vectors import VectorStoreConfig

from .chunker import ChunkerSettings, chunk_document
from .formats import ParseLimits
from .loader import PARSER_VERSION, SUPPORTED_SUFFIXES, Converter, find_reports, load_report, scan_reports, sidecar_path
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
    for path in find_reports(paths):
        name = _source_name(path, root)
        report = stamped.get(name)
        hashes[name] = report.sha256 if report and report.stamp == file_stamp(path) else file_fingerprint(path)
    return hashes


def _source_name(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else path.name


def _vectors_by_text(part: Part | None) -> dict[str, np.ndarray]:
    """Vectors of an earlier version of the same report, by the text they embed."""
    if part is None:
        return {}
    known = {passage_text(c): v for c, v in zip(part.chunks, part.chunk_vectors)}
    sentences = [c.sentence_text(s) for c in part.chunks for s in c.sentences]
    known.update(zip(sentences, part.sentence_vectors))
    return known


def _embed(texts: list[str], embedder: Embedder, known: dict[str, np.ndarray]) -> np.ndarray:
    """Embed texts as passages, taking vectors already known."""
    missing = sorted({t for t in texts if t not in known})
    if missing:
        known = {**known, **dict(zip(missing, embedder.encode_passages(missing)))}
    if not texts:
        return np.zeros((0, embedder.dim), np.float32)
    return np.stack([known[t] for t in texts]).astype(np.float32)


def _make_part(path: Path, root: Path, embedder: Embedder, chunker: ChunkerSettings, earlier: Part | None,
               limits: ParseLimits, converter: Converter) -> Part:
    """Parse, chunk and embed one report (ReportFileError when it cannot be read)."""
    doc = load_report(path, root, limits, converter)
    chunks = chunk_document(doc, chunker)
    known = _vectors_by_text(earlier)
    return Part(chunks,
                _embed([passage_text(c) for c in chunks], embedder, known),
                _embed([c.sentence_text(s) for c in chunks for s in c.sentences], embedder, known),
                [tokenize(passage_text(c)) or [""] for c in chunks],
                doc.text)


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
            key = part_key([name, fingerprint, chunker.to_dict(), embedder_info(embedder), PARSER_VERSION])
            found = read_part(parts_dir / key, recorded.get(key))
            if found is not None:
                part, part_sha256 = found
                reused.append(name)
            else:
                try:
                    earlier = read_part(parts_dir / previous[name], recorded.get(previous[name])) \
                        if name in previous else None
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
    sentence_vectors = np.concatenate([p.sentence_vectors for p in result_parts]).astype(np.float32)
    manifest = Manifest(
        embedder=embedder_info(embedder),
        chunker=chunker.to_dict(),
        sources=sources,
        chunk_count=len(chunks),
        sentence_count=len(sentence_vectors),
    )
    version = write_index(index_dir, manifest, chunks, np.concatenate([p.chunk_vectors for p in result_parts]),
                          sentence_vectors, bm25, vectors)
    prune_parts(parts_dir, {s.part: s.part_sha256 for s in sources if s.part})
    progress(f"wrote {version}")
    removed = sorted(set(previous) - {s.source for s in sources})
    return BuildResult(manifest, version, skipped, parsed, reused, removed)
