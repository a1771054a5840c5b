"""The reply policy: a direct answer, the report's related passages, or a refusal, and the words of each.

* **answer**: the best sentence states everything the question asks (``retrieval.verify``) and the
  fitted model is confident enough that it answers it; it leads with the clause that answers
  (增长多少 leads with the percentage), the sentence quoted under it.
* **related** (报告中的相关内容): the report covers the topic but no sentence states what was asked; the
  reply says what is missing (没有给出天数) and quotes the closest passages, each cited.
* **refusal**: the report does not cover it, or is about another year or place than the one asked
  (the reply names it: 报告中没有2024年的相关内容).
"""
from __future__ import annotations

from dataclasses import dataclass

from core.text import fold
from core.types import REFUSAL_MESSAGE

from .candidates import Candidate
from .model import AnswerModel
from .verify import failed

RELATED_INTRO = "报告中没有直接回答这个问题{why}。报告中的相关内容："
MISSING_YEAR_OR_PLACE = "抱歉，报告中{what}。"
MAX_RELATED = 3
MAX_RELATED_ITEMS = 8
RELEVANT_SHARE = 0.5  # a related passage scores at least this share of the most likely sentence's score


@dataclass(frozen=True)
class Decision:
    reply: str  # "answer" | "related" | "refusal"
    confidence: float  # calibrated probability that a direct answer would be right
    covered: float  # probability that the report covers the topic
    best: Candidate | None  # the best verified candidate (answer), or the closest one
    related: tuple[Candidate, ...] = ()
    why_zh: str = ""  # what the report does not give, for a related reply or a refusal


def question_signals(candidates: list[Candidate], ranked_verified: list[Candidate], missing_share: float,
                     wants_quantity: bool, wants_list: bool) -> dict[str, float]:
    """What the direct and covered models judge: about the question and its best candidates as a whole."""
    best = ranked_verified[0] if ranked_verified else None
    # The runner-up is the best verified sentence that says something else: the same sentence in a second
    # copy of the report (or twice in one) is no rival.
    second = next((c.score for c in ranked_verified[1:] if fold(c.text) != fold(best.text)), 0.0) if best else 0.0
    anchored = [c for c in candidates if c.anchors_ok]
    return {
        "best_score": best.score if best else 0.0,
        "best_sim": best.features["sim"] if best else 0.0,
        "best_coverage": best.features["coverage_context"] if best else 0.0,
        "best_clause_coverage": best.features["clause_coverage"] if best else 0.0,
        "top_sim": max((c.features["sim"] for c in candidates), default=0.0),
        "top_passage_sim": max((c.features["passage_sim"] for c in candidates), default=0.0),
        "passage_coverage": max((c.features["coverage_passage"] for c in candidates), default=0.0),
        "missing_share": missing_share,
        "any_verified": float(best is not None),
        "anchors_missing": float(bool(candidates) and not anchored),
        "kind_missing": float(bool(anchored) and best is None),
        "wants_quantity": float(wants_quantity),
        "wants_list": float(wants_list),
        "margin": (best.score - second) if best else 0.0,
    }


def decide(model: AnswerModel, candidates: list[Candidate], signals: dict[str, float]) -> Decision:
    """The kind of reply, from the ranked candidates (best first) and the question's signals."""
    verified = [c for c in candidates if c.verified]
    confidence = model.direct.prob(signals) if verified else 0.0
    covered = model.covered.prob(signals)
    if verified and confidence >= model.direct_threshold:
        return Decision("answer", confidence, covered, verified[0])
    if not candidates:
        return Decision("refusal", confidence, covered, None)
    top = candidates[0]  # the sentence most likely to answer, whatever it states
    relevant = [c for c in candidates if c.anchors_ok and c.score >= top.score * RELEVANT_SHARE]
    misses = [c for c in failed(top.checks) if c.kind in ("year", "place")]
    if misses and not relevant:
        # What the report says on this is about another year or place than the one asked: say which.
        return Decision("refusal", confidence, covered, top,
                        why_zh="、".join(dict.fromkeys(m.missing_zh for m in misses)))
    if covered >= model.covered_threshold and relevant:
        # A list question (哪些打算) is shown the items the report does name, one sentence each; any other
        # question the best sentence of each of the closest passages.
        related = (distinct(relevant)[:MAX_RELATED_ITEMS] if signals.get("wants_list")
                   else distinct(relevant, per_passage=True)[:MAX_RELATED])
        return Decision("related", confidence, covered, relevant[0], tuple(related), _most_specific(relevant[0]))
    return Decision("refusal", confidence, covered, top)


# Which failed check to name when several fail: the most specific (no 天数 implies no number at all).
SPECIFICITY = ("year", "place", "unit", "time", "where", "items", "amount", "item")


def _most_specific(candidate: Candidate) -> str:
    """What the report does not give, said once: 没有给出天数 rather than also 没有给出具体数字."""
    misses = sorted(failed(candidate.checks), key=lambda c: SPECIFICITY.index(c.kind) if c.kind in SPECIFICITY else 99)
    return misses[0].missing_zh if misses else ""


def distinct(candidates: list[Candidate], per_passage: bool = False) -> list[Candidate]:
    """Each sentence once, in the order given, however many passages (copies of one report, or one report
    saying it twice) hold it; ``per_passage``: also only the first sentence of each passage."""
    said, seen, kept = set(), set(), []
    for cand in candidates:
        text = fold(cand.text)
        if text in said or (per_passage and cand.chunk.chunk_id in seen):
            continue
        said.add(text)
        seen.add(cand.chunk.chunk_id)
        kept.append(cand)
    return kept


def refusal_text(decision: Decision) -> str:
    if decision.why_zh:
        return MISSING_YEAR_OR_PLACE.format(what=decision.why_zh)
    return REFUSAL_MESSAGE


def related_intro(decision: Decision) -> str:
    return RELATED_INTRO.format(why=f"（{decision.why_zh}）" if decision.why_zh else "")
