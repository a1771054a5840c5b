"""Ingest: report files into Documents, Chunks and a versioned index on disk."""
from .build import BuildResult, build_index, passage_text
from .chunker import ChunkerSettings, chunk_document
from .loader import SUPPORTED_SUFFIXES, find_reports, load_report
from .models import Chunk, Document, Paragraph, Span
from .store import Manifest, StoredIndex, load_index

__all__ = [
    "BuildResult", "build_index", "passage_text",
    "ChunkerSettings", "chunk_document",
    "SUPPORTED_SUFFIXES", "find_reports", "load_report",
    "Chunk", "Document", "Paragraph", "Span",
    "Manifest", "StoredIndex", "load_index",
]
