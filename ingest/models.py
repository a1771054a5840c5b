"""Dataclasses that leave the ingest package: a parsed report and its chunks."""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import NamedTuple

SECTION_SEPARATOR = " › "


class Span(NamedTuple):
    """A half-open character range [start, end) in a source file.

    A named tuple, not a dataclass: an index of 10,000 reports holds 850k of
    them, and a tuple is built ten times faster when the index loads.
    """

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
    context: str = ""  # a table row's caption and header row (ingest.tables); "" for prose


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
    # A table row's caption and column headers, read with the text by the embedder and BM25
    # (ingest.build.passage_text) and shown nowhere; "" for prose and in indexes built before it.
    context: str = ""

    @property
    def section(self) -> str:
        """The section path as a person reads it, e.g. 一、… › (一)…"""
        return SECTION_SEPARATOR.join(self.section_path) if self.section_path else self.doc_title

    def sentence_text(self, span: Span) -> str:
        return self.text[span.start - self.start : span.end - self.start]

    def to_dict(self) -> dict:
        row = {f: getattr(self, f) for f in _CHUNK_ORDER}
        row["section_path"] = list(self.section_path)
        row["sentences"] = [{"start": s.start, "end": s.end} for s in self.sentences]
        return row

    @classmethod
    def from_dict(cls, row: dict) -> "Chunk":
        """A chunk from ``to_dict``'s output; fields a row lacks (older indexes) take their defaults."""
        unknown, missing = row.keys() - _CHUNK_FIELDS, _CHUNK_FIELDS - _CHUNK_DEFAULTS.keys() - row.keys()
        if unknown or missing:
            raise TypeError(f"chunk row: unknown fields {sorted(unknown)}, missing {sorted(missing)}")
        # Filled in directly rather than through the frozen __init__: 200k chunks load in
        # a third less time at start-up (rows come from our own writer, in to_dict's shape).
        chunk = object.__new__(cls)
        values = chunk.__dict__
        values.update(_CHUNK_DEFAULTS)
        values.update(row)
        values["section_path"] = tuple(row["section_path"])
        values["sentences"] = tuple(Span(s["start"], s["end"]) for s in row.get("sentences", ()))
        return chunk


_CHUNK_ORDER = tuple(f.name for f in fields(Chunk))
_CHUNK_FIELDS = set(_CHUNK_ORDER)
_CHUNK_DEFAULTS = {f.name: f.default for f in fields(Chunk) if f.default is not MISSING}
