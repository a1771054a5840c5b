"""Ingest: report files into Documents, Chunks and a versioned index on disk."""
from .build import BuildResult, build_index, passage_text
from .chunker import ChunkerSettings, chunk_document
from .formats import page_of
from .loader import SUPPORTED_SUFFIXES, find_reports, load_report, read_sidecar
from .models import Chunk, Document, Paragraph, Span
from .store import Manifest, StoredIndex, load_index

__all__ = [
    "BuildResult", "build_index", "passage_text",
    "ChunkerSettings", "chunk_document",
    "page_of", "SUPPORTED_SUFFIXES", "find_reports", "load_report", "read_sidecar",
    "Chunk", "Document", "Paragraph", "Span",
    "Manifest", "StoredIndex", "load_index",
]
