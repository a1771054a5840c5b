"""Errors a user can act on, each with an English (CLI) and Chinese (UI) message."""
from __future__ import annotations


class ReportQAError(Exception):
    """A problem the user can fix; never shown as a traceback."""

    def __init__(self, message: str, message_zh: str | None = None):
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh or message


class InvalidQuestion(ReportQAError):
    """The question cannot be answered as typed (empty, too long, no words)."""


class IndexMissing(ReportQAError):
    """No usable index on disk."""


class IndexMismatch(ReportQAError):
    """The index on disk was built from other sources, settings or embedder."""


class ReportFileError(ReportQAError):
    """A report file cannot be read (empty, not UTF-8, unsupported type)."""


class ModelUnavailable(ReportQAError):
    """An embedding or reranker model cannot be loaded offline."""


class VectorStoreUnavailable(ReportQAError):
    """The configured vector store (a Milvus server or Milvus Lite file) cannot be reached."""


class UnknownScope(ReportQAError):
    """A report, issuing body or year was asked for that no indexed report has."""

    def __init__(self, message: str, message_zh: str, field: str):
        super().__init__(message, message_zh)
        self.field = field  # "source", "issuer" or "year"
