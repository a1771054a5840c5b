"""Per-report parts of the index: one report's chunks, vectors, BM25 tokens and text, reused by later builds.

``write_part`` and ``read_part`` are one inverse pair. A part lives in
``index/parts/<key>/``, where the key hashes what it was made from (file,
sidecar, name, chunker, embedder) and the part format, so a change to any of
them makes a new part. Each part's bytes are hashed when it is written and the
hash recorded in ``index/parts.journal`` (and in the manifest); a part is read
back only when its bytes still hash to that, so a part edited on disk is
rebuilt from its report, never trusted.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import ReportFileError
from core.files import replace_atomically, write_durably
from core.types import Chunk, ReportInfo

logger = logging.getLogger(__name__)

PARTS = "parts"  # index/parts/<key>/: never a version
PARTS_JOURNAL = "parts.journal"  # "<part key> <sha256>" of each part as it was written
PART_FORMAT_VERSION = 1
DOCUMENT_TEXT = "document.txt"
PART_FILES = ("chunks.jsonl", "chunks.npy", "sentences.npy", DOCUMENT_TEXT)  # what a part's hash covers


@dataclass
class Part:
    """One report's share of the index."""

    chunks: list[Chunk]
    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray
    tokens: list[list[str]]  # BM25 tokens, one list per chunk
    text: str = ""  # the document text the chunks' offsets point into (converted, for .html/.docx/.pdf)


def part_key(made_from: list) -> str:
    """The folder name of the part made from ``made_from`` (JSON-able: name, fingerprint, settings)."""
    described = json.dumps([PART_FORMAT_VERSION, *made_from], ensure_ascii=False)
    return hashlib.sha256(described.encode()).hexdigest()[:24]


def _digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in PART_FILES:
        digest.update(name.encode() + b"\0" + str(len(files[name])).encode() + b"\0" + files[name])
    return digest.hexdigest()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_part(parts_dir: Path, key: str, part: Part) -> str:
    """Write a part under ``key`` (to a temporary folder, then renamed) and journal its hash; return the hash."""
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
    sha256 = _digest(files)
    with open(parts_dir.parent / PARTS_JOURNAL, "a", encoding="utf-8") as journal:  # one short line: appended whole
        journal.write(f"{key} {sha256}\n")
        journal.flush()
        os.fsync(journal.fileno())
    return sha256


def read_part(folder: Path, expected_sha256: str | None) -> tuple[Part, str] | None:
    """A finished part and its hash, or None when it is missing, unreadable, or not what was written
    (its hash is not ``expected_sha256``, or none was recorded): it is then rebuilt from its report."""
    if expected_sha256 is None:
        return None
    try:
        files = {name: (folder / name).read_bytes() for name in PART_FILES}
    except OSError:
        return None
    sha256 = _digest(files)
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


def recorded_hashes(index_dir: Path, manifest_sources=()) -> dict[str, str]:
    """part key -> hash recorded when it was written: the journal, then the live manifest's ``sources``."""
    recorded: dict[str, str] = {}
    try:
        for line in (index_dir / PARTS_JOURNAL).read_text(encoding="utf-8").splitlines():
            key, _, sha256 = line.partition(" ")
            if key and sha256:
                recorded[key] = sha256.strip()
    except OSError:
        pass
    recorded.update({s.part: s.part_sha256 for s in manifest_sources if s.part and s.part_sha256})
    return recorded


def prune_parts(parts_dir: Path, keep: dict[str, str]) -> None:
    """Drop the parts not in ``keep`` (key -> hash: removed or changed reports, leftovers of interrupted
    runs); the journal is rewritten with the kept parts' hashes."""
    for child in parts_dir.iterdir():
        if child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)
    replace_atomically(parts_dir.parent / PARTS_JOURNAL, "".join(f"{key} {sha256}\n" for key, sha256 in keep.items()))


def report_text(index_dir: Path, report: ReportInfo) -> str:
    """The text a report's citations point into (its part's document.txt); ReportFileError when its part is gone."""
    try:
        return (index_dir / PARTS / report.part / DOCUMENT_TEXT).read_text(encoding="utf-8")
    except (TypeError, OSError):
        raise ReportFileError(f"The text of {report.source} is missing from the index; run `reportqa ingest`.",
                              "索引中缺少该报告的原文，请运行 reportqa ingest 重新导入。") from None
