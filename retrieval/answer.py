"""The extractive, grounded answerer: pick the sentences that answer, cite each, or refuse.

No text is generated: every sentence of an answer is a sentence of a cited
passage, so every number and 《title》 in it appears in its citation.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from core.text import ASKS, YEAR_MENTION, content_terms, fold, place_names
from core.types import REFUSAL_MESSAGE, Answer, Chunk, Citation, Hit, Span
from index.store import StoredIndex

# Questions that ask for a count or amount are answered only by a sentence that states one.
QUANTITY_QUESTION = re.compile(r"多少|(?<!哪)几|数量|比例|百分之|多大|多长|多久")
# A stated amount: 1726个, 100%, 60课时, 十项, 首批, 第三批; not a year (2023年) or a range (2021—2025).
# Questions that want one precise thing: an amount, a name, a place, a document.
PRECISE_QUESTION = re.compile(r"多少|(?<!哪)几|哪(?:个|部|一|里|家|位|项|次|年)|什么|谁|叫")
_OPEN_BRACKETS, _CLOSE_BRACKETS = "“‘《(（「『", "”’》)）」』"
# When and where questions are answered only by a sentence that names a time or a place.
TIME_QUESTION = re.compile(r"哪一?年|什么时候|何时|几月|几号|哪天|哪一天|日期")
TIME = re.compile(r"(?:19|20)\d{2}年|\d{1,2}月|\d{1,2}日")
PLACE_QUESTION = re.compile(r"哪里|在哪|什么地方|何处|哪个(?:区|县|市|省|地方|城市)")
VENUE = re.compile(r"网站|网页|栏目")  # "where" is also a place on the web
# Questions whose answer is a list of items: 有哪些不足？ 2024年有哪些打算？ 做了什么？
LIST_QUESTION = re.compile(r"哪些|哪几|什么(?:措施|举措|工作|成果|成效|打算|荣誉)|做了什么|打算|不足|成果|成效|举措|措施")
QUANTITY = re.compile(r"\d+(?:\.\d+)?(?![\d年—\-版度])|[一二三四五六七八九十百千万两首]+余?[个项件人次批支家所条级类]")


@dataclass(frozen=True)
class AnswerSettings:
    """Weights and thresholds of the extractive answerer (tuned on data/evals; see README)."""

    coverage_weight: float = 0.10  # sentence score = cosine + weight * term coverage (+ bonuses)
    min_similarity: float = 0.84  # refuse below this cosine whatever the words
    min_coverage: float = 0.4  # … and below strong_similarity, unless this share of the topic words match
    strong_similarity: float = 0.91  # answer on meaning alone at or above this cosine
    max_sentences: int = 3
    follow_margin: float = 0.025  # extra sentences must score within this of the best
    max_list_sentences: int = 8  # for 哪些/打算/不足 questions, whose answer is a list
    list_margin: float = 0.06
    candidate_hits: int = 5


@dataclass
class _Candidate:
    chunk: Chunk
    span: Span
    similarity: float
    coverage: float
    score: float = 0.0

    @property
    def text(self) -> str:
        return self.chunk.sentence_text(self.span)


@dataclass
class QuestionTerms:
    """The parts of a question the answerer checks against passages."""

    terms: list[str]
    weights: dict[str, float]
    anchors: list[str] = field(default_factory=list)  # years and proper names that must be in the evidence
    wants_quantity: bool = False
    wants_time: bool = False
    wants_place: bool = False
    wants_list: bool = False
    wants_precise: bool = False


class ExtractiveAnswerer:
    """Scores the sentences of the top hits; answers with the best ones or refuses."""

    def __init__(self, index: StoredIndex, settings: AnswerSettings = AnswerSettings()):
        self.index = index
        self.settings = settings
        # chunk id -> row of its first sentence, read from the table's columns: walking index.chunks would
        # build every chunk (they are made when read; index.table).
        self._row_of_chunk = index.sentence_start
        self._vocab = index.bm25.vocab_dict
        indptr = np.asarray(index.bm25.scores["indptr"])
        self._doc_freq = np.diff(indptr)
        self._n_docs = max(1, len(index.chunks))

    def idf(self, term: str) -> float:
        token_id = self._vocab.get(term)
        df = int(self._doc_freq[token_id]) if token_id is not None and token_id < len(self._doc_freq) else 0
        return math.log(1 + (self._n_docs - df + 0.5) / (df + 0.5))

    def question_terms(self, question: str, kind_from: str | None = None) -> QuestionTerms:
        """Topic words, anchors and the kind of answer wanted (read from ``kind_from`` when given)."""
        terms = content_terms(question)
        anchors = set(YEAR_MENTION.findall(question)) | set(place_names(question))
        kind = question if kind_from is None else kind_from
        return QuestionTerms(
            terms=terms,
            weights={t: self.idf(t) for t in terms},
            anchors=sorted(anchors),
            wants_quantity=bool(QUANTITY_QUESTION.search(kind)),
            wants_time=bool(TIME_QUESTION.search(kind)),
            wants_place=bool(PLACE_QUESTION.search(kind)),
            wants_list=bool(LIST_QUESTION.search(kind)),
            wants_precise=bool(PRECISE_QUESTION.search(kind)),
        )

    @staticmethod
    def coverage(qterms: QuestionTerms, text: str, title: str = "") -> float:
        """IDF-weighted share of the question's topic words found in ``text``.

        Words of the document's title (大连, 2023年, 法治政府) say which report
        is meant, not what is asked; they count for neither side.
        """
        scope = fold(title)
        weights = {t: w for t, w in qterms.weights.items() if t not in scope}
        total = sum(weights.values())
        if total <= 0:
            return 0.0
        folded = fold(text)
        return sum(w for t, w in weights.items() if t in folded) / total

    def _candidates(self, hits: list[Hit], query_vector: np.ndarray, qterms: QuestionTerms) -> list[_Candidate]:
        found: list[_Candidate] = []
        for hit in hits[: self.settings.candidate_hits]:
            chunk = hit.chunk
            first = self._row_of_chunk[chunk.chunk_id]
            sims = self.index.sentence_vectors[first : first + len(chunk.sentences)] @ query_vector
            section_text = " ".join(chunk.section_path)
            for span, sim in zip(chunk.sentences, sims):
                text = chunk.sentence_text(span)
                cov = max(self.coverage(qterms, text, chunk.doc_title),
                          0.5 * self.coverage(qterms, f"{section_text} {text}", chunk.doc_title))
                cand = _Candidate(chunk, span, float(sim), cov)
                cand.score = cand.similarity + self.settings.coverage_weight * cand.coverage
                if not self.answers_type(qterms, text):
                    continue  # a how-many, when or where question needs a sentence stating one
                if chunk.section_path and text.rstrip("。") == chunk.section_path[-1]:
                    cand.score -= 0.05  # an inline subsection heading is a title, not an answer
                found.append(cand)
        return sorted(found, key=lambda c: -c.score)

    @staticmethod
    def answers_type(qterms: QuestionTerms, text: str) -> bool:
        """Whether a sentence can answer the kind of question asked: an amount, a time, a place."""
        if qterms.wants_quantity and not QUANTITY.search(text):
            return False
        if qterms.wants_time and not TIME.search(text):
            return False
        return not qterms.wants_place or bool(VENUE.search(text) or place_names(text))

    def _grounded_anchors(self, qterms: QuestionTerms, chunk: Chunk) -> bool:
        context = fold(f"{chunk.doc_title} {' '.join(chunk.section_path)} {chunk.text}")
        return all(a in context for a in qterms.anchors)

    def answer(self, question: str, hits: list[Hit], query_vector: np.ndarray, asked: str | None = None) -> Answer:
        """Answer ``question`` from ``hits``.

        ``asked``: the user's own words when ``question`` is a follow-up joined
        to its context; what kind of answer is wanted (an amount, a list)
        comes from it, the topic from both.
        """
        # 那2022年呢？ asks nothing of its own, so it keeps the previous question's kind.
        kind_from = asked if asked is not None and ASKS.search(asked) else None
        qterms = self.question_terms(question, kind_from)
        candidates = self._candidates(hits, query_vector, qterms)
        grounded = [c for c in candidates if self._grounded_anchors(qterms, c.chunk)]
        if not grounded:
            return replace(self.refusal(question, hits), best_quote=candidates[0].text if candidates else "")
        strength = self.strength(grounded[0], qterms)
        if not self.confident(strength):
            return replace(self.refusal(question, hits), strength=strength, best_quote=grounded[0].text)
        chosen = self._select(grounded, qterms)
        # Lead with the most direct sentence; the rest read best in document order.
        chosen = chosen[:1] + sorted(chosen[1:], key=lambda c: (c.chunk.source, c.span.start))
        citations = [
            Citation(n=i, chunk=c.chunk, quote=c.text, start=c.span.start, end=c.span.end)
            for i, c in enumerate(chosen, start=1)
        ]
        lines = [f"{c.quote}[{c.n}]" for c in citations]
        # A follow-up's own words (满意率多少？) pick the clause; the joined question found the sentence.
        focus = self.question_terms(asked) if asked and asked != question else qterms
        lead = self.lead_clause(chosen[0], qterms, focus) if qterms.wants_precise and not qterms.wants_list else ""
        if lead and lead != citations[0].quote:
            # The direct answer first, the sentence that supports it right under it.
            lines[0] = f"{lead}[1]\n原文：“{citations[0].quote}”"
        text = "\n".join(lines)
        return Answer(question=question, text=text, reply="answer", citations=citations, strength=strength,
                      best_quote=citations[0].quote)

    def lead_clause(self, best: _Candidate, qterms: QuestionTerms, focus: QuestionTerms | None = None) -> str:
        """The clause of the best sentence that answers a precise question: 全市建成便民服务站1726个.

        The sentence is cut at commas and semicolons outside quotes, brackets
        and 《titles》; the clause with most of the question's words wins
        (holding an amount when one is asked for). The whole sentence is
        kept when it has one clause or no clause matches.
        """
        clauses = split_clauses(best.text)
        if len(clauses) < 2:
            return best.text

        focus = focus or qterms
        title = best.chunk.doc_title

        def rank(index: int) -> tuple:
            clause = clauses[index]
            has_amount = bool(QUANTITY.search(clause)) if qterms.wants_quantity else True
            return (has_amount, self.coverage(focus, clause, title), self.coverage(qterms, clause, title), -index)

        index = max(range(len(clauses)), key=rank)
        if self.coverage(qterms, clauses[index], title) == 0:
            return best.text
        return clauses[index] + "。"

    def _select(self, grounded: list[_Candidate], qterms: QuestionTerms) -> list[_Candidate]:
        """The best sentence, then those close to it: a few for a fact, a list for 哪些."""
        s = self.settings
        best = grounded[0]
        if qterms.wants_list:
            limit, margin = s.max_list_sentences, s.list_margin
        else:
            limit, margin = s.max_sentences, s.follow_margin

        def belongs(cand: _Candidate) -> bool:
            same_paragraph = (cand.chunk.source, cand.chunk.paragraph) == (best.chunk.source, best.chunk.paragraph)
            return cand.coverage > 0 or (qterms.wants_list and same_paragraph)

        chosen = [best]
        said = {fold(best.text)}  # the same sentence in several reports (or twice in one) is quoted once
        for cand in grounded[1:]:
            if len(chosen) >= limit:
                break
            if cand.score >= best.score - margin and belongs(cand) and fold(cand.text) not in said:
                chosen.append(cand)
                said.add(fold(cand.text))
        return chosen

    def strength(self, best: _Candidate, qterms: QuestionTerms) -> tuple[float, float]:
        """How well the best sentence answers: (cosine, term coverage of it or of its own passage)."""
        chunk = best.chunk
        chunk_cov = self.coverage(qterms, f"{' '.join(chunk.section_path)} {chunk.text}", chunk.doc_title)
        return best.similarity, max(best.coverage, chunk_cov)

    def confident(self, strength: tuple[float, float]) -> bool:
        """Answer on meaning alone when the cosine is strong, else on meaning and matching words."""
        similarity, coverage = strength
        s = self.settings
        return similarity >= s.strong_similarity or (similarity >= s.min_similarity and coverage >= s.min_coverage)

    def refusal(self, question: str, hits: list[Hit]) -> Answer:
        """The plain refusal, with the sections of near misses a reader could try."""
        suggestions: list[str] = []
        for hit in hits:
            if hit.dense_score >= self.settings.min_similarity - 0.02 and hit.chunk.section not in suggestions:
                suggestions.append(hit.chunk.section)
        return Answer(question=question, text=REFUSAL_MESSAGE, reply="refusal", suggestions=suggestions[:3])


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
