"""Evaluation metrics as pure functions; each docstring is the definition the README quotes.

All text comparisons are on NFKC-normalised text with whitespace removed
(full-width digits, letters and punctuation fold to their half-width forms;
PDF text's spaces inside words and numbers do not count), and the answer's
citation markers like [1] are removed before it is checked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from core.stats import percentile  # noqa: F401 - the latency percentile the summaries report
from core.text import answer_body, match_form
from retrieval import grounding

from .models import CitedPassage, Passage

# --- retrieval ---------------------------------------------------------------

def covers(passage: Passage, quote: Passage) -> bool:
    """Whether ``passage`` holds the evidence ``quote``.

    True when the normalised quote is a substring of the normalised passage,
    or, for a quote cut in two by a chunk boundary, when both carry offsets
    in the same source file and the passage holds at least half of the
    quote's characters.
    """
    if match_form(quote.text) in match_form(passage.text):
        return True
    if None in (passage.start, passage.end, quote.start, quote.end) or passage.source != quote.source:
        return False
    overlap = min(passage.end, quote.end) - max(passage.start, quote.start)
    return overlap > 0 and 2 * overlap >= quote.end - quote.start


def is_relevant(passage: Passage, quotes: Sequence[Passage]) -> bool:
    """A passage is relevant to an item when it covers at least one of its evidence quotes."""
    return any(covers(passage, q) for q in quotes)


def recall_at_k(ranking: Sequence[Passage], quotes: Sequence[Passage], k: int) -> float:
    """Recall@k: the share of the item's evidence quotes covered by at least one of the top ``k`` passages.

    Counting quotes rather than chunks makes systems with different chunk
    sizes comparable: a multi-part answer needs every part found.
    """
    if not quotes:
        raise ValueError("recall needs at least one evidence quote")
    top = ranking[:k]
    return sum(any(covers(p, q) for p in top) for q in quotes) / len(quotes)


def reciprocal_rank(ranking: Sequence[Passage], quotes: Sequence[Passage], k: int = 10) -> float:
    """RR@k: 1 / the rank of the first relevant passage in the top ``k``, 0 if none (MRR@k is its mean)."""
    for rank, passage in enumerate(ranking[:k], start=1):
        if is_relevant(passage, quotes):
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranking: Sequence[Passage], quotes: Sequence[Passage], n_relevant: int, k: int = 10) -> float:
    """nDCG@k with binary gains: DCG = sum over ranks r <= k of rel_r / log2(r + 1), rel_r = 1 if relevant.

    Divided by the ideal DCG, which ranks min(k, ``n_relevant``) relevant
    passages first; ``n_relevant`` is how many passages of the system's whole
    collection are relevant. 0 when the collection has none.
    """
    if n_relevant <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank, p in enumerate(ranking[:k], start=1) if is_relevant(p, quotes))
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, n_relevant) + 1))
    return dcg / ideal


# --- answers -----------------------------------------------------------------

def missing_facts(answer_text: str, refused: bool, required_facts: Iterable[str]) -> list[str]:
    """The required facts whose normalised text is not a substring of the answer; all of them if refused."""
    facts = list(required_facts)
    if refused:
        return facts
    body = match_form(answer_body(answer_text))
    return [fact for fact in facts if match_form(fact) not in body]


def fact_accuracy(answer_text: str, refused: bool, required_facts: Iterable[str]) -> float:
    """Fact accuracy of one answer: 1 when it is not a refusal and contains every required fact verbatim, else 0."""
    return 0.0 if missing_facts(answer_text, refused, required_facts) or refused else 1.0


def citation_precision(cited: Sequence[CitedPassage], quotes: Sequence[Passage]) -> float | None:
    """Citation precision: the share of cited passages that cover at least one evidence quote.

    None when the answer cites nothing (e.g. a refusal): there is nothing to be precise about.
    """
    if not cited:
        return None
    return sum(is_relevant(c.passage, quotes) for c in cited) / len(cited)


def citation_recall(cited: Sequence[CitedPassage], quotes: Sequence[Passage]) -> float:
    """Citation recall: the share of evidence quotes covered by at least one cited passage (0 for a refusal)."""
    if not quotes:
        raise ValueError("citation recall needs at least one evidence quote")
    return sum(any(covers(c.passage, q) for c in cited) for q in quotes) / len(quotes)


def ungrounded_claims(answer_text: str, cited: Sequence[CitedPassage]) -> list[str]:
    """The numbers and 《titles》 of an answer that no cited passage contains (see retrieval.grounding)."""
    return grounding.ungrounded_claims(answer_text, [c.passage.text for c in cited])


def groundedness(answer_text: str, refused: bool, cited: Sequence[CitedPassage]) -> float:
    """Groundedness of one answer: 1 when every number and 《title》 in it appears in a cited passage, else 0.

    A refusal states nothing and is trivially grounded.
    """
    if refused:
        return 1.0
    return 0.0 if ungrounded_claims(answer_text, cited) else 1.0


# --- refusals ----------------------------------------------------------------

@dataclass(frozen=True)
class RefusalScores:
    precision: float | None
    recall: float | None
    f1: float | None
    accuracy: float | None


def refusal_scores(refused: Sequence[bool], answerable: Sequence[bool]) -> RefusalScores:
    """Refusal precision, recall and F1, with "refused" as the positive class.

    Over all items, answerable and not: TP = refused an unanswerable item,
    FP = refused an answerable one, FN = answered an unanswerable one.
    Precision = TP / (TP + FP), None if nothing was refused; recall =
    TP / (TP + FN), None if no item is unanswerable; F1 = 2TP / (2TP + FP + FN),
    which equals their harmonic mean and is 0 when TP = 0 but something went
    wrong (None only when there was nothing to refuse and nothing was refused).
    Accuracy is the share of items where refusing was the right call.
    """
    if len(refused) != len(answerable):
        raise ValueError(f"got {len(refused)} refusal flags for {len(answerable)} items")
    tp = sum(r and not a for r, a in zip(refused, answerable))
    fp = sum(r and a for r, a in zip(refused, answerable))
    fn = sum(not r and not a for r, a in zip(refused, answerable))
    correct = sum(r != a for r, a in zip(refused, answerable))
    return RefusalScores(
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        f1=2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None,
        accuracy=correct / len(refused) if refused else None,
    )


# --- latency -----------------------------------------------------------------

def mean(values: Iterable[float | None]) -> float | None:
    """The mean of the values that apply (not None); None when none do."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
