"""The types that cross packages: a parsed report and its chunks, a report's record, a scope,
a conversation turn, retrieved hits, citations and the answer.

Plain frozen dataclasses (a ``NamedTuple`` for ``Span``, which an index of
10,000 reports holds 850k of). Nothing here does I/O.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import NamedTuple

SECTION_SEPARATOR = " › "
REFUSAL_MESSAGE = "抱歉，报告中没有找到与该问题相关的内容。"


# ---------------------------------------------------------------- a report and its chunks

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
    ocr: tuple[tuple[int, int, float], ...] = ()  # scanned PDF pages: (start, end, confidence) of each OCR'd line


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
    # A table row's caption and column headers, read with the text by the embedder, BM25 and the
    # answerer (passage_text) and shown nowhere; "" for prose and in indexes built before it.
    context: str = ""
    # Read by OCR from a scanned page: the lowest confidence (0-1) of its lines; None for a text layer
    # (and in indexes built before OCR).
    ocr: float | None = None

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


def passage_text(chunk: Chunk) -> str:
    """What the embedder, BM25 and the reranker read: the section path gives a short passage its topic, and a
    table row its caption and column headers (``Chunk.context``), so ``罚款 | 0`` says which column."""
    head = [part for part in (chunk.section if chunk.section_path else "", chunk.context) if part]
    return "\n".join([*head, chunk.text])


def report_label(chunk: Chunk) -> str:
    """Which report a passage is from, as a reader sees it: 《title》 · 大连市 · 2023年 · 第2页."""
    parts = [f"《{chunk.doc_title}》" if chunk.doc_title else chunk.source]
    parts += [p for p in (chunk.issuer, f"{chunk.year}年" if chunk.year else None,
                          f"第{chunk.page}页" if chunk.page else None) if p]
    return " · ".join(parts)


# ---------------------------------------------------------------- the reports an index holds

@dataclass(frozen=True)
class ReportInfo:
    """One report file as the index manifest records it: its metadata, and how it went in.

    ``status`` is "indexed" or "skipped" (then ``reason`` says why). ``sha256`` and
    ``stamp`` fingerprint the file and its sidecar; ``part`` and ``part_sha256``
    name its per-report part and the hash it was written with.
    """

    source: str
    status: str = "indexed"
    title: str | None = None
    issuer: str | None = None
    year: int | None = None
    url: str | None = None
    chunks: int = 0
    sha256: str = ""
    stamp: tuple[int, ...] = ()
    part: str | None = None
    part_sha256: str | None = None
    reason: str | None = None

    @property
    def display_title(self) -> str:
        """The title, or the file name when the report has none."""
        return self.title or self.source

    def to_dict(self) -> dict:
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["stamp"] = list(self.stamp)
        return {k: v for k, v in row.items() if v is not None}

    @classmethod
    def from_dict(cls, row: dict) -> "ReportInfo":
        known = cls.__dataclass_fields__  # not fields(cls): a manifest of 10,000 reports is read at every start
        values = {k: v for k, v in row.items() if k in known}
        values["stamp"] = tuple(values.get("stamp") or ())
        return cls(**values)


@dataclass(frozen=True)
class Scope:
    """Which reports a question is asked of; empty fields do not narrow.

    Within a field any value matches (OR); across fields all must match (AND):
    ``Scope(issuers=("大连市人民政府",), years=(2023, 2024))``.
    """

    sources: tuple[str, ...] = ()
    issuers: tuple[str, ...] = ()
    years: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.sources or self.issuers or self.years)


# ---------------------------------------------------------------- a conversation and its answers

@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation: the question and the answer text shown."""

    question: str
    answer: str = ""

    @classmethod
    def of(cls, value: "Turn | dict") -> "Turn":
        """A Turn from a Turn or a {"question", "answer"} mapping (the API's, CLI's and stores' shape)."""
        if isinstance(value, Turn):
            return value
        return cls(str(value.get("question", "")), str(value.get("answer", "")))

    def to_dict(self) -> dict:
        return {"question": self.question, "answer": self.answer}


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the scores it was fused from."""

    chunk: Chunk
    score: float  # reciprocal-rank-fusion score, or the reranker's when one ran; higher is better
    dense_score: float  # cosine similarity of question and passage
    bm25_score: float
    dense_rank: int | None  # 1-based rank in each list, None if outside it
    bm25_rank: int | None


@dataclass(frozen=True)
class Citation:
    """Source [n] of an answer: the passage and the sentence that supports the claim."""

    n: int
    chunk: Chunk
    quote: str  # the supporting sentence, exactly as in the source file
    start: int  # offsets of the quote in the source file
    end: int

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "chunk_id": self.chunk.chunk_id,
            "source": self.chunk.source,
            "title": self.chunk.doc_title,
            "issuer": self.chunk.issuer,
            "year": self.chunk.year,
            "url": self.chunk.url,
            "page": self.chunk.page,
            "ocr": self.chunk.ocr,
            "section": self.chunk.section,
            "text": self.chunk.text,
            "quote": self.quote,
            "start": self.start,
            "end": self.end,
        }


REPLIES = ("answer", "related", "refusal")


@dataclass(frozen=True)
class Answer:
    """What a user is shown: the answer text with [n] markers and its citations. Built once, never changed:
    a later stage makes a new one with ``dataclasses.replace``.

    ``reply`` is the kind of reply: "answer" (a direct answer the report states), "related" (the report
    covers the topic but not what was asked: its relevant passages, labelled 报告中的相关内容) or
    "refusal" (the report does not cover it). ``confidence``: the calibrated probability that a direct
    answer is right (None when no model judged it).
    """

    question: str
    text: str
    reply: str
    citations: list[Citation] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)  # sections worth reading after a refusal
    timings_ms: dict[str, float] = field(default_factory=dict)
    resolved_question: str = ""  # what was retrieved with, when a follow-up was joined to its context
    # (cosine, coverage) of the best sentence, which the refusal thresholds judged; None when no
    # sentence could answer at all (a year or place not in the report, no amount for 多少).
    strength: tuple[float, float] | None = None
    # The sentence the answerer judged best, whether or not it was shown (the evaluation's sentence stage).
    best_quote: str = ""
    confidence: float | None = None
    signals: dict[str, float] = field(default_factory=dict)  # what the reply policy judged (evaluation only)

    def __post_init__(self) -> None:
        if self.reply not in REPLIES:
            raise ValueError(f"reply must be one of {REPLIES}, got {self.reply!r}")

    @property
    def refused(self) -> bool:
        return self.reply == "refusal"

    def to_dict(self) -> dict:
        """The `reportqa ask --json` object, exactly."""
        return {
            "question": self.question,
            "answer": self.text,
            "reply": self.reply,
            "refused": self.refused,
            "confidence": None if self.confidence is None else round(self.confidence, 3),
            "citations": [c.to_dict() for c in self.citations],
            "timings_ms": {"retrieve": round(self.timings_ms.get("retrieve", 0.0), 2),
                           "answer": round(self.timings_ms.get("answer", 0.0), 2)},
        }
