"""Dataclasses that leave the retrieval package: hits, citations, answers."""
from __future__ import annotations

from dataclasses import dataclass, field

from ingest.models import Chunk

REFUSAL_MESSAGE = "抱歉，报告中没有找到与该问题相关的内容。"


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str = ""


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the scores it was fused from."""

    chunk: Chunk
    score: float  # reciprocal-rank-fusion score, or the reranker's when one ran; higher is better
    dense_score: float  # cosine similarity of question and passage
    bm25_score: float
    dense_rank: int | None  # 1-based rank in each list, None if outside it
    bm25_rank: int | None


def report_label(chunk: Chunk) -> str:
    """Which report a passage is from, as a reader sees it: 《title》 · 大连市 · 2023年 · 第2页."""
    parts = [f"《{chunk.doc_title}》" if chunk.doc_title else chunk.source]
    parts += [p for p in (chunk.issuer, f"{chunk.year}年" if chunk.year else None,
                          f"第{chunk.page}页" if chunk.page else None) if p]
    return " · ".join(parts)


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
            "section": self.chunk.section,
            "text": self.chunk.text,
            "quote": self.quote,
            "start": self.start,
            "end": self.end,
        }


@dataclass
class Answer:
    """What a user is shown: the answer text with [n] markers and its citations."""

    question: str
    text: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)  # sections worth reading after a refusal
    timings_ms: dict[str, float] = field(default_factory=dict)
    resolved_question: str = ""  # what was retrieved with, when a follow-up was joined to its context
    # (cosine, coverage) of the best sentence, which the refusal thresholds judged; None when no
    # sentence could answer at all (a year or place not in the report, no amount for 多少).
    strength: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        """The `reportqa ask --json` object, exactly."""
        return {
            "question": self.question,
            "answer": self.text,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "timings_ms": {"retrieve": round(self.timings_ms.get("retrieve", 0.0), 2),
                           "answer": round(self.timings_ms.get("answer", 0.0), 2)},
        }
