"""Dataclasses the evaluation passes around: passages, one system's response, one scored result."""
from __future__ import annotations

from dataclasses import dataclass, field

from .dataset import EvalItem


@dataclass(frozen=True)
class Passage:
    """A stretch of a report: a retrieved or cited chunk, or an evidence quote.

    Offsets are into the source file as decoded; None when the text could not
    be located (then only text containment counts).
    """

    text: str
    source: str = ""
    start: int | None = None
    end: int | None = None

    def to_dict(self) -> dict:
        return {"source": self.source, "start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class CitedPassage:
    """A passage an answer cites, with the sentence it quotes from it."""

    passage: Passage
    quote: str

    def to_dict(self) -> dict:
        return {**self.passage.to_dict(), "quote": self.quote}


@dataclass
class Response:
    """What one system answered to one question, and how long it took."""

    answer: str
    refused: bool
    citations: list[CitedPassage] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str | None = None  # why the system rejected the question, when it did
    resolved_question: str = ""  # what a follow-up was retrieved with, when the system rewrote it


@dataclass
class ItemResult:
    """One item run through one system, with its per-item metrics."""

    item: EvalItem
    system: str
    response: Response
    ranking: list[Passage]  # the system's top-10 retrieval for the question
    metrics: dict[str, float | None]  # None where a metric does not apply to this item
    missing_facts: list[str] = field(default_factory=list)
    ungrounded: list[str] = field(default_factory=list)  # numbers and 《titles》 no cited passage holds

    def to_row(self) -> dict:
        """One line of results.jsonl."""
        item, response = self.item, self.response
        return {
            "id": item.id,
            "system": self.system,
            "category": item.category,
            "answerable": item.answerable,
            "question": item.question,
            "resolved_question": response.resolved_question,
            "answer": response.answer,
            "refused": response.refused,
            "error": response.error,
            "citations": [c.to_dict() for c in response.citations],
            "retrieved": [{"source": p.source, "start": p.start, "end": p.end} for p in self.ranking],
            **{name: (round(value, 4) if value is not None else None) for name, value in self.metrics.items()},
            "missing_facts": self.missing_facts,
            "ungrounded": self.ungrounded,
        }
