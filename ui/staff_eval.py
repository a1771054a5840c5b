"""The staff's evaluation view: the set, 运行评测 with a progress bar (one run at a time), the results.

The evaluation itself is ``evals`` (the same systems, metrics and output files
as ``reportqa eval``); ``StaffEval`` holds the paths, the lock and the staff
session check every staff event goes through (``gated``).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import gradio as gr
import pandas as pd

from core.errors import ReportQAError
from evals import (
    SYSTEM_NAMES,
    EvalItem,
    EvalRun,
    ItemResult,
    LoadResult,
    append_item,
    build_systems,
    load_eval_set,
    read_sources,
    run_eval,
    write_outputs,
)
from evals.drafts import ItemRejected, check_evidence_verbatim, field_zh, next_item_id
from evals.report import PRIMARY

from .page import GENERIC_ERROR_ZH, esc as _esc, skip as _skip, warn as _warn
from .staff_tables import (
    ALL,
    CATEGORY_CHOICES,
    RESULT_CHOICES,
    category_table,
    failures_html,
    filter_items,
    load_errors_html,
    passed_by_id,
    set_table,
    status_html,
    summary_table,
)

logger = logging.getLogger(__name__)


BUSY_ZH = "已有一次评测正在运行（一次只运行一个），请等它结束后再试。"
LOGIN_FIRST_ZH = "请先在“工作人员”页登录（登录 30 分钟无操作或 8 小时后需重新登录）。"


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
            built = build_systems(self.systems, self.qa)
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


def gated(staff: StaffEval, fn: Callable, n_outputs: int, warn: bool = True) -> Callable:
    """``fn`` behind the staff session: the event's first input is the session's token (a server-side
    ``gr.State``); for a session that has not logged in (or whose login expired) nothing is read or written."""

    def gated(session, *args):
        if not staff.allows(session):
            if warn:
                _warn(LOGIN_FIRST_ZH)
            return _skip(n_outputs) if n_outputs != 1 else gr.skip()
        return fn(*args)

    return gated


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


def build_eval_view(staff: StaffEval, session: gr.State) -> tuple[dict, list]:
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
    # Empty tables with their Chinese headers until the first run (not Gradio's placeholder headers 1 2 3).
    no_summary, no_categories = summary_table({"systems": {}}), category_table({"systems": {}})
    summary = gr.Dataframe(value=no_summary, label="各系统总体指标（— 表示不适用）", interactive=False,
                           latex_delimiters=[], elem_id="rqa-summary")
    categories = gr.Dataframe(value=no_categories, label=f"{PRIMARY} 分类别指标", interactive=False,
                              latex_delimiters=[], elem_id="rqa-categories")
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

    refresh_io = dict(fn=gated(staff, refresh, 4, warn=False), inputs=[session, category, result, passed],
                      outputs=[where, errors, table, items], api_visibility="private")
    reload.click(**refresh_io)
    filter_io = dict(inputs=[session, items, passed, category, result], outputs=[table], api_visibility="private")
    category.change(gated(staff, make_filter_callback(), 1, warn=False), **filter_io)
    result.change(gated(staff, make_filter_callback(), 1, warn=False), **filter_io)
    run_outputs = dict(status=status, errors=errors, table=table, items=items, passed=passed, summary=summary,
                       categories=categories, chart=chart, failures=failures)
    # No queue limit here: a second click must reach the lock and be told a run is going, not wait behind it.
    run.click(run_gated, inputs=[session, category, result], outputs=[run_outputs[n] for n in RUN_OUTPUTS],
              concurrency_limit=None, api_visibility="private")
    cleared = [(where, ""), (errors, ""), (table, set_table([], {})), (items, []), (passed, {}), (status, ""),
               (summary, no_summary), (categories, no_categories), (chart, None), (failures, "")]
    return refresh_io, cleared


def eval_paths_html(staff: StaffEval) -> str:
    return (f'<p class="rqa-meta">评测集：{_esc(staff.eval_set_path)} · 结果文件：{_esc(staff.eval_out_dir)} · '
            f"对比系统：{_esc('、'.join(staff.systems))}</p>")
