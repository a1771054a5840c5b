"""The development set over real reports: each report evaluated alone, stage by stage.

Items live in ``data/evals/qa.jsonl`` (the shipped report) and
``data/evals/corpus/<report>.jsonl`` (one file per corpus report); each names
its report. A report is indexed alone and its items asked of it, as a citizen
would ask them; every answerable item is also traced through the stages an
answer passes (indexed in one passage → retrieved in the top 5 → the sentence
chosen → answered directly), so a loss can be put down to the stage that lost it.

The reply policy is fitted leave-one-report-out (``evals.crossval``): the
numbers this module reports for a report come from a policy that never saw it.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.stats import percentile
from core.text import match_form

from . import metrics
from .dataset import UNANSWERABLE_CATEGORIES, EvalItem, load_eval_set
from .models import CitedPassage, Passage

TOP_K = 5


@dataclass
class DevReport:
    """One report of the development set and its items."""

    name: str  # file name, as items name it
    path: Path
    items: list[EvalItem]


def load_dev_reports(sets: Sequence[Path], report_dirs: Sequence[Path], default_report: str) -> list[DevReport]:
    """Every item of ``sets`` grouped by its report, found by file name in ``report_dirs``.

    Items that name no report belong to ``default_report`` (the shipped set's). Raises ValueError
    naming a report no folder holds, or a bad line of a set.
    """
    by_report: dict[str, list[EvalItem]] = {}
    for path in sets:
        loaded = load_eval_set(path)
        if loaded.errors:
            raise ValueError(f"{path.name}: {loaded.errors[0]}")
        for item in loaded.items:
            by_report.setdefault(item.report or default_report, []).append(item)
    reports = []
    for name, items in sorted(by_report.items()):
        found = next((folder / name for folder in report_dirs if (folder / name).is_file()), None)
        if found is None:
            raise ValueError(f"report {name!r} of the development set is in none of {', '.join(map(str, report_dirs))}")
        reports.append(DevReport(name, found, items))
    return reports


@dataclass
class DevResult:
    """One item asked of its report: what came back, and how far the right sentence got."""

    report: str
    id: str
    category: str
    answerable: bool
    question: str
    reply: str  # "answer" | "related" | "refusal"
    answer: str
    confidence: float | None
    latency_ms: float
    quotes: list[str] = field(default_factory=list)
    best_quote: str = ""
    direct_correct: bool = False  # answered directly with every required fact
    cited_evidence: bool = False  # a cited passage holds an evidence phrase
    grounded: bool = True
    # Stages, answerable items only (None otherwise).
    in_one_passage: bool | None = None  # every evidence phrase lies inside one indexed passage
    top5_recall: float | None = None  # share of evidence phrases in the top 5 retrieved passages
    chosen: bool | None = None  # the sentence the answerer judged best holds an evidence phrase
    signals: dict = field(default_factory=dict)  # what the reply policy saw (evals.crossval refits on these)
    error: str = ""  # the exception asking raised (a bug: the citizen saw a generic error)

    def to_row(self) -> dict:
        return asdict(self)


def _history(item: EvalItem) -> list[dict]:
    return [turn.to_dict() for turn in item.history]


def _holds(text: str, phrases: Sequence[str]) -> bool:
    folded = match_form(text)
    return any(match_form(p) in folded for p in phrases)


def ask_item(qa, report: str, item: EvalItem) -> DevResult:
    """Ask one item of ``qa`` (a service over its report alone) and trace it through the stages."""
    started = time.perf_counter()
    try:
        answer = qa.ask(item.question, history=_history(item))
    except Exception as exc:  # noqa: BLE001 - a crash is a result to count and read, not the end of the run
        failed = unreadable_item(report, item)
        failed.error = f"{type(exc).__name__}: {exc}"
        return failed
    latency = (time.perf_counter() - started) * 1000
    reply = getattr(answer, "reply", None) or ("refusal" if answer.refused else "answer")
    cited = [CitedPassage(Passage(c.chunk.text, c.chunk.source, c.chunk.start, c.chunk.end), c.quote)
             for c in answer.citations]
    result = DevResult(
        report=report, id=item.id, category=item.category, answerable=item.answerable, question=item.question,
        reply=reply, answer=answer.text, confidence=getattr(answer, "confidence", None), latency_ms=latency,
        quotes=[c.quote for c in answer.citations], best_quote=answer.best_quote,
        grounded=not answer.citations or not metrics.ungrounded_claims(answer.text, cited),
        signals=dict(getattr(answer, "signals", None) or {}),
    )
    if not item.answerable:
        return result
    evidence = item.evidence
    result.direct_correct = reply == "answer" and not metrics.missing_facts(answer.text, False, item.required_facts)
    result.cited_evidence = any(_holds(c.chunk.text, evidence) for c in answer.citations)
    chunks = qa.index.chunks
    result.in_one_passage = all(any(_holds(c.text, [phrase]) for c in chunks) for phrase in evidence)
    hits = qa.retrieve(item.question, top_k=TOP_K, history=_history(item))
    result.top5_recall = sum(any(_holds(h.chunk.text, [p]) for h in hits) for p in evidence) / len(evidence)
    result.chosen = bool(answer.best_quote) and _holds(answer.best_quote, evidence)
    return result


def unreadable_item(report: str, item: EvalItem) -> DevResult:
    """An item of a report that could not be indexed: every citizen asking it was refused."""
    result = DevResult(report=report, id=item.id, category=item.category, answerable=item.answerable,
                       question=item.question, reply="refusal", answer="", confidence=None, latency_ms=0.0)
    if item.answerable:
        result.in_one_passage, result.top5_recall, result.chosen = False, 0.0, False
    return result


def evaluate_reports(reports: Sequence[DevReport], service_for: Callable[[DevReport], object],
                     progress: Callable[[DevResult], None] = lambda _: None,
                     skipped: Callable[[DevReport, Exception], None] = lambda report, exc: None) -> list[DevResult]:
    """Every item of every report, each report asked of a service over it alone (``service_for``).

    A report that cannot be indexed (``service_for`` raises ReportQAError) is reported to ``skipped``
    and its items count as refused: that is what a citizen would get.
    """
    from core.errors import ReportQAError

    results = []
    for report in reports:
        try:
            qa = service_for(report)
        except ReportQAError as exc:
            skipped(report, exc)
            qa = None
        for item in report.items:
            result = ask_item(qa, report.name, item) if qa is not None else unreadable_item(report.name, item)
            results.append(result)
            progress(result)
    return results


def _rate(values) -> float | None:
    values = [float(v) for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None


# (summary key, what a reader calls it, the target as (">=" or "<=", value))
HEADLINE = (
    ("fact_direct", "fact questions answered directly with the fact", (">=", 0.95)),
    ("colloquial_cited", "colloquial questions citing the right passage (answer or related)", (">=", 0.90)),
    ("unanswerable_no_direct", "unanswerable questions given no direct answer", (">=", 0.95)),
    ("answerable_refused", "answerable questions refused outright", ("<=", 0.05)),
    ("in_one_passage", "evidence inside one indexed passage", None),
    ("top5", "supporting sentence in the top 5 passages", (">=", 0.97)),
    ("chosen", "supporting sentence chosen as the best", (">=", 0.90)),
    ("direct_correct", "answerable questions answered directly and correctly", None),
    ("grounded", "groundedness", (">=", 1.0)),
    ("latency_p95_ms", "full answer p95 (ms)", ("<=", 50.0)),
)


def summarise(results: Sequence[DevResult]) -> dict:
    """The headline rates over ``results`` (any subset: one report, one category, all)."""
    answerable = [r for r in results if r.answerable]
    return {
        "n": len(results),
        "fact_direct": _rate(r.direct_correct for r in results if r.category == "fact"),
        "colloquial_cited": _rate(r.reply in ("answer", "related") and r.cited_evidence
                                  for r in results if r.category == "colloquial"),
        "unanswerable_no_direct": _rate(r.reply != "answer" for r in results if not r.answerable),
        "answerable_refused": _rate(r.reply == "refusal" for r in answerable),
        "in_one_passage": _rate(r.in_one_passage for r in answerable),
        "top5": _rate(r.top5_recall for r in answerable),
        "chosen": _rate(r.chosen for r in answerable),
        "direct_correct": _rate(r.direct_correct for r in answerable),
        "related": _rate(r.reply == "related" for r in results),
        "grounded": _rate(r.grounded for r in results),
        "errors": sum(bool(r.error) for r in results),
        "latency_p95_ms": round(percentile([r.latency_ms for r in results], 95) or 0.0, 1),
    }


def summary(results: Sequence[DevResult]) -> dict:
    """summary.json of a development-set run: overall, per report and per category."""
    reports = sorted({r.report for r in results})
    categories = sorted({r.category for r in results}, key=lambda c: (c in UNANSWERABLE_CATEGORIES, c))
    return {
        "overall": summarise(results),
        "by_report": {name: summarise([r for r in results if r.report == name]) for name in reports},
        "by_category": {c: summarise([r for r in results if r.category == c]) for c in categories},
    }


def _cell(value) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) and value <= 1 else str(value)


def markdown(run: dict) -> str:
    """The per-report and per-category tables of a run (README and report.md)."""
    keys = [k for k, _, _ in HEADLINE]
    head = "| | n | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 2)
    rows = [f"| {name} | {block['n']} | " + " | ".join(_cell(block[k]) for k in keys) + " |"
            for name, block in [*run["by_report"].items(), ("**all**", run["overall"])]]
    cats = [f"| {name} | {block['n']} | " + " | ".join(_cell(block[k]) for k in keys) + " |"
            for name, block in run["by_category"].items()]
    targets = "\n".join(f"- {label} (`{key}`): {_cell(run['overall'][key])}"
                        + (f", target {op} {value}" if target else "")
                        for key, label, target in HEADLINE for op, value in [target or ("", "")])
    return "\n".join(["## By report", "", head, *rows, "", "## By category", "", head, *cats, "",
                      "## Against the targets", "", targets, ""])


def missed_targets(overall: dict) -> list[str]:
    """The headline targets the overall numbers miss, each with by how much."""
    missed = []
    for key, label, target in HEADLINE:
        if target is None or overall.get(key) is None:
            continue
        op, value = target
        got = overall[key]
        if (op == ">=" and got < value) or (op == "<=" and got > value):
            missed.append(f"{label}: {got} (target {op} {value})")
    return missed


def write_run(results: Sequence[DevResult], out_dir: Path) -> dict:
    """results.jsonl, summary.json and report.md of a run into ``out_dir``; returns the summary."""
    from core.files import replace_atomically
    from core.text import json_line

    out_dir.mkdir(parents=True, exist_ok=True)
    run = summary(results)
    replace_atomically(out_dir / "results.jsonl", "".join(json_line(r.to_row()) + "\n" for r in results))
    replace_atomically(out_dir / "summary.json", json.dumps(run, ensure_ascii=False, indent=2) + "\n")
    replace_atomically(out_dir / "report.md", "# Development set over real reports\n\n" + markdown(run))
    return run
