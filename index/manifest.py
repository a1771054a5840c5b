"""What an index version was built from: the manifest, and how it differs from what is wanted now."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.types import ReportInfo

# 2: report metadata on chunks, per-report parts; 3: columnar chunk table, int8 sentence vectors kept once
# (parts drop theirs), passage vectors made from sentence vectors, float16 HNSW, file sizes in the manifest
FORMAT_VERSION = 3


@dataclass
class Manifest:
    """What an index was built from; loading compares it with what is wanted."""

    embedder: dict  # {"name": str, "dim": int}
    chunker: dict
    sources: list[ReportInfo]  # every report file seen, indexed or skipped
    chunk_count: int
    sentence_count: int
    format_version: int = FORMAT_VERSION
    # {"kind": "faiss", "index": "flat"|"hnsw"} or {"kind": "milvus", "uri", "collection"}; older indexes were flat
    vector_store: dict = field(default_factory=lambda: {"kind": "faiss", "index": "flat"})
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    files: dict[str, int] = field(default_factory=dict)  # every file of the version folder: its size in bytes

    def to_dict(self) -> dict:
        return {**self.__dict__, "sources": [s.to_dict() for s in self.sources]}

    @classmethod
    def from_dict(cls, row: dict) -> "Manifest":
        values = {k: row[k] for k in cls.__dataclass_fields__ if k in row}
        values["sources"] = [ReportInfo.from_dict(s) for s in values.get("sources", [])]
        return cls(**values)

    def indexed(self) -> list[ReportInfo]:
        """The reports that went in (not the skipped files)."""
        return [s for s in self.sources if s.status == "indexed"]

    def source_hashes(self) -> dict[str, str]:
        return {s.source: s.sha256 for s in self.sources}


def embedder_info(embedder) -> dict:
    """What the manifest records of an embedder (core.embedding.Embedder)."""
    return {"name": embedder.name, "dim": embedder.dim}


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
