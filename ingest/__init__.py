"""Ingest: report files into Documents and Chunks, embedded and written as an index version (see ``index``)."""
from .build import BuildResult, build_index
from .chunker import ChunkerSettings, chunk_document
from .formats import ParseLimits, page_of
from .loader import SUPPORTED_SUFFIXES, find_reports, load_report, read_sidecar, scan_reports

__all__ = [
    "BuildResult", "build_index",
    "ChunkerSettings", "chunk_document",
    "ParseLimits", "page_of", "SUPPORTED_SUFFIXES", "find_reports", "load_report", "read_sidecar", "scan_reports",
]
