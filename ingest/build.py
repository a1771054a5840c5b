"""Turn report files into a complete index version: parse, chunk, embed, write.

Per-file and resumable: each report's chunks, vectors and BM25 tokens are kept
in ``index/parts/<key>/``, where the key hashes what they were made from (the
file, its sidecar, its name, the chunker and the embedder). A rebuild parses and
embeds only files whose key is new, takes the rest from their parts, and
assembles the version from the parts of the files present now, so a removed
file leaves the index. A part is written to a temporary folder and renamed, so
an interrupted ingest keeps every finished file; the next run starts where it
stopped. The live version is replaced only at the end (ingest.store).

A part is reused only when its bytes hash to what was recorded when it was
written (``parts.journal`` and the manifest): a part edited on disk is rebuilt
from its report, never trusted.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from reportqa.embeddings import Embedder
from reportqa.errors import ReportFileError

from .chunker import ChunkerSettings, chunk_document
from .formats import ParseLimits
from .loader import PARSER_VERSION, SUPPORTED_SUFFIXES, Converter, find_reports, load_report, scan_reports, sidecar_path
from .models import Chunk
from .sandbox import ConverterProcess
from .store import PARTS, PARTS_JOURNAL, Manifest, read_manifest, write_durably, write_index
from .text import tokenize
from .vectors import VectorStoreConfig

logger = logging.getLogger(__name__)

DOCUMENT_TEXT = "document.txt"
PART_FILES = ("chunks.jsonl", "chunks.npy", "sentences.npy", DOCUMENT_TEXT)  # what a part's hash covers
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


@dataclass
class Part:
    """One report's share of the index."""

    chunks: list[Chunk]
    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray
    tokens: list[list[str]]  # BM25 tokens, one list per chunk
    text: str = ""  # the document text the chunks' offsets point into (converted, for .html/.docx/.pdf)


def passage_text(chunk: Chunk) -> str:
    """What the embedder and BM25 see: the section path gives a short passage its topic, and a
    table row its caption and column headers (``Chunk.context``), so ``罚款 | 0`` says which column."""
    head = [part for part in (chunk.section if chunk.section_path else "", chunk.context) if part]
    return "\n".join([*head, chunk.text])


def embedder_info(embedder: Embedder) -> dict:
    return {"name": embedder.name, "dim": embedder.dim}


def file_fingerprint(path: Path) -> str:
    """sha256 of the report and its sidecar: editing either makes the index stale."""
    digest = hashlib.sha256(path.read_bytes())
    sidecar = sidecar_path(path)
    if sidecar is not None:
        digest.update(b"\0sidecar\0" + sidecar.read_bytes())
    return digest.hexdigest()


def file_stamp(path: Path) -> list[int]:
    """Size and mtime of the report and its sidecar: unchanged, the fingerprint is too (as git assumes)."""
    sidecar = sidecar_path(path)
    stats = [path.stat()] + ([sidecar.stat()] if sidecar else [])
    return [n for st in stats for n in (st.st_size, st.st_mtime_ns)]


def source_hashes(paths: list[Path], root: Path, known: Iterable[dict] = ()) -> dict[str, str]:
    """Fingerprint of every report file the index should be built from.

    ``known``: manifest source rows; a file whose stamp matches its row keeps the row's fingerprint.
    """
    stamped = {row["source"]: row for row in known if row.get("stamp")}
    hashes = {}
    for path in find_reports(paths):
        name = _source_name(path, root)
        row = stamped.get(name)
        hashes[name] = row["sha256"] if row and row["stamp"] == file_stamp(path) else file_fingerprint(path)
    return hashes


def _source_name(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else path.name


def _part_key(name: str, fingerprint: str, chunker: ChunkerSettings, embedder: Embedder) -> str:
    # PARSER_VERSION: a part parsed by an older parser is parsed again (its unchanged passages keep their vectors).
    made_from = json.dumps([name, fingerprint, chunker.to_dict(), embedder_info(embedder), PARSER_VERSION],
                           ensure_ascii=False)
    return hashlib.sha256(made_from.encode()).hexdigest()[:24]


def _part_digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in PART_FILES:
        digest.update(name.encode() + b"\0" + str(len(files[name])).encode() + b"\0" + files[name])
    return digest.hexdigest()


def _read_part(folder: Path, expected_sha256: str | None) -> tuple[Part, str] | None:
    """A finished part and its hash, or None when it is missing, unreadable, or not what was written
    (its hash is not ``expected_sha256``, or none was recorded): it is then rebuilt from its report."""
    if expected_sha256 is None:
        return None
    try:
        files = {name: (folder / name).read_bytes() for name in PART_FILES}
    except OSError:
        return None
    sha256 = _part_digest(files)
    if sha256 != expected_sha256:
        logger.warning("index part %s differs from what was written; rebuilding it from its report", folder.name)
        return None
    try:
        rows = [json.loads(line) for line in files["chunks.jsonl"].decode("utf-8").splitlines() if line.strip()]
        part = Part([Chunk.from_dict(r["chunk"]) for r in rows], np.load(io.BytesIO(files["chunks.npy"])),
                    np.load(io.BytesIO(files["sentences.npy"])), [r["tokens"] for r in rows],
                    files[DOCUMENT_TEXT].decode("utf-8"))
    except (ValueError, KeyError, TypeError):
        return None
    n_sentences = sum(len(c.sentences) for c in part.chunks)
    if not part.text or len(part.chunk_vectors) != len(part.chunks) or len(part.sentence_vectors) != n_sentences:
        return None
    return part, sha256


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _write_part(parts_dir: Path, key: str, part: Part) -> str:
    """Write a part under ``key`` and record its hash in the journal; return the hash."""
    files = {
        "chunks.jsonl": "".join(json.dumps({"chunk": c.to_dict(), "tokens": t}, ensure_ascii=False) + "\n"
                                for c, t in zip(part.chunks, part.tokens)).encode("utf-8"),
        "chunks.npy": _npy_bytes(part.chunk_vectors),
        "sentences.npy": _npy_bytes(part.sentence_vectors),
        DOCUMENT_TEXT: part.text.encode("utf-8"),
    }
    tmp = parts_dir / f".tmp-{key}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    for name, data in files.items():
        write_durably(tmp / name, data)
    try:
        os.rename(tmp, parts_dir / key)
    except OSError:  # another ingest finished the same part first: same content
        shutil.rmtree(tmp, ignore_errors=True)
    sha256 = _part_digest(files)
    with open(parts_dir.parent / PARTS_JOURNAL, "a", encoding="utf-8") as journal:  # one short line: appended whole
        journal.write(f"{key} {sha256}\n")
        journal.flush()
        os.fsync(journal.fileno())
    return sha256


def _recorded_parts(index_dir: Path) -> dict[str, str]:
    """part key -> hash recorded when it was written: the journal, then the live manifest."""
    recorded: dict[str, str] = {}
    try:
        for line in (index_dir / PARTS_JOURNAL).read_text(encoding="utf-8").splitlines():
            key, _, sha256 = line.partition(" ")
            if key and sha256:
                recorded[key] = sha256.strip()
    except OSError:
        pass
    try:
        recorded.update({s["part"]: s["part_sha256"] for s in read_manifest(index_dir).sources
                         if s.get("part") and s.get("part_sha256")})
    except Exception:  # noqa: BLE001 - no index yet, or a damaged one: nothing more is trusted
        pass
    return recorded


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


def _previous_parts(index_dir: Path) -> dict[str, str]:
    """source -> part key of the live version, to reuse vectors of a changed report's unchanged text."""
    try:
        return {s["source"]: s["part"] for s in read_manifest(index_dir).sources if s.get("part")}
    except Exception:  # no index yet, or a damaged one
        return {}


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
    previous = _previous_parts(index_dir)
    recorded = _recorded_parts(index_dir)
    files, refused = scan_reports(paths)
    for _, reason in refused:
        progress(f"skipped {reason}")
    sources: list[dict] = []
    result_parts: list[Part] = []
    skipped, parsed, reused = list(refused), [], []
    with ConverterProcess(limits) as converter:
        for done, path in enumerate(files, start=1):
            name = _source_name(path, root)
            stamp = file_stamp(path)  # before the hash: a file edited meanwhile then looks changed next time
            fingerprint = file_fingerprint(path)
            key = _part_key(name, fingerprint, chunker, embedder)
            found = _read_part(parts_dir / key, recorded.get(key))
            if found is not None:
                part, part_sha256 = found
                reused.append(name)
            else:
                try:
                    earlier = _read_part(parts_dir / previous[name], recorded.get(previous[name])) \
                        if name in previous else None
                    part = _make_part(path, root, embedder, chunker, earlier[0] if earlier else None, limits,
                                      converter)
                except ReportFileError as exc:
                    skipped.append((name, exc.message))
                    sources.append({"source": name, "sha256": fingerprint, "stamp": stamp, "status": "skipped",
                                    "reason": exc.message})
                    progress(f"skipped {exc.message}")
                    on_file(done, len(files), name)
                    continue
                part_sha256 = _write_part(parts_dir, key, part)
                parsed.append(name)
            first = part.chunks[0]
            sources.append({"source": name, "sha256": fingerprint, "stamp": stamp, "status": "indexed",
                            "title": first.doc_title,
                            "issuer": first.issuer, "year": first.year, "url": first.url,
                            "chunks": len(part.chunks), "part": key, "part_sha256": part_sha256})
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
    _prune_parts(parts_dir, {s["part"]: s["part_sha256"] for s in sources if s.get("part")})
    progress(f"wrote {version}")
    removed = sorted(set(previous) - {s["source"] for s in sources})
    return BuildResult(manifest, version, skipped, parsed, reused, removed)


def _prune_parts(parts_dir: Path, keep: dict[str, str]) -> None:
    """Drop the parts of removed or changed files (and leftovers of interrupted runs); the journal
    is rewritten with the kept parts' hashes."""
    for child in parts_dir.iterdir():
        if child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)
    journal = parts_dir.parent / f".{PARTS_JOURNAL}.{uuid.uuid4().hex[:6]}"
    write_durably(journal, "".join(f"{key} {sha256}\n" for key, sha256 in keep.items()))
    os.replace(journal, parts_dir.parent / PARTS_JOURNAL)


def document_text(index_dir: Path, source: dict) -> str:
    """The text a manifest source's citations point into (ReportFileError when its part is gone)."""
    try:
        return (index_dir / PARTS / source["part"] / DOCUMENT_TEXT).read_text(encoding="utf-8")
    except (KeyError, OSError):
        raise ReportFileError(f"The text of {source['source']} is missing from the index; run `reportqa ingest`.",
                              "索引中缺少该报告的原文，请运行 reportqa ingest 重新导入。") from None
