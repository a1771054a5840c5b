"""Candidate sentences: every sentence of the top passages, with the signals the later stages judge it by.

A candidate is one sentence of a retrieved passage. Its features say how close it
is to the question in meaning (cosines), in words (IDF-weighted coverage of the
question's topic words, alone and with its heading, table header and passage)
and in kind (does it state what the question asks for: ``retrieval.verify``).
The names in FEATURES are what ``retrieval.model`` weighs; ``reportqa train`` fits the weights.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from core.text import fold
from core.types import Chunk, Hit, Span

from .question import Asked
from .verify import Check, clause_share, failed, verify

NOTES_SECTION = re.compile(r"注释|^注$|资料来源|名词解释")
FEATURES = (
    "sim", "sim_gap", "passage_sim", "passage_rank", "coverage", "coverage_context", "coverage_passage",
    "clause_coverage", "kind_ok", "anchors_ok", "verified", "is_heading", "in_notes", "has_number", "length",
    # Against the other candidates of the same question: a linear model cannot compare rows by itself.
    "coverage_gap", "clause_gap", "sim_rank", "coverage_rank", "clause_rank", "sim_gap_squared",
    "sim_x_coverage", "kind_x_coverage",
)


@dataclass
class Candidate:
    chunk: Chunk
    span: Span
    rank: int  # 1-based rank of its passage in the retrieval
    checks: list[Check]
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0  # from retrieval.model: how likely this is the sentence that answers

    @property
    def text(self) -> str:
        return self.chunk.sentence_text(self.span)

    @property
    def verified(self) -> bool:
        return not failed(self.checks)

    @property
    def anchors_ok(self) -> bool:
        """The years and places asked are stated (the rest of the checks are about the answer's kind)."""
        return not any(c for c in failed(self.checks) if c.kind in ("year", "place"))


class Coverage:
    """IDF-weighted share of a question's topic words found in a text, IDF from the index's BM25 vocabulary.

    Words of the report's title (大连, 2023年, 法治政府) say which report is meant, not what is asked; they
    count for neither side.
    """

    def __init__(self, bm25, n_docs: int):
        self._vocab = bm25.vocab_dict
        self._doc_freq = np.diff(np.asarray(bm25.scores["indptr"]))
        self._n_docs = max(1, n_docs)

    def doc_freq(self, term: str) -> int:
        token_id = self._vocab.get(term)
        return int(self._doc_freq[token_id]) if token_id is not None and token_id < len(self._doc_freq) else 0

    def idf(self, term: str) -> float:
        df = self.doc_freq(term)
        return math.log(1 + (self._n_docs - df + 0.5) / (df + 0.5))

    def weights(self, terms: list[str]) -> dict[str, float]:
        return {t: self.idf(t) for t in terms}

    @staticmethod
    def share(weights: dict[str, float], text: str, title: str = "") -> float:
        scope = fold(title)
        kept = {t: w for t, w in weights.items() if t not in scope}
        total = sum(kept.values())
        if total <= 0:
            return 0.0
        folded = fold(text)
        return sum(w for t, w in kept.items() if t in folded) / total


def gather(hits: list[Hit], query_vector: np.ndarray, asked: Asked, weights: dict[str, float],
           sentence_vectors, row_of_chunk: dict[str, int], depth: int) -> list[Candidate]:
    """Every sentence of the top ``depth`` hits, with its features and checks."""
    found: list[Candidate] = []
    for rank, hit in enumerate(hits[:depth], start=1):
        chunk = hit.chunk
        first = row_of_chunk[chunk.chunk_id]
        sims = np.asarray(sentence_vectors[first: first + len(chunk.sentences)], dtype=np.float32) @ query_vector
        heading = " ".join(chunk.section_path)
        passage_cov = Coverage.share(weights, f"{heading} {chunk.context} {chunk.text}", chunk.doc_title)
        in_notes = any(NOTES_SECTION.search(part) for part in chunk.section_path)
        for span, sim in zip(chunk.sentences, sims):
            text = chunk.sentence_text(span)
            checks = verify(asked, chunk, text, weights)
            cand = Candidate(chunk, span, rank, checks)
            kind_failed = [c for c in failed(checks) if c.kind not in ("year", "place")]
            cand.features = {
                "sim": float(sim),
                "passage_sim": float(hit.dense_score),
                "passage_rank": 1.0 / rank,
                "coverage": Coverage.share(weights, text, chunk.doc_title),
                "coverage_context": Coverage.share(weights, f"{heading} {chunk.context} {text}", chunk.doc_title),
                "coverage_passage": passage_cov,
                "kind_ok": float(not kind_failed),
                "anchors_ok": float(cand.anchors_ok),
                "is_heading": float(bool(chunk.section_path) and text.rstrip("。") == chunk.section_path[-1]),
                "in_notes": float(in_notes),
                "has_number": float(bool(re.search(r"\d", text))),
                "length": min(len(text), 200) / 200,
            }
            cand.features["clause_coverage"] = clause_share(asked, weights, text, chunk)
            cand.features["verified"] = float(cand.verified)
            found.append(cand)
    _compare(found)
    return found


def _ranks(values: list[float]) -> list[float]:
    """1 / the 1-based rank of each value, highest first (ties keep their order)."""
    order = sorted(range(len(values)), key=lambda i: -values[i])
    ranks = [0.0] * len(values)
    for rank, i in enumerate(order, start=1):
        ranks[i] = 1.0 / rank
    return ranks


def _compare(found: list[Candidate]) -> None:
    """The features that place a candidate among the question's others."""
    if not found:
        return
    columns = {name: [c.features[name] for c in found] for name in ("sim", "coverage_context", "clause_coverage")}
    ranks = {name: _ranks(values) for name, values in columns.items()}
    for j, cand in enumerate(found):
        f = cand.features
        f["sim_gap"] = f["sim"] - max(columns["sim"])
        f["coverage_gap"] = f["coverage_context"] - max(columns["coverage_context"])
        f["clause_gap"] = f["clause_coverage"] - max(columns["clause_coverage"])
        f["sim_rank"], f["coverage_rank"], f["clause_rank"] = (ranks["sim"][j], ranks["coverage_context"][j],
                                                               ranks["clause_coverage"][j])
        f["sim_gap_squared"] = f["sim_gap"] ** 2
        f["sim_x_coverage"] = f["sim"] * f["coverage_context"]
        f["kind_x_coverage"] = f["kind_ok"] * f["coverage_context"]
