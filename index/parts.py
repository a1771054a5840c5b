"""Per-report parts of the index: what one report contributes, reused by later builds without parsing or
embedding it again.

A part lives in ``index/parts/<key>/``, where the key hashes what it was made
from (file, sidecar, name, chunker, embedder, parser) and the part format, so a
change to any of them makes a new part. It holds:

    chunks.jsonl       a header (the report's title, issuer, year, url; its passage heads), then one
                       line a chunk: id, section path, offsets, sentence spans, BM25 tokens
    document.txt.gz    the text the chunks' offsets point into (their texts are cut from it), gzipped
    headings.npy       float16: one vector per passage head (section path and table context)
    sentences.npy,     int8 codes and float32 scales: one vector per sentence (index.quantized) --
    sentence_scales.npy  only until an index version holds them (see below)

One copy of each vector: once a version that includes the part is live, the
part's sentence vectors are dropped (``absorb_parts``) and read back from that
version when the part is reused. Passage vectors are never stored in a part:
they are made from its sentence and head vectors (ingest.build).

Each part's content is hashed when it is written, wherever its sentence
vectors are later kept, and the hash recorded in ``index/parts.journal`` (and
in the manifest); a part is reused only when its bytes, with the sentence
vectors it is given back, still hash to that, so a part (or a version's
sentence vectors) edited on disk is rebuilt from its report, never trusted.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import ReportFileError
from core.files import replace_atomically, write_durably
from core.types import Chunk, ReportInfo, Span

from .quantized import QuantizedVectors
from .table import save_npy

logger = logging.getLogger(__name__)

PARTS = "parts"  # index/parts/<key>/: never a version
PARTS_JOURNAL = "parts.journal"  # "<part key> <sha256>" of each part as it was written
PART_FORMAT_VERSION = 2  # 2: text cut from document.txt, head and int8 sentence vectors, no passage vectors
CHUNKS_FILE = "chunks.jsonl"
DOCUMENT_TEXT = "document.txt.gz"  # gzip: a third of the size; read only to rebuild and for the 报告原文 tab
HEADINGS_FILE = "headings.npy"

SentenceSource = Callable[[], "QuantizedVectors | None"]  # a part's sentence vectors held elsewhere (a version)


@dataclass
class Part:
    """One report's share of the index."""

    chunks: list[Chunk]
    sentence_vectors: QuantizedVectors  # one per sentence of the chunks, in order
    heads: list[str]  # the distinct passage heads (ingest.build.passage_head), in order of first use
    head_vectors: np.ndarray  # float16 (len(heads), dim)
    tokens: list[list[str]]  # BM25 tokens, one list per chunk
    text: str = ""  # the document text the chunks' offsets point into (converted, for .html/.docx/.pdf)

    @property
    def sentence_count(self) -> int:
        return sum(len(c.sentences) for c in self.chunks)


def part_key(made_from: list) -> str:
    """The folder name of the part made from ``made_from`` (JSON-able: name, fingerprint, settings)."""
    described = json.dumps([PART_FORMAT_VERSION, *made_from], ensure_ascii=False)
    return hashlib.sha256(described.encode()).hexdigest()[:24]


# ---------------------------------------------------------------- the bytes of a part, and their hash

def _chunk_rows(part: Part) -> bytes:
    first = part.chunks[0] if part.chunks else None
    header = {"report": {"source": first.source, "doc_title": first.doc_title, "issuer": first.issuer,
                         "year": first.year, "url": first.url} if first else None, "heads": part.heads}
    lines = [json.dumps(header, ensure_ascii=False)]
    for chunk, tokens in zip(part.chunks, part.tokens):
        lines.append(json.dumps({
            "chunk_id": chunk.chunk_id, "section_path": list(chunk.section_path), "paragraph": chunk.paragraph,
            "start": chunk.start, "end": chunk.end, "sentences": [list(s) for s in chunk.sentences],
            "page": chunk.page, "context": chunk.context,
            # Tokens never hold a space (jieba splits on them): one string is a third of a JSON list.
            "tokens": " ".join(tokens) if not any(" " in t for t in tokens) else tokens,
        }, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _digest(rows: bytes, text: bytes, head_vectors: np.ndarray, sentences: QuantizedVectors) -> str:
    codes, scales = sentences.to_bytes()
    heads = np.ascontiguousarray(head_vectors, dtype="<f2")
    digest = hashlib.sha256()
    for name, data in ((CHUNKS_FILE, rows), (DOCUMENT_TEXT, text), (HEADINGS_FILE, heads.tobytes()),
                       ("sentence codes", codes), ("sentence scales", scales)):
        digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    digest.update(str(heads.shape).encode() + str(sentences.shape).encode())
    return digest.hexdigest()


def write_part(parts_dir: Path, key: str, part: Part) -> str:
    """Write a part under ``key`` (to a temporary folder, then renamed) and journal its hash; return the hash."""
    rows, text = _chunk_rows(part), part.text.encode("utf-8")
    head_vectors = np.ascontiguousarray(part.head_vectors, dtype="<f2")
    tmp = parts_dir / f".tmp-{key}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    write_durably(tmp / CHUNKS_FILE, rows)
    write_durably(tmp / DOCUMENT_TEXT, gzip.compress(text, compresslevel=6, mtime=0))
    save_npy(tmp / HEADINGS_FILE, head_vectors)
    part.sentence_vectors.save(tmp)
    try:
        os.rename(tmp, parts_dir / key)
    except OSError:  # another ingest finished the same part first: same content
        shutil.rmtree(tmp, ignore_errors=True)
    sha256 = _digest(rows, text, head_vectors, part.sentence_vectors)
    with open(parts_dir.parent / PARTS_JOURNAL, "a", encoding="utf-8") as journal:  # one short line: appended whole
        journal.write(f"{key} {sha256}\n")
        journal.flush()
        os.fsync(journal.fileno())
    return sha256


def _parse_rows(rows: bytes, text: str) -> tuple[list[Chunk], list[list[str]], list[str]]:
    lines = rows.decode("utf-8").splitlines()
    header = json.loads(lines[0])
    report = header["report"] or {}
    chunks, tokens = [], []
    for line in lines[1:]:
        row = json.loads(line)
        start, end = row["start"], row["end"]
        chunk = object.__new__(Chunk)  # every field, as Chunk.from_dict fills them
        chunk.__dict__.update(
            chunk_id=row["chunk_id"], source=report["source"], doc_title=report["doc_title"],
            section_path=tuple(row["section_path"]), paragraph=row["paragraph"], start=start, end=end,
            text=text[start:end], sentences=tuple(Span(s, e) for s, e in row["sentences"]), page=row["page"],
            issuer=report["issuer"], year=report["year"], url=report["url"], context=row["context"])
        chunks.append(chunk)
        words = row["tokens"]
        tokens.append(words.split(" ") if isinstance(words, str) else list(words))
    return chunks, tokens, list(header["heads"])


def read_part(folder: Path, expected_sha256: str | None, held_elsewhere: SentenceSource = lambda: None
              ) -> tuple[Part, str] | None:
    """A finished part and its hash, or None when it is missing, unreadable, or not what was written
    (its hash is not ``expected_sha256``, or none was recorded): it is then rebuilt from its report.

    ``held_elsewhere``: the part's sentence vectors when a version holds them instead of the part.
    """
    if expected_sha256 is None:
        return None
    try:
        rows, text = (folder / CHUNKS_FILE).read_bytes(), gzip.decompress((folder / DOCUMENT_TEXT).read_bytes())
        head_vectors = np.load(folder / HEADINGS_FILE, allow_pickle=False)
        sentences = QuantizedVectors.load(folder, mmap=False) if QuantizedVectors.exists(folder) else held_elsewhere()
    except (OSError, ValueError, EOFError, zlib.error):  # gzip raises BadGzipFile (an OSError) or these
        return None
    if sentences is None:
        return None
    sha256 = _digest(rows, text, head_vectors, sentences)
    if sha256 != expected_sha256:
        logger.warning("index part %s differs from what was written; rebuilding it from its report", folder.name)
        return None
    try:
        document = text.decode("utf-8")
        chunks, tokens, heads = _parse_rows(rows, document)
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    part = Part(chunks, sentences, heads, head_vectors, tokens, document)
    if not chunks or len(sentences) != part.sentence_count or len(head_vectors) != len(heads):
        return None
    return part, sha256


def absorb_parts(parts_dir: Path, keys) -> None:
    """Drop the sentence vectors of these parts: the live version holds them now (one copy of each)."""
    for key in keys:
        QuantizedVectors.remove(parts_dir / key)


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
    """The text a report's citations point into (its part's document text); ReportFileError when its part is gone."""
    try:
        return gzip.decompress((index_dir / PARTS / report.part / DOCUMENT_TEXT).read_bytes()).decode("utf-8")
    except (TypeError, OSError, EOFError, zlib.error, UnicodeDecodeError):
        raise ReportFileError(f"The text of {report.source} is missing from the index; run `reportqa ingest`.",
                              "索引中缺少该报告的原文，请运行 reportqa ingest 重新导入。") from None
