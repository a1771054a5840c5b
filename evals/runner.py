"""Run every evaluation item through every system, score each answer, and summarise."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from . import metrics
from .dataset import CATEGORIES, EvalItem
from .models import ItemResult, Passage, Response
from .systems import RANKING_DEPTH, System

RECALL_DEPTHS = (1, 3, 5, 10)
# Per-item metrics, in the order results.jsonl and the summaries list them.
ITEM_METRICS = (
    "fact_accuracy", "citation_precision", "citation_recall", "groundedness", "refusal_correct",
    *(f"recall@{k}" for k in RECALL_DEPTHS), "mrr@10", "ndcg@10", "latency_ms",
)
RATE_METRICS = (
    "fact_accuracy", "citation_precision", "citation_recall", "groundedness",
    "refusal_precision", "refusal_recall", "refusal_f1", "refusal_accuracy",
    *(f"recall@{k}" for k in RECALL_DEPTHS), "mrr@10", "ndcg@10",
)


def locate_quotes(quotes: Sequence[str], sources: dict[str, str]) -> list[Passage]:
    """Evidence quotes with their offsets in the first source that holds them verbatim."""
    located = []
    for quote in quotes:
        for name, text in sources.items():
            start = text.find(quote)
            if start >= 0:
                located.append(Passage(quote, name, start, start + len(quote)))
                break
        else:
            located.append(Passage(quote))
    return located


def score_item(item: EvalItem, system: str, response: Response, ranking: list[Passage],
               quotes: list[Passage], n_relevant: int) -> ItemResult:
    """Every per-item metric that applies to ``item`` (None for those that don't)."""
    has_evidence = item.answerable and bool(quotes)
    cited = response.citations
    scores: dict[str, float | None] = dict.fromkeys(ITEM_METRICS)
    scores["groundedness"] = metrics.groundedness(response.answer, response.refused, cited)
    scores["refusal_correct"] = float(response.refused != item.answerable)
    scores["latency_ms"] = response.latency_ms
    missing: list[str] = []
    if item.answerable:
        missing = metrics.missing_facts(response.answer, response.refused, item.required_facts)
        scores["fact_accuracy"] = metrics.fact_accuracy(response.answer, response.refused, item.required_facts)
    if has_evidence:
        scores["citation_precision"] = metrics.citation_precision(cited, quotes)
        scores["citation_recall"] = metrics.citation_recall(cited, quotes)
        for k in RECALL_DEPTHS:
            scores[f"recall@{k}"] = metrics.recall_at_k(ranking, quotes, k)
        scores["mrr@10"] = metrics.reciprocal_rank(ranking, quotes, 10)
        scores["ndcg@10"] = metrics.ndcg_at_k(ranking, quotes, n_relevant, 10)
    ungrounded = [] if response.refused else metrics.ungrounded_claims(response.answer, cited)
    return ItemResult(item, system, response, ranking, scores, missing, ungrounded)


def summarise(results: Sequence[ItemResult]) -> dict:
    """Aggregate metrics of one system over some items: means of the per-item scores that apply,
    refusal precision/recall/F1 over all of them, and latency percentiles."""
    refusal = metrics.refusal_scores([r.response.refused for r in results], [r.item.answerable for r in results])
    latencies = [r.response.latency_ms for r in results]
    summary: dict[str, float | int | None] = {
        "n_items": len(results),
        "n_answerable": sum(r.item.answerable for r in results),
    }
    for name in ("fact_accuracy", "citation_precision", "citation_recall", "groundedness",
                 *(f"recall@{k}" for k in RECALL_DEPTHS), "mrr@10", "ndcg@10"):
        summary[name] = metrics.mean(r.metrics[name] for r in results)
    summary.update({
        "refusal_precision": refusal.precision,
        "refusal_recall": refusal.recall,
        "refusal_f1": refusal.f1,
        "refusal_accuracy": refusal.accuracy,
        "latency_p50_ms": metrics.percentile(latencies, 50),
        "latency_p95_ms": metrics.percentile(latencies, 95),
    })
    return summary


@dataclass
class EvalRun:
    """All results of one evaluation, with when and how long it ran."""

    items: list[EvalItem]
    systems: list[str]
    results: list[ItemResult] = field(default_factory=list)
    started_at: str = ""
    duration_s: float = 0.0

    def results_of(self, system: str, category: str | None = None) -> list[ItemResult]:
        return [r for r in self.results if r.system == system and (category is None or r.item.category == category)]

    def summary(self) -> dict:
        """The summary.json object: per system, overall and per category."""
        by_system = {}
        for system in self.systems:
            categories = [c for c in CATEGORIES if self.results_of(system, c)]
            by_system[system] = {
                "overall": summarise(self.results_of(system)),
                "by_category": {c: summarise(self.results_of(system, c)) for c in categories},
            }
        return {
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 2),
            "n_items": len(self.items),
            "systems": by_system,
        }


def run_eval(items: Sequence[EvalItem], systems: Sequence[System],
             progress: Callable[[ItemResult], None] = lambda _: None,
             sources: dict[str, str] | None = None) -> EvalRun:
    """Ask every item of every system, system after system, and score the answers.

    Args:
        progress: called after each (item, system) pair, e.g. to advance a progress bar.
        sources: report texts by source name, to give evidence quotes offsets so a
            quote cut by a chunk boundary still counts (see ``metrics.covers``).
    """
    run = EvalRun(list(items), [s.name for s in systems], started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    started = time.perf_counter()
    quotes = {item.id: locate_quotes(item.evidence, sources or {}) for item in items}
    for system in systems:
        collection = system.passages()
        for item in items:
            # Ranking first: it also loads the models, so no answer is timed with a cold start.
            ranking = system.rank(item, RANKING_DEPTH)
            response = system.respond(item)
            n_relevant = sum(metrics.is_relevant(p, quotes[item.id]) for p in collection) if item.evidence else 0
            result = score_item(item, system.name, response, ranking, quotes[item.id], n_relevant)
            run.results.append(result)
            progress(result)
    run.duration_s = time.perf_counter() - started
    return run
