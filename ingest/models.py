"""Dataclasses that leave the ingest package: a parsed report and its chunks."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

SECTION_SEPARATOR = " › "


@dataclass(frozen=True)
class Span:
    """A half-open character range [start, end) in a source file."""

    start: int
    end: int


@dataclass(frozen=True)
class Paragraph:
    """One body paragraph of a report and where it sits in the document."""

    number: int  # 1-based, counting body paragraphs only (not the title or headings)
    section_path: tuple[str, ...]
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Document:
    """A report parsed into its title, headings and body paragraphs."""

    source: str  # file name, relative to the folder it was ingested from
    title: str
    text: str  # the whole file as decoded, offsets point into this
    sha256: str
    headings: tuple[tuple[str, ...], ...]  # every section path, in document order
    paragraphs: tuple[Paragraph, ...]
    pages: tuple[tuple[int, int], ...] = ()  # PDF: (offset in text, page number) where each page starts
    issuer: str | None = None  # issuing body, e.g. 大连市人民政府
    year: int | None = None  # the year the report covers
    url: str | None = None  # where the report was published


@dataclass(frozen=True)
class Chunk:
    """A passage of whole sentences that never crosses a section or paragraph."""

    chunk_id: str
    source: str
    doc_title: str
    section_path: tuple[str, ...]
    paragraph: int
    start: int
    end: int
    text: str
    sentences: tuple[Span, ...] = field(default=())  # absolute offsets of each sentence
    page: int | None = None  # PDF page the chunk starts on
    issuer: str | None = None  # the report's metadata, repeated on each chunk so a
    year: int | None = None  # citation and a narrowed search need no other table
    url: str | None = None

    @property
    def section(self) -> str:
        """The section path as a person reads it, e.g. 一、… › (一)…"""
        return SECTION_SEPARATOR.join(self.section_path) if self.section_path else self.doc_title

    def sentence_text(self, span: Span) -> str:
        return self.text[span.start - self.start : span.end - self.start]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> "Chunk":
        row = dict(row)
        row["section_path"] = tuple(row["section_path"])
        row["sentences"] = tuple(Span(**s) for s in row.get("sentences", ()))
        return cls(**row)
