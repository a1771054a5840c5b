"""Calibrate the refusal thresholds on the evaluation set (a script, not a test).

Every item is answered once with the thresholds off (the answerer answers
whenever some sentence could); each answer records the (cosine, coverage)
strength the thresholds judge. Each threshold triple is then scored offline:
fact accuracy and refusal precision/recall/F1, overall and per category.
Prints the current setting, the best overall, and the best that leaves no
category worse than the current one; writes reports/calibration.json.

Run: .venv/bin/python bench/calibrate_refusal.py
"""
from __future__ import annotations

import itertools
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evals.dataset import load_eval_set  # noqa: E402
from evals.metrics import fact_accuracy, refusal_scores  # noqa: E402
from reportqa.service import ReportQA  # noqa: E402
from retrieval.answer import AnswerSettings, ExtractiveAnswerer  # noqa: E402

GRID = {
    "strong_similarity": [0.89, 0.90, 0.91, 0.92, 0.93],
    "min_similarity": [0.84, 0.85, 0.86, 0.87],
    "min_coverage": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
}


def score(rows: list[dict], settings: AnswerSettings) -> dict:
    """Fact accuracy and refusal scores per category if the thresholds were ``settings``."""
    judge = ExtractiveAnswerer.__new__(ExtractiveAnswerer)
    judge.settings = settings
    by_category: dict[str, list] = {}
    for row in rows:
        # No strength: refused before any threshold (a year or place not in the report), or a merged multi-part answer.
        refused = row["refused"] if row["strength"] is None else not judge.confident(tuple(row["strength"]))
        by_category.setdefault(row["category"], []).append((row, refused))
        by_category.setdefault("all", []).append((row, refused))
    out = {}
    for category, pairs in by_category.items():
        answerable = [r["answerable"] for r, _ in pairs]
        refusals = refusal_scores([refused for _, refused in pairs], answerable)
        facts = [fact_accuracy(r["answer"], refused, r["required_facts"]) for r, refused in pairs if r["answerable"]]
        out[category] = {"fact_accuracy": sum(facts) / len(facts) if facts else None, **asdict(refusals)}
    return out


def no_worse(candidate: dict, current: dict) -> bool:
    for category, now in current.items():
        for key in ("fact_accuracy", "f1"):
            if now[key] is not None and (candidate[category][key] or 0) < now[key] - 1e-9:
                return False
    return True


def main() -> None:
    items = load_eval_set(ROOT / "data" / "evals" / "qa.jsonl").items
    current = AnswerSettings()
    qa = ReportQA(answer_settings=replace(current, strong_similarity=0.0, min_similarity=0.0, min_coverage=0.0))
    rows = []
    for item in items:
        answer = qa.ask(item.question, [t.model_dump() for t in item.history])
        rows.append({"id": item.id, "category": item.category, "answerable": item.answerable,
                     "required_facts": item.required_facts, "answer": answer.text, "refused": answer.refused,
                     "strength": answer.strength})
    results = []
    for values in itertools.product(*GRID.values()):
        settings = replace(current, **dict(zip(GRID, values)))
        results.append((dict(zip(GRID, values)), score(rows, settings)))
    now = score(rows, current)

    def total(result):
        return (result["all"]["fact_accuracy"] or 0) + (result["all"]["f1"] or 0)

    best = max(results, key=lambda r: total(r[1]))
    safe = max((r for r in results if no_worse(r[1], now)), key=lambda r: total(r[1]))
    report = {"current": {k: getattr(current, k) for k in GRID} | {"scores": now},
              "best_overall": best[0] | {"scores": best[1]}, "best_no_category_worse": safe[0] | {"scores": safe[1]}}
    (ROOT / "reports").mkdir(exist_ok=True)
    (ROOT / "reports" / "calibration.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print("| setting | strong / min cos / min coverage | fact acc. | refusal P | refusal R | refusal F1 |")
    print("|---|---|---|---|---|---|")
    for name, params, scores in (("current", {k: getattr(current, k) for k in GRID}, now), ("best overall", *best),
                                 ("best, no category worse", *safe)):
        a = scores["all"]
        print(f"| {name} | {params['strong_similarity']} / {params['min_similarity']} / {params['min_coverage']} | "
              f"{a['fact_accuracy']:.3f} | {a['precision']:.3f} | {a['recall']:.3f} | {a['f1']:.3f} |")


if __name__ == "__main__":
    main()
