"""The staff side of the page: add an answered question to the evaluation set, run the evaluation, read failures.

The evaluation itself is the ``evals`` package (the same systems, metrics and
output files as ``reportqa eval``); this module only turns its results into
tables and escaped HTML. Formatting lives in small pure functions so it can
be tested without a browser; ``StaffEval`` holds the two paths and the lock
that lets one evaluation run at a time; the ``make_*`` callbacks are thin.
"""
from __future__ import annotations

import html
import json
import os
import logging
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import gradio as gr
import pandas as pd
from pydantic import ValidationError

from evals import (
    CATEGORIES, SYSTEM_NAMES, EvalItem, EvalRun, ItemResult, LoadError, LoadResult, append_item, build_systems,
    load_eval_set, read_sources, run_eval, write_outputs,
)
from evals.report import CATEGORY_COLUMNS, HEADLINE, PRIMARY, failure_reasons, format_cell
from reportqa.errors import ReportQAError
from reportqa.feedback import FeedbackStore
from retrieval.followup import is_follow_up
from retrieval.grounding import CITATION_MARKER, NUMBER, TITLE, answer_body, normalise
from retrieval.models import Answer, Turn

from .auth import StaffSessions, check_password
from .staff_feedback import VOTE_CHOICES, feedback_table, history_turns, make_feedback_refresh, make_pick_row, row_quotes

logger = logging.getLogger(__name__)

ALL = "全部"
PASSED, FAILED, NOT_RUN = "通过", "未通过", "未运行"
RESULT_CHOICES = [ALL, PASSED, FAILED]
CATEGORY_ZH = {"fact": "事实", "paraphrase": "换个说法", "multi": "多项", "unanswerable": "无法回答", "followup": "追问"}
CATEGORY_CHOICES = [(f"{CATEGORY_ZH.get(c, c)}（{c}）", c) for c in CATEGORIES]
REFUSED_REFERENCE = "报告中没有相关内容。"
ID_PREFIX = "staff-"
HISTORY_TURNS = 3  # earlier turns kept with a follow-up; the follow-up resolver reads only the last one

FIELD_ZH = {
    "id": "编号", "question": "问题", "history": "对话历史", "answerable": "可回答", "category": "类别",
    "reference_answer": "参考答案", "required_facts": "必含事实", "evidence": "证据原文",
}
METRIC_ZH = {
    "n_items": "题数", "fact_accuracy": "事实准确率", "refusal_f1": "拒答F1", "refusal_accuracy": "拒答准确率",
    "citation_precision": "引用精确率", "citation_recall": "引用召回率", "groundedness": "有据率",
    "recall@5": "R@5", "mrr@10": "MRR@10", "ndcg@10": "nDCG@10",
    "latency_p50_ms": "p50 毫秒", "latency_p95_ms": "p95 毫秒",
}
SET_COLUMNS = ["编号", "类别", "可回答", "问题", "参考答案", f"结果（{PRIMARY}）"]
GENERIC_ERROR_ZH = "抱歉，系统出了点问题，请稍后再试。"
BUSY_ZH = "已有一次评测正在运行（一次只运行一个），请等它结束后再试。"

STAFF_CSS = """
.rqa-load-errors { border: 1px solid var(--error-border-color, #f5c2c7); border-radius: 6px;
                   padding: .4rem .8rem; margin: .3rem 0; }
.rqa-load-errors ul { margin: .2rem 0; padding-left: 1.2rem; }
.rqa-status { margin: .3rem 0; }
.rqa-status.rqa-ok { color: var(--color-accent); font-weight: 600; }
.rqa-status.rqa-bad { color: var(--error-text-color); }
.rqa-fail { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .6rem .8rem; margin: .6rem 0; }
.rqa-fail-head { font-weight: 600; margin-bottom: .3rem; }
.rqa-fail-head .rqa-fail-why { color: var(--error-text-color); font-weight: 400; margin-left: .5rem; }
.rqa-fail-q { margin: .2rem 0 .4rem 0; }
.rqa-fail-cols { display: grid; grid-template-columns: 1fr 1fr; gap: .8rem; }
.rqa-fail-col h4 { margin: .2rem 0; font-size: .95em; }
.rqa-fail-col p { margin: .2rem 0 .4rem 0; white-space: pre-wrap; }
.rqa-fail-quote { margin: .25rem 0; padding-left: .6rem; border-left: 3px solid var(--border-color-primary);
                  font-size: .92em; }
.rqa-fail-none { color: var(--body-text-color-subdued); }
@media (max-width: 800px) { .rqa-fail-cols { grid-template-columns: 1fr; } }
"""


def _esc(text) -> str:
    return html.escape(str(text or ""), quote=True)


# ---------------------------------------------------------------- add an answered question (pure)

@dataclass
class ItemDraft:
    """The add-to-set form, prefilled from the last answer; staff edit it before adding."""

    id: str
    question: str
    answerable: bool
    category: str
    reference_answer: str
    evidence: list[str] = field(default_factory=list)
    required_facts: list[str] = field(default_factory=list)
    history: list[Turn] = field(default_factory=list)


class ItemRejected(ValueError):
    """The form does not make a valid evaluation item; ``message_zh`` names the field and the fix."""

    def __init__(self, message_zh: str):
        super().__init__(message_zh)
        self.message_zh = message_zh


def strip_markers(text: str) -> str:
    """The answer text without its [n] citation markers."""
    return CITATION_MARKER.sub("", text or "").strip()


def claims_in(text: str) -> list[str]:
    """The 《titles》 and numbers an answer states, in order, as ``evals.metrics`` finds them.

    Numbers inside a title (纲要(2021—2025年)) belong to the title and are not listed twice.
    """
    body = answer_body(text or "")
    titles = list(dict.fromkeys(TITLE.findall(body)))
    outside = TITLE.sub(" ", body)
    numbers = list(dict.fromkeys(NUMBER.findall(outside)))
    return numbers + titles


def next_item_id(path: Path | str, prefix: str = ID_PREFIX) -> str:
    """The next free id like staff-007: one more than the highest staff id in the file."""
    highest = 0
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    try:
        lines = Path(path).read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        match = pattern.match(str(row.get("id", ""))) if isinstance(row, dict) else None
        if match:
            highest = max(highest, int(match.group(1)))
    return f"{prefix}{highest + 1:03d}"


def draft_from_answer(answer: Answer, earlier: Sequence[Turn], item_id: str) -> ItemDraft:
    """The form for ``answer``: our answer as the reference, its quotes as evidence, its claims as facts.

    ``earlier`` are the turns before this question; they become the item's
    history only when the question reads as a follow-up (那2024年呢？), so a
    citizen's fifth unrelated question is not filed as a follow-up of the first four.
    """
    return draft_from_parts(answer.question, answer.text, answer.refused, [c.quote for c in answer.citations],
                            earlier, item_id)


def draft_from_parts(question: str, text: str, refused: bool, quotes: Sequence[str], earlier: Sequence[Turn],
                     item_id: str) -> ItemDraft:
    """``draft_from_answer`` from the pieces an answer leaves behind (as a stored 👎 keeps them)."""
    history = list(earlier)[-HISTORY_TURNS:] if is_follow_up(question) else []
    if refused:
        return ItemDraft(item_id, question, False, "followup" if history else "unanswerable",
                         REFUSED_REFERENCE, history=history)
    evidence = list(dict.fromkeys(q for q in quotes if q.strip()))
    normalized = [normalise(q) for q in evidence]
    facts = [f for f in claims_in(text) if any(f in q for q in normalized)]
    category = "followup" if history else ("multi" if len(evidence) > 1 else "fact")
    return ItemDraft(item_id, question, True, category, strip_markers(text), evidence, facts, history)


def lines_of(text: str | None) -> list[str]:
    """A multi-line form field as a list: one entry per non-blank line, stripped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


# English messages of the set's schema (evals.dataset, pydantic) -> what staff read.
_REASONS_ZH: list[tuple[re.Pattern, str]] = [(re.compile(p), zh) for p, zh in [
    (r"^Field required", "缺少此项"),
    (r"^Extra inputs are not permitted", "不认识的字段，请删除"),
    (r"^String should have at least 1 character", "不能为空"),
    (r"^String should have at most (\d+) characters?", r"太长，最多 \1 字"),
    (r"^List should have at most (\d+) items?", r"条目太多，最多 \1 条"),
    (r"^Input should be 'fact'", "只能是 " + "、".join(CATEGORIES) + " 之一"),
    (r"^Input should be a valid boolean", "应为 true 或 false"),
    (r"^Input should be a valid string", "应为文字"),
    (r"^Input should be a valid list", "应为列表"),
    (r"^category 'unanswerable' needs answerable false", "类别为 unanswerable 时，“可回答”不能勾选"),
    (r"^an answerable item needs at least one required fact", "可回答的题目至少要有一条必含事实"),
    (r"^an unanswerable item has no required facts", "不可回答的题目不能有必含事实，请清空"),
    (r"^a required fact is empty", "有一条必含事实是空的"),
    (r"^an answerable item needs at least one evidence quote", "可回答的题目至少要有一条证据原文"),
    (r"^an unanswerable item has no evidence", "不可回答的题目不能有证据原文，请清空"),
    (r"^an evidence quote is empty", "有一条证据原文是空的"),
    (r"^required fact (.+) is in none of the evidence quotes", r"必含事实 \1 不在任何一条证据原文中"),
    (r"^not valid JSON", "不是有效的 JSON"),
    (r"^expected a JSON object", "应为一个 JSON 对象"),
    (r"^duplicate id (.+) \(first on line (\d+)\)", r"编号 \1 重复（第 \2 行已有）"),
    (r"^not valid UTF-8", "不是 UTF-8 编码，请另存为 UTF-8"),
]]


def reason_zh(message: str) -> str:
    """A schema message in Chinese; an unknown one is kept as it is."""
    for pattern, zh in _REASONS_ZH:
        match = pattern.match(message)
        if match:
            return match.expand(zh)
    return message


def field_zh(name: str | None) -> str:
    """“证据原文”（evidence） for a field name; nested names (history.0.answer) keep their path."""
    if not name:
        return ""
    head = name.split(".")[0]
    return f"“{FIELD_ZH[head]}”（{name}）" if head in FIELD_ZH else f"“{name}”"


def validation_message_zh(exc: ValidationError) -> str:
    """Every problem of a rejected item, each naming its field."""
    parts = []
    for err in exc.errors():
        name = ".".join(str(part) for part in err["loc"])
        parts.append(f"{field_zh(name)}：{reason_zh(err['msg'].removeprefix('Value error, '))}")
    return "；".join(parts)


def item_from_form(item_id: str, question: str, answerable: bool, category: str | None, reference_answer: str,
                   evidence_text: str, facts_text: str, history: Sequence[Turn] = ()) -> EvalItem:
    """The form as an ``EvalItem``; raises ItemRejected with a Chinese message naming the bad field."""
    row = {
        "id": (item_id or "").strip(),
        "question": (question or "").strip(),
        "history": [asdict(turn) for turn in history],
        "answerable": bool(answerable),
        "category": category or "",
        "reference_answer": (reference_answer or "").strip(),
        "required_facts": lines_of(facts_text),
        "evidence": lines_of(evidence_text),
    }
    try:
        return EvalItem.model_validate(row)
    except ValidationError as exc:
        raise ItemRejected(validation_message_zh(exc)) from None


def check_evidence_verbatim(item: EvalItem, sources: dict[str, str]) -> None:
    """Each evidence quote must be copied from a report (compared NFKC, as the metrics compare)."""
    texts = [normalise(t) for t in sources.values()]
    for n, quote in enumerate(item.evidence, start=1):
        if not any(normalise(quote) in t for t in texts):
            raise ItemRejected(f"{field_zh('evidence')}：第 {n} 行在报告中找不到，请逐字复制报告原文（{quote[:30]}…）")


# ---------------------------------------------------------------- the set as a table (pure)

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


# ---------------------------------------------------------------- results (pure)

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


# ---------------------------------------------------------------- the domain side

class EvalBusy(RuntimeError):
    """An evaluation is already running."""


@dataclass
class EvalOutcome:
    """One finished evaluation: its results, the files written, and the set as it was loaded."""

    run: EvalRun
    paths: dict[str, Path]
    loaded: LoadResult


class StaffEval:
    """Where the set and the output files live, and the lock that lets one evaluation run at a time."""

    def __init__(self, qa, eval_set_path: Path | str, eval_out_dir: Path | str,
                 systems: Sequence[str] = SYSTEM_NAMES, allows: Callable[[object], bool] = bool):
        self.qa = qa
        # Whether a session may see and change staff data: in the app, ui.auth.StaffSessions.valid on the
        # session's token; a plain truth test where tests call the callbacks directly.
        self.allows = allows
        self.eval_set_path = Path(eval_set_path)
        self.eval_out_dir = Path(eval_out_dir)
        self.systems = tuple(systems)
        self.run_lock = threading.Lock()

    def load(self) -> LoadResult:
        """The set as it is on disk now; an empty result when the file does not exist yet."""
        if not self.eval_set_path.exists():
            return LoadResult()
        return load_eval_set(self.eval_set_path)

    def add(self, item: EvalItem) -> EvalItem:
        """Check the quotes against the report and append ``item`` atomically; ItemRejected if it cannot be."""
        check_evidence_verbatim(item, read_sources(self.qa))
        try:
            return append_item(self.eval_set_path, item)
        except ValueError:  # the only ValueError append_item raises for a valid item: its id is taken
            raise ItemRejected(f"{field_zh('id')}：{item.id} 已在评测集中，请换一个"
                               f"（例如 {next_item_id(self.eval_set_path)}）") from None

    def run(self, progress: Callable[[int, int, str], None] = lambda done, total, system: None) -> EvalOutcome:
        """Evaluate every valid item with every system and write the output files, as ``reportqa eval`` does.

        Raises:
            EvalBusy: another evaluation holds the lock.
            ReportQAError: the set has no valid item, or the index cannot be loaded.
        """
        if not self.run_lock.acquire(blocking=False):
            raise EvalBusy(BUSY_ZH)
        try:
            loaded = self.load()
            if not loaded.items:
                raise ReportQAError(f"{self.eval_set_path} has no valid items to evaluate",
                                    f"评测集 {self.eval_set_path.name} 中没有可用的题目。")
            built = build_systems(self.systems, self.qa.settings, self.qa)
            total = len(loaded.items) * len(built)
            done = 0

            def advance(result: ItemResult) -> None:
                nonlocal done
                done += 1
                progress(done, total, result.system)

            run = run_eval(loaded.items, built, progress=advance, sources=read_sources(self.qa))
            paths = write_outputs(run, self.eval_out_dir)
            return EvalOutcome(run, paths, loaded)
        finally:
            self.run_lock.release()


# ---------------------------------------------------------------- callbacks (thin)

def _warn(message_zh: str) -> None:
    gr.Warning(_esc(message_zh), title="提示")


def _skip(n: int) -> tuple:
    return tuple(gr.skip() for _ in range(n))


def make_refresh_callback(staff: StaffEval):
    """(category, result, passed) -> (errors html, set table, items)."""

    def refresh(category: str, result: str, passed: dict | None):
        passed = passed or {}
        try:
            loaded = staff.load()
        except OSError as exc:
            _warn(f"无法读取评测集 {staff.eval_set_path}：{exc.strerror or exc}")
            return _skip(3)
        notice = load_errors_html(loaded.errors, staff.eval_set_path)
        if not staff.eval_set_path.exists():
            notice = status_html(f"评测集文件还不存在：{staff.eval_set_path}。在“市民问答”里加入第一题时会自动创建。", ok=False)
        return notice, set_table(filter_items(loaded.items, passed, category, result), passed), loaded.items

    return refresh


def make_filter_callback():
    """(items, passed, category, result) -> set table."""

    def filter_table(items: list | None, passed: dict | None, category: str, result: str) -> pd.DataFrame:
        return set_table(filter_items(items or [], passed or {}, category, result), passed or {})

    return filter_table


# Outputs of the run callback, in order (the tests read them by name).
RUN_OUTPUTS = ("status", "errors", "table", "items", "passed", "summary", "categories", "chart", "failures")


def _chart_image(path: Path):
    """The chart as an in-memory image: Gradio then serves it from its own cache, wherever out_dir is."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.copy()


def make_run_callback(staff: StaffEval):
    """(category, result) -> RUN_OUTPUTS, with a progress bar; a second run while one is going only warns."""

    def run(category: str, result: str, progress=gr.Progress()):
        progress(0, desc="正在准备评测…")
        try:
            outcome = staff.run(lambda done, total, system: progress((done, total), desc=f"正在评测 {system}",
                                                                       unit="题"))
        except EvalBusy:
            _warn(BUSY_ZH)
            return _skip(len(RUN_OUTPUTS))
        except ReportQAError as exc:
            _warn(exc.message_zh)
            return (status_html(exc.message_zh, ok=False), *_skip(len(RUN_OUTPUTS) - 1))
        except OSError as exc:
            message = f"无法写入评测结果到 {staff.eval_out_dir}：{exc.strerror or exc}"
            _warn(message)
            return (status_html(message, ok=False), *_skip(len(RUN_OUTPUTS) - 1))
        except Exception:
            logger.exception("evaluation run failed")
            _warn(GENERIC_ERROR_ZH)
            return (status_html(GENERIC_ERROR_ZH, ok=False), *_skip(len(RUN_OUTPUTS) - 1))
        run_, items = outcome.run, outcome.loaded.items
        passed = passed_by_id(run_)
        n_failed = sum(not ok for ok in passed.values())
        status = (f"完成：{len(items)} 题 × {len(run_.systems)} 个系统，用时 {run_.duration_s:.0f} 秒；"
                  f"{PRIMARY} 未通过 {n_failed} 题。结果文件在 {staff.eval_out_dir}")
        return (
            status_html(status),
            load_errors_html(outcome.loaded.errors, staff.eval_set_path),
            set_table(filter_items(items, passed, category, result), passed),
            items,
            passed,
            summary_table(run_.summary()),
            category_table(run_.summary()),
            _chart_image(outcome.paths["chart.png"]),
            failures_html(run_),
        )

    return run


def make_prefill_callback(staff: StaffEval):
    """(last answer, earlier turns) -> the add form's fields; nothing changes when there is no new answer."""

    def prefill(last: dict | None):
        if not last:
            return _skip(10)
        item_id = next_item_id(staff.eval_set_path)
        if "feedback" in last:  # a stored 👎 (ui.staff_feedback): the answer's text and quotes, not an Answer
            row = last["feedback"]
            draft = draft_from_parts(row.question, row.answer, row.refused, row_quotes(row), history_turns(row),
                                     item_id)
        else:
            draft = draft_from_answer(last["answer"], last["earlier"], item_id)
        earlier = "".join(f"<li>问：{_esc(t.question)}<br>答：{_esc(t.answer)}</li>" for t in draft.history)
        history_html = (f'<div class="rqa-meta">前文（追问所依据的对话）：<ul>{earlier}</ul></div>'
                        if draft.history else "")
        return (draft.id, draft.question, draft.answerable, draft.category, draft.reference_answer,
                "\n".join(draft.evidence), "\n".join(draft.required_facts), draft.history,
                gr.update(value=bool(draft.history), visible=bool(draft.history)), history_html)

    return prefill


def make_add_callback(staff: StaffEval):
    """The add form -> (status html, next id). Nothing is written unless the item is valid."""

    def add(item_id, question, answerable, category, reference_answer, evidence_text, facts_text, history,
            with_history):
        try:
            item = item_from_form(item_id, question, answerable, category, reference_answer, evidence_text,
                                  facts_text, (history or []) if with_history else [])
            staff.add(item)
        except ItemRejected as exc:
            _warn(exc.message_zh)
            return status_html(exc.message_zh, ok=False), gr.skip()
        except ReportQAError as exc:
            _warn(exc.message_zh)
            return status_html(exc.message_zh, ok=False), gr.skip()
        except OSError as exc:
            message = f"无法写入评测集 {staff.eval_set_path}：{exc.strerror or exc}"
            _warn(message)
            return status_html(message, ok=False), gr.skip()
        except Exception:
            logger.exception("adding an evaluation item failed")
            _warn(GENERIC_ERROR_ZH)
            return status_html(GENERIC_ERROR_ZH, ok=False), gr.skip()
        return status_html(f"已加入：{item.id}"), next_item_id(staff.eval_set_path)

    return add


# ---------------------------------------------------------------- layout

def _gated(staff: StaffEval, fn: Callable, n_outputs: int, warn: bool = True) -> Callable:
    """``fn`` behind the staff session: the event's first input is the session's token (a server-side
    ``gr.State``); for a session that has not logged in (or whose login expired) nothing is read or written."""

    def gated(session, *args):
        if not staff.allows(session):
            if warn:
                _warn(LOGIN_FIRST_ZH)
            return _skip(n_outputs) if n_outputs != 1 else gr.skip()
        return fn(*args)

    return gated


def build_add_form(staff: StaffEval, last_answer: gr.State, session: gr.State, title: str = "加入评测集（工作人员）",
                   elem_prefix: str = "rqa-add", visible: bool = True):
    """The closed accordion of the add-to-set form. Returns (the accordion, the ``.then(**...)`` arguments
    that prefill it from ``last_answer``); chain those after every event that answers a question.
    Both prefilling and 加入评测集 check the staff ``session`` (its token State) first."""
    with gr.Accordion(title, open=False, visible=visible, elem_id=elem_prefix) as accordion:
        gr.Markdown("把问题加入评测集。已按回答预填，请核对修改后再加入；证据原文和必含事实每行一条。")
        history = gr.State([])
        history_html = gr.HTML()
        with_history = gr.Checkbox(value=False, visible=False, label="连同前文一起加入（追问）",
                                   elem_id=f"{elem_prefix}-with-history")
        with gr.Row():
            item_id = gr.Textbox(label="编号", scale=1, elem_id=f"{elem_prefix}-id")
            category = gr.Dropdown(CATEGORY_CHOICES, value="fact", label="类别", scale=1,
                                   elem_id=f"{elem_prefix}-category")
            answerable = gr.Checkbox(value=True, label="可回答（报告中有答案）", scale=1,
                                     elem_id=f"{elem_prefix}-answerable")
        question = gr.Textbox(label="问题", elem_id=f"{elem_prefix}-question")
        reference = gr.Textbox(label="参考答案", lines=2, elem_id=f"{elem_prefix}-reference")
        evidence = gr.Textbox(label="证据原文（逐字摘自报告，每行一条）", lines=3, elem_id=f"{elem_prefix}-evidence")
        facts = gr.Textbox(label="必含事实（回答中必须逐字出现，每行一条）", lines=2, elem_id=f"{elem_prefix}-facts")
        add = gr.Button("加入评测集", variant="secondary", elem_id=f"{elem_prefix}-button")
        status = gr.HTML(elem_id=f"{elem_prefix}-status")

    fields = [item_id, question, answerable, category, reference, evidence, facts]
    add.click(_gated(staff, make_add_callback(staff), 2), inputs=[session, *fields, history, with_history],
              outputs=[status, item_id], api_visibility="private")
    prefill_outputs = [*fields, history, with_history, history_html]
    return accordion, dict(fn=_gated(staff, make_prefill_callback(staff), len(prefill_outputs), warn=False),
                           inputs=[session, last_answer], outputs=prefill_outputs, api_visibility="private")


# ---------------------------------------------------------------- staff login

STAFF_USER_ENV, STAFF_PASSWORD_ENV = "REPORTQA_STAFF_USER", "REPORTQA_STAFF_PASSWORD"
LOGIN_FAILED_ZH = "用户名或密码不正确。"
LOGIN_WAIT_ZH = "登录失败次数过多，请 {seconds} 秒后再试。"
LOGIN_FIRST_ZH = "请先在“工作人员”页登录（登录 30 分钟无操作或 8 小时后需重新登录）。"
LOGGED_OUT_ZH = "已退出登录。"
NOT_CONFIGURED_ZH = (f"工作人员页面尚未启用。请在启动服务前设置环境变量 {STAFF_USER_ENV}（用户名）和 "
                     f"{STAFF_PASSWORD_ENV}（密码），然后重新启动，例如：{STAFF_USER_ENV}=admin "
                     f"{STAFF_PASSWORD_ENV}=一个足够长的密码 reportqa serve")


def staff_credentials(environ=None) -> tuple[str, str] | None:
    """(user, password) from REPORTQA_STAFF_USER / REPORTQA_STAFF_PASSWORD, or None when either is unset.

    Read here, in one place, because ``reportqa/config.py`` is not the UI's to change; it belongs in Settings.
    """
    env = os.environ if environ is None else environ
    user, password = env.get(STAFF_USER_ENV, ""), env.get(STAFF_PASSWORD_ENV, "")
    return (user, password) if user and password else None


check_login = check_password  # (credentials, user, password) -> bool, compared in constant time


def _client(request: gr.Request | None) -> str:
    """The address a request came from, for the login back-off and the log."""
    client = getattr(request, "client", None)
    return str(getattr(client, "host", "") or "unknown")


def build_staff_tab(demo: gr.Blocks, staff: StaffEval, sessions: StaffSessions, session: gr.State,
                    feedback: FeedbackStore | None = None, reveal: Sequence[gr.components.Component] = ()) -> gr.Tab:
    """The 工作人员 tab, behind a login: 评测 (the set as a filterable table, 运行评测 with a progress bar,
    the results) and 反馈 (citizens' votes, export, a 👎 into the set). ``session`` holds the token of the
    browser session's login (``ui.auth.StaffSessions``); ``reveal`` are shown on login, hidden on logout."""
    with gr.Tab("工作人员", id="staff", elem_id="rqa-staff") as tab:
        if not sessions.enabled:
            gr.HTML(status_html(NOT_CONFIGURED_ZH, ok=False), elem_id="rqa-staff-locked")
        with gr.Column(visible=sessions.enabled, elem_id="rqa-login") as login_box:
            gr.HTML('<p class="rqa-meta">工作人员页面需要登录（市民问答无需登录）。</p>')
            with gr.Row():
                user = gr.Textbox(label="用户名", max_lines=1, elem_id="rqa-login-user")
                password = gr.Textbox(label="密码", type="password", max_lines=1, elem_id="rqa-login-password")
            login = gr.Button("登录", variant="primary", elem_id="rqa-login-button")
            login_status = gr.HTML(elem_id="rqa-login-status")
        with gr.Column(visible=False, elem_id="rqa-staff-content") as content:
            with gr.Row():
                gr.HTML('<p class="rqa-meta">已登录为工作人员。</p>', padding=False)
                logout = gr.Button("退出登录", size="sm", scale=0, min_width=100, elem_id="rqa-logout")
            with gr.Tabs():
                with gr.Tab("评测", id="staff-eval", elem_id="rqa-staff-eval"):
                    refresh_io, eval_clear = _build_eval_view(staff, session)
                with gr.Tab("反馈", id="staff-feedback", elem_id="rqa-staff-feedback"):
                    feedback_io, feedback_clear = _build_feedback_view(staff, feedback, session)

    def log_in(user_name: str, secret: str, request: gr.Request):
        outcome = sessions.log_in(user_name, secret, _client(request))
        if outcome.token is None:
            message = (LOGIN_WAIT_ZH.format(seconds=max(1, round(outcome.wait_s))) if outcome.wait_s
                       else LOGIN_FAILED_ZH)
            _warn(message)
            return (gr.skip(), gr.skip(), gr.skip(), status_html(message, ok=False), "",
                    *(gr.skip() for _ in reveal))
        return (outcome.token, gr.update(visible=False), gr.update(visible=True), "", "",
                *(gr.update(visible=True) for _ in reveal))

    login_event = dict(fn=log_in, inputs=[user, password],
                       outputs=[session, login_box, content, login_status, password, *reveal], api_visibility="private")
    done = login.click(**login_event)
    done_enter = password.submit(**login_event)
    for event in (done, done_enter):
        event.then(**refresh_io).then(**feedback_io)
    tab.select(**refresh_io)

    cleared = [*eval_clear, *feedback_clear]  # (component, its empty value): staff data off the page

    def log_out(token):
        sessions.log_out(token)
        return (None, gr.update(visible=sessions.enabled), gr.update(visible=False), status_html(LOGGED_OUT_ZH),
                *(gr.update(visible=False) for _ in reveal), *(value for _, value in cleared))

    logout.click(log_out, inputs=[session],
                 outputs=[session, login_box, content, login_status, *reveal, *(c for c, _ in cleared)],
                 api_visibility="private")
    return tab


def _build_eval_view(staff: StaffEval, session: gr.State) -> tuple[dict, list]:
    """The evaluation: returns the arguments of the event that reloads the set table, and the
    (component, empty value) pairs a logout resets."""
    where = gr.HTML(elem_id="rqa-eval-paths")  # filled after login: server paths are for staff only
    items = gr.State([])
    passed = gr.State({})
    errors = gr.HTML(elem_id="rqa-load-errors")
    with gr.Row():
        category = gr.Dropdown([(ALL, ALL), *CATEGORY_CHOICES], value=ALL, label="类别", scale=1)
        result = gr.Dropdown(RESULT_CHOICES, value=ALL, label=f"结果（{PRIMARY}）", scale=1)
        reload = gr.Button("重新载入", scale=0, min_width=100)
        run = gr.Button("运行评测", variant="primary", scale=0, min_width=120, elem_id="rqa-run-eval")
    table = gr.Dataframe(value=set_table([], {}), label="评测集", interactive=False, wrap=True, max_height=420,
                         latex_delimiters=[], column_widths=["9%", "9%", "6%", "30%", "36%", "10%"],
                         elem_id="rqa-set-table")
    status = gr.HTML(elem_id="rqa-run-status")
    summary = gr.Dataframe(label="各系统总体指标（— 表示不适用）", interactive=False, latex_delimiters=[],
                           elem_id="rqa-summary")
    categories = gr.Dataframe(label=f"{PRIMARY} 分类别指标", interactive=False, latex_delimiters=[],
                              elem_id="rqa-categories")
    chart = gr.Image(label="图表", format="png", type="pil", interactive=False,
                     buttons=["download", "fullscreen"], elem_id="rqa-chart")
    failures = gr.HTML(elem_id="rqa-failures", max_height=900)

    refresh_fn, run_fn = make_refresh_callback(staff), make_run_callback(staff)

    def refresh(category_: str, result_: str, passed_: dict | None):
        return (eval_paths_html(staff), *refresh_fn(category_, result_, passed_))

    # Every staff callback checks the session's login, not only the page's visibility.
    def run_gated(token, category_: str, result_: str, progress=gr.Progress()):
        if not staff.allows(token):
            _warn(LOGIN_FIRST_ZH)
            return _skip(len(RUN_OUTPUTS))
        return run_fn(category_, result_, progress)

    refresh_io = dict(fn=_gated(staff, refresh, 4, warn=False), inputs=[session, category, result, passed],
                      outputs=[where, errors, table, items], api_visibility="private")
    reload.click(**refresh_io)
    filter_io = dict(inputs=[session, items, passed, category, result], outputs=[table], api_visibility="private")
    category.change(_gated(staff, make_filter_callback(), 1, warn=False), **filter_io)
    result.change(_gated(staff, make_filter_callback(), 1, warn=False), **filter_io)
    run_outputs = dict(status=status, errors=errors, table=table, items=items, passed=passed, summary=summary,
                       categories=categories, chart=chart, failures=failures)
    # No queue limit here: a second click must reach the lock and be told a run is going, not wait behind it.
    run.click(run_gated, inputs=[session, category, result], outputs=[run_outputs[n] for n in RUN_OUTPUTS],
              concurrency_limit=None, api_visibility="private")
    cleared = [(where, ""), (errors, ""), (table, set_table([], {})), (items, []), (passed, {}), (status, ""),
               (summary, None), (categories, None), (chart, None), (failures, "")]
    return refresh_io, cleared


def eval_paths_html(staff: StaffEval) -> str:
    return (f'<p class="rqa-meta">评测集：{_esc(staff.eval_set_path)} · 结果文件：{_esc(staff.eval_out_dir)} · '
            f"对比系统：{_esc('、'.join(staff.systems))}</p>")


def _build_feedback_view(staff: StaffEval, store: FeedbackStore | None, session: gr.State) -> tuple[dict, list]:
    """Citizens' votes: filters, the table, CSV/JSONL export, and a 👎 into the add form.
    Returns the arguments of the event that reloads the table, and what a logout resets."""
    store = store or FeedbackStore(Path(staff.qa.settings.data_dir) / "feedback.db")
    where = gr.HTML(elem_id="rqa-fb-path")  # filled after login
    with gr.Row():
        vote = gr.Dropdown(VOTE_CHOICES, value=ALL, label="评价", scale=1, elem_id="rqa-fb-vote")
        since = gr.Textbox(label="起始日期", placeholder="YYYY-MM-DD", max_lines=1, scale=1, elem_id="rqa-fb-since")
        until = gr.Textbox(label="截止日期", placeholder="YYYY-MM-DD", max_lines=1, scale=1, elem_id="rqa-fb-until")
        reload = gr.Button("筛选 / 刷新", scale=0, min_width=110, elem_id="rqa-fb-reload")
    table = gr.Dataframe(value=feedback_table([]), label="反馈（最新在前；点一行可选中其编号）", interactive=False,
                         wrap=True, max_height=420, latex_delimiters=[], elem_id="rqa-fb-table")
    with gr.Row():
        csv_file = gr.DownloadButton("导出 CSV", value=None, size="sm", elem_id="rqa-fb-csv")
        jsonl_file = gr.DownloadButton("导出 JSONL", value=None, size="sm", elem_id="rqa-fb-jsonl")
    rows = gr.State({})
    with gr.Row():
        row_id = gr.Number(label="反馈编号", precision=0, scale=1, elem_id="rqa-fb-id")
        to_set = gr.Button("用这条 👎 反馈预填“加入评测集”", scale=2, elem_id="rqa-fb-to-set")
    picked = gr.State(None)
    form, prefill_io = build_add_form(staff, picked, session, title="加入评测集（由反馈预填）",
                                      elem_prefix="rqa-fb-add")

    def choose(by_id: dict | None, chosen):
        row = (by_id or {}).get(int(chosen)) if chosen is not None else None
        if row is None:
            _warn("请先在表格中选一条反馈（填写或点选它的编号）。")
            return gr.skip(), gr.skip()
        if row.vote != "down":
            _warn("只有 👎 的反馈需要加入评测集；这条是 👍。")
            return gr.skip(), gr.skip()
        return {"feedback": row}, gr.update(open=True)

    # Exports go beside Gradio's own temp files (GRADIO_TEMP_DIR when set), which are served from there.
    feedback_refresh = make_feedback_refresh(store, os.environ.get("GRADIO_TEMP_DIR") or None, allows=staff.allows)

    def refresh(token, vote_: str, since_: str, until_: str):
        shown = feedback_refresh(token, vote_, since_, until_)
        path = (f'<p class="rqa-meta">反馈数据库：{_esc(store.path)}</p>' if staff.allows(token) else gr.skip())
        return (path, *shown)

    refresh_io = dict(fn=refresh, inputs=[session, vote, since, until],
                      outputs=[where, table, rows, csv_file, jsonl_file], api_visibility="private")
    reload.click(**refresh_io)
    vote.change(**refresh_io)
    table.select(_gated(staff, make_pick_row(), 1, warn=False), inputs=[session, table], outputs=[row_id],
                 api_visibility="private")
    to_set.click(_gated(staff, choose, 2), inputs=[session, rows, row_id], outputs=[picked, form],
                 api_visibility="private").then(**prefill_io)
    cleared = [(where, ""), (table, feedback_table([])), (rows, {}), (csv_file, None), (jsonl_file, None),
               (picked, None)]
    return refresh_io, cleared


__all__ = [
    "StaffEval", "ItemDraft", "ItemRejected", "EvalBusy", "draft_from_answer", "item_from_form", "next_item_id",
    "claims_in", "strip_markers", "filter_items", "set_table", "summary_table", "category_table",
    "failure_reasons_zh", "failure_card_html", "failures_html", "load_errors_html", "build_add_form",
    "build_staff_tab", "staff_credentials", "check_login", "draft_from_parts", "make_run_callback", "make_add_callback", "make_prefill_callback", "RUN_OUTPUTS", "STAFF_CSS",
]
