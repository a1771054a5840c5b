"""The staff's 反馈 view: citizens' votes (赞/踩) as a filterable table, exported as CSV or JSONL, and a 👎 turned
into an evaluation-set draft."""
from __future__ import annotations

import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path

import gradio as gr
import pandas as pd

from core.errors import ReportQAError
from records.feedback import FeedbackRow, FeedbackStore

from .page import esc as _esc, warn as _warn
from .staff_add import build_add_form
from .staff_eval import StaffEval, gated

logger = logging.getLogger(__name__)


ALL = "全部"
# Words, not 👍/👎: without an emoji font both render as the same empty box.
VOTE_CHOICES = [(ALL, ALL), ("赞（有帮助）", "up"), ("踩（没帮助）", "down")]
VOTE_ZH = {"up": "赞", "down": "踩"}
FEEDBACK_COLUMNS = ["编号", "时间（UTC）", "评价", "问题", "回答", "拒答", "意见"]


BAD_DATE_ZH = "日期格式应为 YYYY-MM-DD，例如 2024-05-01。"


def feedback_table(rows: list[FeedbackRow]) -> pd.DataFrame:
    data = [[r.id, r.created_at.replace("T", " ")[:19], VOTE_ZH.get(r.vote, r.vote), r.question, r.answer,
             "是" if r.refused else "否", r.comment] for r in rows]
    return pd.DataFrame(data, columns=FEEDBACK_COLUMNS)


def filtered_rows(store: FeedbackStore, vote: str | None, since: str | None, until: str | None) -> list[FeedbackRow]:
    """The rows matching the filters; ValueError (bad date) and ReportQAError pass through."""
    return store.rows(vote=None if vote in (None, "", ALL) else vote,
                      since=(since or "").strip() or None, until=(until or "").strip() or None)


def export_files(store: FeedbackStore, rows: list[FeedbackRow], folder: Path | None = None) -> tuple[Path, Path]:
    """The rows written as feedback-<time>.csv (UTF-8 with BOM, for Excel) and .jsonl in a fresh temp folder."""
    folder = Path(folder or tempfile.mkdtemp(prefix="reportqa-feedback-"))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    csv_path, jsonl_path = folder / f"feedback-{stamp}.csv", folder / f"feedback-{stamp}.jsonl"
    csv_path.write_text(store.to_csv(rows, excel_safe=True), encoding="utf-8-sig", newline="")
    jsonl_path.write_text(store.to_jsonl(rows), encoding="utf-8")
    return csv_path, jsonl_path


def make_feedback_refresh(store: FeedbackStore, export_dir: Path | None = None, allows=bool):
    """(session, vote, since, until) -> (table, rows by id, csv file, jsonl file); nothing unless ``allows(session)``
    (the staff session check; in tests a plain truth test).

    The export files go to a fresh folder under ``export_dir`` (default: the system temp folder)."""

    def refresh(session, vote: str, since: str, until: str):
        if not allows(session):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            rows = filtered_rows(store, vote, since, until)
            folder = tempfile.mkdtemp(prefix="reportqa-feedback-", dir=export_dir)
            csv_path, jsonl_path = export_files(store, rows, Path(folder))
        except ValueError:
            _warn(BAD_DATE_ZH)
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        except ReportQAError as exc:
            _warn(exc.message_zh)
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        except OSError as exc:
            _warn(f"无法导出反馈：{exc.strerror or exc}")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        by_id = {r.id: r for r in rows}
        return feedback_table(rows), by_id, str(csv_path), str(jsonl_path)

    return refresh


def make_pick_row():
    """A click on a table row -> its 编号 into the box."""

    def pick(table: pd.DataFrame, event: gr.SelectData):
        try:
            row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
            return int(table.iloc[row, 0])
        except (IndexError, ValueError, TypeError):
            return gr.skip()

    return pick


def build_feedback_view(staff: StaffEval, store: FeedbackStore, session: gr.State) -> tuple[dict, list]:
    """Citizens' votes: filters, the table, CSV/JSONL export, and a 👎 into the add form.
    Returns the arguments of the event that reloads the table, and what a logout resets."""
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
        to_set = gr.Button("用这条“踩”的反馈预填“加入评测集”", scale=2, elem_id="rqa-fb-to-set")
    picked = gr.State(None)
    form, prefill_io = build_add_form(staff, picked, session, title="加入评测集（由反馈预填）",
                                      elem_prefix="rqa-fb-add")

    def choose(by_id: dict | None, chosen):
        row = (by_id or {}).get(int(chosen)) if chosen is not None else None
        if row is None:
            _warn("请先在表格中选一条反馈（填写或点选它的编号）。")
            return gr.skip(), gr.skip()
        if row.vote != "down":
            _warn("只有“踩”的反馈需要加入评测集；这条是“赞”。")
            return gr.skip(), gr.skip()
        return row, gr.update(open=True)

    # Exports go beside Gradio's own temp files (GRADIO_TEMP_DIR when set), which are served from there.
    feedback_refresh = make_feedback_refresh(store, os.environ.get("GRADIO_TEMP_DIR") or None, allows=staff.allows)

    def refresh(token, vote_: str, since_: str, until_: str):
        shown = feedback_refresh(token, vote_, since_, until_)
        path = (f'<p class="rqa-meta">反馈数据库：{_esc(store.database.where)}</p>' if staff.allows(token) else gr.skip())
        return (path, *shown)

    refresh_io = dict(fn=refresh, inputs=[session, vote, since, until],
                      outputs=[where, table, rows, csv_file, jsonl_file], api_visibility="private")
    reload.click(**refresh_io)
    vote.change(**refresh_io)
    table.select(gated(staff, make_pick_row(), 1, warn=False), inputs=[session, table], outputs=[row_id],
                 api_visibility="private")
    to_set.click(gated(staff, choose, 2), inputs=[session, rows, row_id], outputs=[picked, form],
                 api_visibility="private").then(**prefill_io)
    cleared = [(where, ""), (table, feedback_table([])), (rows, {}), (csv_file, None), (jsonl_file, None),
               (picked, None)]
    return refresh_io, cleared
