"""What an evaluation leaves on disk: results.jsonl, summary.json, report.md and chart.png."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import BinaryIO

from core.files import replace_atomically
from core.fonts import chinese_charts
from core.text import json_line

from .runner import EvalRun

# Column title of each summary key, for every table of the report and the staff tab.
COLUMN_TITLES = {
    "n_items": "Items", "fact_accuracy": "Fact acc.", "refusal_accuracy": "Refusal acc.", "refusal_f1": "Refusal F1",
    "citation_precision": "Cit. prec.", "citation_recall": "Cit. recall", "groundedness": "Grounded",
    "recall@5": "R@5", "mrr@10": "MRR@10", "ndcg@10": "nDCG@10", "latency_p50_ms": "p50 ms", "latency_p95_ms": "p95 ms",
}
# (summary key, column title) of the systems table, the CLI's printout and the gates.
HEADLINE = tuple((key, COLUMN_TITLES[key]) for key in (
    "fact_accuracy", "refusal_f1", "citation_precision", "citation_recall", "groundedness",
    "recall@5", "mrr@10", "ndcg@10", "latency_p50_ms", "latency_p95_ms"))
# ... and of the per-category table.
CATEGORY_COLUMNS = tuple((key, COLUMN_TITLES[key]) for key in (
    "n_items", "fact_accuracy", "refusal_accuracy", "refusal_f1", "citation_precision", "citation_recall",
    "groundedness", "recall@5", "mrr@10"))
# The per-category chart uses refusal accuracy: F1 is undefined in a category with no unanswerable item.
# The chart is for staff and labelled in Chinese (core.fonts finds the CJK font).
CHART_METRICS = (
    ("fact_accuracy", "事实准确率"),
    ("refusal_accuracy", "拒答准确率"),
    ("citation_precision", "引用精确率"),
    ("groundedness", "有据率"),
)
COMPARISON_METRICS = (
    ("fact_accuracy", "事实准确率"),
    ("refusal_f1", "拒答F1"),
    ("citation_precision", "引用精确率"),
    ("groundedness", "有据率"),
    ("recall@5", "R@5"),
)
CATEGORY_LABELS = {"fact": "事实", "paraphrase": "换个说法", "colloquial": "口语", "multi": "多项",
                   "unanswerable": "无法回答", "near_miss": "差一点", "followup": "追问", "all": "全部"}
PRIMARY = "ours"


def format_cell(value, missing: str = "n/a") -> str:
    """A metric as a table shows it: counts whole, rates to 3 places, ``missing`` where it does not apply."""
    if value is None:
        return missing
    if isinstance(value, int):
        return str(value)
    return f"{value:.0f}" if value >= 10 else f"{value:.3f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def systems_table(summary: dict) -> str:
    """Systems as rows, headline metrics as columns (the CLI prints this too)."""
    rows = [[name] + [format_cell(s["overall"][key]) for key, _ in HEADLINE] for name, s in summary["systems"].items()]
    return markdown_table(["System"] + [title for _, title in HEADLINE], rows)


def category_table(summary: dict, system: str = PRIMARY) -> str:
    by_category = summary["systems"][system]["by_category"]
    rows = [[c] + [format_cell(m[key]) for key, _ in CATEGORY_COLUMNS] for c, m in by_category.items()]
    rows.append(["**all**"] + [format_cell(summary["systems"][system]["overall"][key]) for key, _ in CATEGORY_COLUMNS])
    return markdown_table(["Category"] + [title for _, title in CATEGORY_COLUMNS], rows)


# Why an item failed, by language: report.md speaks English, the staff tab Chinese.
FAILURE_WORDS = {
    "en": ("refused an answerable question", "answered an unanswerable question", "missing ", "not in the cited passages: "),
    "zh": ("拒答了可回答的问题", "回答了不可回答的问题", "缺少：", "引用段落中没有："),
}


def failure_reasons(result, lang: str = "en") -> list[str]:
    """Why one item failed (empty when it passed): refusal errors, missing facts, ungrounded claims."""
    refused, answered, missing, ungrounded = FAILURE_WORDS[lang]
    reasons = []
    if result.item.answerable and result.response.refused:
        reasons.append(refused)
    elif not result.item.answerable and not result.response.refused:
        reasons.append(answered)
    elif result.missing_facts:
        reasons.append(missing + "、".join(result.missing_facts))
    if result.ungrounded:
        reasons.append(ungrounded + "、".join(result.ungrounded))
    return reasons


def render_report(run: EvalRun) -> str:
    """report.md: the systems table, ours per category, then every item ours got wrong."""
    summary = run.summary()
    parts = [
        "# ReportQA evaluation",
        "",
        f"{len(run.items)} questions, run {run.started_at}, {run.duration_s:.0f} s.",
        "Definitions of every metric: `evals/metrics.py`. Rates are in [0, 1]; "
        "n/a means the metric does not apply (e.g. refusal precision of a system that never refuses).",
        "",
        "## Systems",
        "",
        systems_table(summary),
        "",
    ]
    if "langchain" in run.systems:
        parts += ["Retrieval metrics of `langchain` are over its own 500-character chunks, "
                  "so they are not comparable one-to-one with ours (≈220 characters).", ""]
    if PRIMARY in run.systems:
        parts += [f"## `{PRIMARY}` by category", "", category_table(summary), ""]
        failures = [(r, failure_reasons(r)) for r in run.results_of(PRIMARY)]
        failures = [(r, why) for r, why in failures if why]
        parts += [f"## `{PRIMARY}` failures ({len(failures)})", ""]
        for result, why in failures:
            item = result.item
            ours = result.response.answer.replace("\n", " ")
            parts += [
                f"### {item.id} ({item.category}): {'; '.join(why)}",
                "",
                *(f"- Earlier: {turn.question} → {turn.answer}" for turn in item.history),
                f"- Question: {item.question}",
                *([f"- Retrieved as: {result.response.resolved_question}"] if result.response.resolved_question else []),
                f"- Reference: {item.reference_answer}",
                f"- Ours: {ours}",
                "",
            ]
    return "\n".join(parts)


def _grouped_bars(axes, groups: list[str], blocks: list[dict], shown, title: str) -> None:
    """One cluster of bars per group, one bar per metric; n/a is drawn as an empty slot labelled —."""
    import numpy as np

    x = np.arange(len(groups))
    width = 0.8 / len(shown)
    for i, (key, label) in enumerate(shown):
        values = [block.get(key) for block in blocks]
        drawn = axes.bar(x + (i - (len(shown) - 1) / 2) * width, [v or 0.0 for v in values], width, label=label)
        axes.bar_label(drawn, labels=[f"{v:.2f}" if v is not None else "—" for v in values], fontsize=6, padding=1)
    axes.set_xticks(x, groups)
    axes.set_ylim(0, 1.1)
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(len(shown), 4))


def render_chart(run: EvalRun, path: Path | BinaryIO) -> None:
    """chart.png: ours by category (left) and the systems side by side (right), labelled in Chinese."""
    with chinese_charts():
        _draw_chart(run, path)


def _draw_chart(run: EvalRun, path: Path | BinaryIO) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary = run.summary()
    # An explicit Agg canvas, not pyplot: no global backend, no display needed, safe in a server thread.
    figure = Figure(figsize=(14, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, width_ratios=[3, 2])
    if PRIMARY in summary["systems"]:
        ours = summary["systems"][PRIMARY]
        groups = list(ours["by_category"])
        _grouped_bars(left, [CATEGORY_LABELS.get(g, g) for g in groups + ["all"]],
                      [ours["by_category"][g] for g in groups] + [ours["overall"]],
                      CHART_METRICS, f"{PRIMARY}：各类别")
    else:
        left.set_axis_off()
    systems = list(summary["systems"])
    _grouped_bars(right, systems, [summary["systems"][s]["overall"] for s in systems],
                  COMPARISON_METRICS, "各系统总体")
    figure.savefig(path, dpi=120, format="png")


def write_outputs(run: EvalRun, out_dir: Path | str) -> dict[str, Path]:
    """Write the four output files into ``out_dir`` (created if needed); each replaces its old copy whole."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("results.jsonl", "summary.json", "report.md", "chart.png")}
    replace_atomically(paths["results.jsonl"], "".join(json_line(r.to_row()) + "\n" for r in run.results))
    replace_atomically(paths["summary.json"], json.dumps(run.summary(), ensure_ascii=False, indent=2) + "\n")
    replace_atomically(paths["report.md"], render_report(run))
    chart = io.BytesIO()
    render_chart(run, chart)
    replace_atomically(paths["chart.png"], chart.getvalue())
    return paths
