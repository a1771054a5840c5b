"""The evaluation as staff read it: the set as a table, the metrics tables and each failure side by side.

Pure formatting (pandas tables and escaped HTML) of ``evals`` results; the layout is ``ui.staff_eval``'s.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from core.text import strip_markers
from evals import CATEGORIES, EvalItem, EvalRun, ItemResult, LoadError
from evals.drafts import field_zh, reason_zh
from evals.report import CATEGORY_COLUMNS, HEADLINE, PRIMARY, failure_reasons, format_cell

from .page import esc as _esc

ALL = "全部"

PASSED, FAILED, NOT_RUN = "通过", "未通过", "未运行"


RESULT_CHOICES = [ALL, PASSED, FAILED]
CATEGORY_ZH = {"fact": "事实", "paraphrase": "换个说法", "multi": "多项", "unanswerable": "无法回答", "followup": "追问"}


CATEGORY_CHOICES = [(f"{CATEGORY_ZH.get(c, c)}（{c}）", c) for c in CATEGORIES]
METRIC_ZH = {
    "n_items": "题数", "fact_accuracy": "事实准确率", "refusal_f1": "拒答F1", "refusal_accuracy": "拒答准确率",
    "citation_precision": "引用精确率", "citation_recall": "引用召回率", "groundedness": "有据率",
    "recall@5": "R@5", "mrr@10": "MRR@10", "ndcg@10": "nDCG@10",
    "latency_p50_ms": "p50 毫秒", "latency_p95_ms": "p95 毫秒",
}


SET_COLUMNS = ["编号", "类别", "可回答", "问题", "参考答案", f"结果（{PRIMARY}）"]


def load_errors_html(errors: Sequence[LoadError], path: Path | str) -> str:
    """The lines of the set that were skipped, each with its line number and field; empty when none."""
    if not errors:
        return ""
    items = "".join(
        f"<li>第 {int(e.line)} 行{('，' + _esc(field_zh(e.field))) if e.field else ''}：{_esc(reason_zh(e.message))}</li>"
        for e in errors
    )
    return (f'<div class="rqa-load-errors"><strong>⚠ {_esc(Path(path).name)} 中有 {len(errors)} 处错误，'
            f"这些行没有载入（其余题目照常显示）：</strong><ul>{items}</ul></div>")


def result_label(item_id: str, passed: dict[str, bool]) -> str:
    if item_id not in passed:
        return NOT_RUN
    return PASSED if passed[item_id] else FAILED


def filter_items(items: Sequence[EvalItem], passed: dict[str, bool], category: str = ALL,
                 result: str = ALL) -> list[EvalItem]:
    """The items of ``category`` (or all) whose last result is ``result`` (通过/未通过, or all)."""
    return [
        item for item in items
        if (category in (ALL, None, "") or item.category == category)
        and (result in (ALL, None, "") or result_label(item.id, passed) == result)
    ]


def set_table(items: Sequence[EvalItem], passed: dict[str, bool]) -> pd.DataFrame:
    rows = [[item.id, item.category, "是" if item.answerable else "否", item.question, item.reference_answer,
             result_label(item.id, passed)] for item in items]
    return pd.DataFrame(rows, columns=SET_COLUMNS)


def _cell(value) -> str:
    return format_cell(value, missing="—")


def summary_table(summary: dict) -> pd.DataFrame:
    """Systems as rows, the report's headline metrics as columns (— where a metric does not apply)."""
    columns = ["系统"] + [METRIC_ZH.get(key, title) for key, title in HEADLINE]
    rows = [[name] + [_cell(s["overall"].get(key)) for key, _ in HEADLINE] for name, s in summary["systems"].items()]
    return pd.DataFrame(rows, columns=columns)


def category_table(summary: dict, system: str = PRIMARY) -> pd.DataFrame:
    """One system's metrics per category, then over all items."""
    columns = ["类别"] + [METRIC_ZH.get(key, title) for key, title in CATEGORY_COLUMNS]
    block = summary["systems"].get(system)
    if block is None:
        return pd.DataFrame([], columns=columns)
    rows = [[c] + [_cell(m.get(key)) for key, _ in CATEGORY_COLUMNS] for c, m in block["by_category"].items()]
    rows.append([ALL] + [_cell(block["overall"].get(key)) for key, _ in CATEGORY_COLUMNS])
    return pd.DataFrame(rows, columns=columns)


def failure_reasons_zh(result: ItemResult) -> list[str]:
    """Why an item failed, in Chinese; empty when it passed. Same rules as report.md's failure list."""
    return failure_reasons(result, "zh")


def passed_by_id(run: EvalRun, system: str = PRIMARY) -> dict[str, bool]:
    return {r.item.id: not failure_reasons_zh(r) for r in run.results_of(system)}


def _marked(text: str, quote: str) -> str:
    """``text`` escaped, with ``quote`` (when found) wrapped in <mark>."""
    at = text.find(quote) if quote else -1
    if at < 0:
        return _esc(text)
    return f"{_esc(text[:at])}<mark>{_esc(quote)}</mark>{_esc(text[at + len(quote):])}"


def failure_card_html(result: ItemResult) -> str:
    """One failed item side by side: the reference and its evidence | our answer and the passages it cited."""
    item, response = result.item, result.response
    why = "；".join(failure_reasons_zh(result))
    earlier = "".join(f'<div class="rqa-meta">前文 · 问：{_esc(t.question)} 答：{_esc(t.answer)}</div>'
                      for t in item.history)
    resolved = (f'<div class="rqa-meta">检索用问题：{_esc(response.resolved_question)}</div>'
                if response.resolved_question else "")
    evidence = "".join(f'<div class="rqa-fail-quote">{_esc(q)}</div>' for q in item.evidence) \
        or '<p class="rqa-fail-none">（无：不可回答）</p>'
    cited = "".join(f'<div class="rqa-fail-quote">{_marked(c.passage.text, c.quote)}</div>'
                    for c in response.citations) \
        or '<p class="rqa-fail-none">（未引用任何段落）</p>'
    ours = ("（拒答）" if response.refused else "") + strip_markers(response.answer)
    return (
        '<div class="rqa-fail">'
        f'<div class="rqa-fail-head">{_esc(item.id)} · {_esc(item.category)}'
        f'<span class="rqa-fail-why">{_esc(why)}</span></div>'
        f'{earlier}<div class="rqa-fail-q">问题：{_esc(item.question)}</div>{resolved}'
        '<div class="rqa-fail-cols">'
        f'<div class="rqa-fail-col"><h4>参考答案</h4><p>{_esc(item.reference_answer)}</p>'
        f"<h4>证据原文</h4>{evidence}</div>"
        f'<div class="rqa-fail-col"><h4>我们的回答</h4><p>{_esc(ours)}</p>'
        f"<h4>引用的段落</h4>{cited}</div>"
        "</div></div>"
    )


def failures_html(run: EvalRun, system: str = PRIMARY) -> str:
    failed = [r for r in run.results_of(system) if failure_reasons_zh(r)]
    if not failed:
        return f'<p class="rqa-status rqa-ok">{_esc(system)} 全部通过，没有失败的题目。</p>'
    head = f"<h3>{_esc(system)} 未通过的题目（{len(failed)}）</h3>"
    return head + "".join(failure_card_html(r) for r in failed)


def status_html(message_zh: str, ok: bool = True) -> str:
    return f'<p class="rqa-status {"rqa-ok" if ok else "rqa-bad"}">{_esc(message_zh)}</p>'
