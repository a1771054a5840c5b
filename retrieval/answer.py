"""The extractive, grounded answerer: candidates → sentence selection → verification → reply policy.

No text is generated: every sentence of an answer is a sentence of a cited
passage, so every number and 《title》 in it appears in its citation. The stages:

1. ``retrieval.candidates``: every sentence of the top passages, with its signals;
2. selection: a fitted model (``retrieval.model``) scores how likely each is the sentence that answers;
3. ``retrieval.verify``: does it state the year, place and kind of amount asked;
4. ``retrieval.policy``: a direct answer, the report's related passages, or a refusal.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.text import ASKS
from core.types import Answer, Citation, Hit
from index.store import StoredIndex

from .candidates import Candidate, Coverage, gather
from .model import HEURISTIC, AnswerModel
from .policy import Decision, decide, distinct, question_signals, refusal_text, related_intro
from .question import Asked, read_question
from .verify import QUANTITY, states_unit

SUGGEST_COVERAGE = 0.5  # share of the question's topic words (those the reports use) a suggested section holds
_OPEN_BRACKETS, _CLOSE_BRACKETS = "“‘《(（「『", "”’》)）」』"


@dataclass(frozen=True)
class AnswerSettings:
    """How many passages' sentences are weighed, and how many sentences an answer quotes."""

    candidate_hits: int = 5
    max_sentences: int = 3
    follow_ratio: float = 0.8  # extra sentences must score at least this share of the best's score
    max_list_sentences: int = 8  # for 哪些/打算/不足 questions, whose answer is a list
    list_ratio: float = 0.5
    max_suggestions: int = 3


@dataclass
class Trace:
    """What the answerer saw and decided for one question (the evaluation reads it, ``reportqa train`` fits on it)."""

    asked: Asked
    candidates: list[Candidate]  # ranked, best first
    signals: dict[str, float]
    decision: Decision | None = None
    hits: list[Hit] = field(default_factory=list)


class ExtractiveAnswerer:
    """Scores the sentences of the top hits; answers with the best ones, shows related ones, or refuses."""

    def __init__(self, index: StoredIndex, settings: AnswerSettings = AnswerSettings(),
                 model: AnswerModel = HEURISTIC):
        self.index = index
        self.settings = settings
        self.model = model
        # chunk id -> row of its first sentence, read from the table's columns: walking index.chunks would
        # build every chunk (they are made when read; index.table).
        self._row_of_chunk = index.sentence_start
        self.coverage = Coverage(index.bm25, len(index.chunks))

    def warm_up(self) -> None:
        """Load jieba's dictionaries now, not on a citizen's first question."""
        read_question("预热")

    def trace(self, question: str, hits: list[Hit], query_vector: np.ndarray, asked: str | None = None) -> Trace:
        """Every stage for ``question`` up to the decision. ``asked``: the user's own words when ``question``
        is a follow-up joined to its context; the kind of answer wanted comes from them when they ask one."""
        # 那2022年呢？ asks nothing of its own, so it keeps the previous question's kind.
        kind_from = asked if asked is not None and ASKS.search(asked) else None
        report_year = hits[0].chunk.year if hits else None
        wanted = read_question(question, kind_from, report_year)
        weights = self.coverage.weights(wanted.terms)
        candidates = gather(hits, query_vector, wanted, weights, self.index.sentence_vectors, self._row_of_chunk,
                            self.settings.candidate_hits)
        for cand in candidates:
            cand.score = self.model.selection.prob(cand.features)
        candidates.sort(key=lambda c: -c.score)
        verified = [c for c in candidates if c.verified]
        total = sum(weights.values())
        missing = sum(w for t, w in weights.items() if self.coverage.doc_freq(t) == 0) / total if total else 0.0
        signals = question_signals(candidates, verified, missing, wanted.wants_quantity, wanted.wants_list)
        trace = Trace(wanted, candidates, signals, hits=hits)
        trace.decision = decide(self.model, candidates, signals)
        return trace

    def answer(self, question: str, hits: list[Hit], query_vector: np.ndarray, asked: str | None = None) -> Answer:
        """Answer ``question`` from ``hits``: directly, with related passages, or a refusal."""
        trace = self.trace(question, hits, query_vector, asked)
        decision = trace.decision
        best_quote = decision.best.text if decision.best else ""
        common = dict(question=question, confidence=decision.confidence, best_quote=best_quote,
                      signals={**trace.signals, "covered": decision.covered})
        if decision.reply == "refusal":
            return Answer(text=refusal_text(decision), reply="refusal", suggestions=self.suggestions(trace),
                          **common)
        if decision.reply == "related":
            citations = _cite(list(decision.related))
            lines = [related_intro(decision)] + [f"{c.quote}[{c.n}]" for c in citations]
            return Answer(text="\n".join(lines), reply="related", citations=citations, **common)
        chosen = self._select([c for c in trace.candidates if c.verified], trace.asked)
        # Lead with the most direct sentence; the rest read best in document order.
        chosen = chosen[:1] + sorted(chosen[1:], key=lambda c: (c.chunk.source, c.span.start))
        citations = _cite(chosen)
        lines = [f"{c.quote}[{c.n}]" for c in citations]
        wanted = trace.asked
        # A follow-up's own words (满意率多少？) pick the clause; the joined question found the sentence.
        focus = self.coverage.weights(read_question(asked).terms) if asked and asked != question else None
        lead = self.lead_clause(chosen[0], wanted, focus) if wanted.wants_precise and not wanted.wants_list else ""
        if lead and lead != citations[0].quote:
            # The direct answer first, the sentence that supports it right under it.
            lines[0] = f"{lead}[1]\n原文：“{citations[0].quote}”"
        return Answer(text="\n".join(lines), reply="answer", citations=citations, **common)

    def lead_clause(self, best: Candidate, wanted: Asked, focus: dict[str, float] | None = None) -> str:
        """The clause of the best sentence that answers a precise question: 全市建成便民服务站1726个.

        The sentence is cut at commas and semicolons outside quotes, brackets
        and 《titles》; the clause stating the amount in the unit asked (增长多少:
        the percentage) and with most of the question's words wins. The whole
        sentence is kept when it has one clause or no clause matches.
        """
        clauses = split_clauses(best.text)
        if len(clauses) < 2:
            return best.text
        weights = self.coverage.weights(wanted.terms)
        focus = focus or weights
        title = best.chunk.doc_title

        def rank(index: int) -> tuple:
            clause = clauses[index]
            has_amount = bool(QUANTITY.search(clause)) if wanted.wants_quantity else True
            has_unit = states_unit(wanted.unit_pattern, clause) if wanted.unit_pattern else True
            return (has_amount, has_unit, Coverage.share(focus, clause, title), Coverage.share(weights, clause, title),
                    -index)

        index = max(range(len(clauses)), key=rank)
        if Coverage.share(weights, clauses[index], title) == 0:
            return best.text
        return clauses[index] + "。"

    def _select(self, verified: list[Candidate], wanted: Asked) -> list[Candidate]:
        """The best sentence, then those close to it: a few for a fact, a list for 哪些."""
        s = self.settings
        best = verified[0]
        limit, ratio = (s.max_list_sentences, s.list_ratio) if wanted.wants_list else (s.max_sentences, s.follow_ratio)

        def belongs(cand: Candidate) -> bool:
            same_paragraph = (cand.chunk.source, cand.chunk.paragraph) == (best.chunk.source, best.chunk.paragraph)
            return cand.features["coverage"] > 0 or (wanted.wants_list and same_paragraph)

        close = [c for c in verified[1:] if c.score >= best.score * ratio and belongs(c)]
        return distinct([best, *close])[:limit]  # the same sentence in several reports is quoted once

    def suggestions(self, trace: Trace) -> list[str]:
        """Sections worth reading after a refusal: those of the passages holding most of the question's topic
        words that the reports use at all (行政复议 for 行政复议的申请期限是多久, whose 期限 they never mention),
        best first; none when the reports use none of them (大连地铁几点停运: nothing to point at)."""
        present = {t: w for t, w in self.coverage.weights(trace.asked.terms).items() if self.coverage.doc_freq(t)}
        sections: list[str] = []
        for cand in trace.candidates:
            chunk = cand.chunk
            if not present or not chunk.section_path or chunk.section in sections:
                continue
            if Coverage.share(present, f"{' '.join(chunk.section_path)} {chunk.context} {chunk.text}",
                              chunk.doc_title) >= SUGGEST_COVERAGE:
                sections.append(chunk.section)
        return sections[: self.settings.max_suggestions]


def _cite(chosen: list[Candidate]) -> list[Citation]:
    return [Citation(n=i, chunk=c.chunk, quote=c.text, start=c.span.start, end=c.span.end)
            for i, c in enumerate(chosen, start=1)]


def split_clauses(sentence: str) -> list[str]:
    """Cut a sentence at ,，;； outside quotes, brackets and 《titles》; end punctuation dropped."""
    clauses, depth, current = [], 0, []
    for ch in sentence.rstrip("。！？；!?;"):
        if ch in _OPEN_BRACKETS:
            depth += 1
        elif ch in _CLOSE_BRACKETS:
            depth = max(0, depth - 1)
        if ch in ",，;；" and depth == 0:
            clauses.append("".join(current))
            current = []
        else:
            current.append(ch)
    clauses.append("".join(current))
    return [c.strip() for c in clauses if c.strip()]
