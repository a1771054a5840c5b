"""The staff's 反馈 view: citizens' 👍/👎 as a filterable table, exported as CSV or JSONL, and a 👎 turned
into an evaluation-set draft. Pure formatting here; the layout is ``ui/staff.py``'s."""
from __future__ import annotations

import logging
import tempfile
from datetime import datetime
from pathlib import Path

import gradio as gr
import pandas as pd

from reportqa.errors import ReportQAError
from reportqa.feedback import FeedbackRow, FeedbackStore
from retrieval.models import Turn

logger = logging.getLogger(__name__)

ALL = "全部"
VOTE_CHOICES = [(ALL, ALL), ("👍 有帮助", "up"), ("👎 没帮助", "down")]
VOTE_ZH = {"up": "👍", "down": "👎"}
FEEDBACK_COLUMNS = ["编号", "时间（UTC）", "评价", "问题", "回答", "拒答", "意见"]
BAD_DATE_ZH = "日期格式应为 YYYY-MM-DD，例如 2024-05-01。"


def feedback_table(rows: list[FeedbackRow]) -> pd.DataFrame:
    data = [[r.id, r.created_at.replace("T", " ")[:19], VOTE_ZH.get(r.vote, r.vote), r.question, r.answer,
             "是" if r.refused else "", r.comment] for r in rows]
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


def history_turns(row: FeedbackRow) -> list[Turn]:
    return [Turn(t.get("question", ""), t.get("answer", "")) for t in row.history if isinstance(t, dict)]


def row_quotes(row: FeedbackRow) -> list[str]:
    return [str(c.get("quote", "")) for c in row.citations if isinstance(c, dict)]


def _warn(message_zh: str) -> None:
    gr.Warning(message_zh, title="提示")


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


__all__ = ["feedback_table", "filtered_rows", "export_files", "history_turns", "row_quotes",
           "make_feedback_refresh", "make_pick_row", "VOTE_CHOICES", "FEEDBACK_COLUMNS"]
