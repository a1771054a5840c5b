"""The staff's 问答记录 view: what citizens asked (``records.QuestionLog``), filterable by date, reply kind and
report, with the refusal rate per day and the most-refused topics as charts, and a CSV export."""
from __future__ import annotations

import io
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path

import gradio as gr
import pandas as pd

from core.errors import ReportQAError
from core.fonts import chinese_charts
from core.text import content_terms
from records import DayStats, QuestionLog, QuestionRow

from .page import skip as _skip, warn as _warn
from .staff_eval import StaffEval

logger = logging.getLogger(__name__)

ALL = "全部"
REPLY_ZH = {"answer": "回答", "related": "相关内容", "refusal": "拒答"}
REPLY_CHOICES = [(ALL, ALL)] + [(label, kind) for kind, label in REPLY_ZH.items()]
VOTE_WORDS = {"up": "赞", "down": "踩"}
RECORD_COLUMNS = ["编号", "时间（UTC）", "问题", "回复类型", "引用的章节", "报告", "评价", "用时（毫秒）"]
BAD_DATE_ZH = "日期格式应为 YYYY-MM-DD，例如 2024-05-01。"
TABLE_ROWS = 500  # newest rows shown; the CSV holds every row that matches


def records_table(rows: list[QuestionRow], titles: dict[str, str] | None = None) -> pd.DataFrame:
    titles = titles or {}
    data = [[r.id, r.created_at.replace("T", " ")[:19], r.question, REPLY_ZH.get(r.reply, r.reply),
             "；".join(dict.fromkeys(r.sections)), titles.get(r.report, r.report), VOTE_WORDS.get(r.vote or "", ""),
             round(r.latency_ms)] for r in rows]
    return pd.DataFrame(data, columns=RECORD_COLUMNS)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _image(figure):
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=110, format="png")
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.load()
        return image.copy()


def refusal_rate_chart(days: list[DayStats]):
    """Questions per day (bars) and the share refused (line), labelled in Chinese; None without data."""
    if not days:
        return None
    with chinese_charts():
        figure = _figure(7.5, 3.4)
        bars = figure.subplots()
        labels = [d.day[5:] for d in days]
        bars.bar(labels, [d.questions for d in days], color="#c7d2fe", label="提问数")
        bars.bar(labels, [d.refusals for d in days], color="#f87171", label="拒答数")
        bars.set_ylabel("问题数")
        bars.yaxis.get_major_locator().set_params(integer=True)
        rate = bars.twinx()
        rate.plot(labels, [d.refusal_rate * 100 for d in days], color="#b91c1c", marker="o", label="拒答率")
        rate.set_ylim(0, 105)
        rate.set_ylabel("拒答率（%）")
        bars.set_title("每日提问数与拒答率（UTC 日期）")
        bars.tick_params(axis="x", labelrotation=45 if len(days) > 10 else 0, labelsize=8)
        handles = bars.get_legend_handles_labels()[0] + rate.get_legend_handles_labels()[0]
        bars.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper left")
        return _image(figure)


def refused_topics_chart(topics: list[tuple[str, int]]):
    """The words refused questions share most, as horizontal bars; None without refusals."""
    if not topics:
        return None
    with chinese_charts():
        figure = _figure(7.5, 0.9 + 0.32 * len(topics))
        axes = figure.subplots()
        words, counts = [w for w, _ in topics][::-1], [n for _, n in topics][::-1]
        drawn = axes.barh(words, counts, color="#f87171")
        axes.bar_label(drawn, padding=2, fontsize=8)
        axes.set_xlabel("含该词的拒答问题数")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set_title("拒答最多的话题（问题中的关键词）")
        return _image(figure)


def summary_html(rows_shown: int, days: list[DayStats], retention_days: int) -> str:
    asked = sum(d.questions for d in days)
    refused = sum(d.refusals for d in days)
    rate = f"{refused / asked:.0%}" if asked else "—"
    more = f"（表格显示最新 {rows_shown} 条，导出的 CSV 含全部）" if rows_shown >= TABLE_ROWS else ""
    return (f'<p class="rqa-meta">符合条件的提问 {asked} 条，其中拒答 {refused} 条（拒答率 {rate}）{more}。'
            f"提问记录保存 {int(retention_days)} 天，过期自动删除；不记录提问人的地址或身份。</p>")


def export_csv(log: QuestionLog, rows: list[QuestionRow], folder: Path) -> Path:
    """The rows as questions-<time>.csv (UTF-8 with BOM, for Excel) in ``folder``."""
    path = folder / f"questions-{datetime.now().strftime('%Y%m%d-%H%M%S')}.csv"
    path.write_text(log.to_csv(rows), encoding="utf-8-sig", newline="")
    return path


def place_words(titles) -> set[str]:
    """The places and years of the reports' titles (大连市, 大连, 2023): every question names them, so as
    refused topics they say nothing."""
    words = {w for title in titles for w in content_terms(title) if w.isdigit() or w[-1:] in "省市区县州"}
    return words | {w[:-1] for w in words if len(w) > 2 and not w.isdigit()}


def _titles(staff: StaffEval) -> dict[str, str]:
    try:
        return {r.source: r.display_title for r in staff.qa.reports()}
    except (ReportQAError, AttributeError):
        return {}


def make_records_refresh(log: QuestionLog, titles=dict, export_dir: Path | None = None, allows=bool):
    """(session, since, until, reply, report) -> (summary, table, csv file, rate chart, topics chart, report choices);
    nothing unless ``allows(session)``."""

    def refresh(session, since: str, until: str, reply: str, report: str):
        if not allows(session):
            return _skip(6)
        since, until = (since or "").strip() or None, (until or "").strip() or None
        kind = None if reply in (None, "", ALL) else reply
        report = None if report in (None, "", ALL) else report
        try:
            everything = log.rows(since=since, until=until, reply=kind, report=report, limit=None)
            days = log.by_day(since=since, until=until, report=report)
            names = titles()
            topics = log.refused_topics(since=since, until=until, report=report, ignore=place_words(names.values()))
            known = log.reports()
            folder = Path(tempfile.mkdtemp(prefix="reportqa-questions-", dir=export_dir))
            csv_path = export_csv(log, everything, folder)
        except ValueError:
            _warn(BAD_DATE_ZH)
            return _skip(6)
        except ReportQAError as exc:
            _warn(exc.message_zh)
            return _skip(6)
        except OSError as exc:
            _warn(f"无法导出问答记录：{exc.strerror or exc}")
            return _skip(6)
        shown = everything[:TABLE_ROWS]
        choices = [(ALL, ALL)] + [(f"《{names[s]}》" if s in names else s, s) for s in known]
        return (summary_html(len(shown), days, log.retention_days), records_table(shown, names), str(csv_path),
                refusal_rate_chart(days), refused_topics_chart(topics),
                gr.update(choices=choices, value=report or ALL))

    return refresh


def build_records_view(staff: StaffEval, log: QuestionLog, session: gr.State) -> tuple[dict, list]:
    """问答记录: filters, a summary line, the table, CSV export and the two charts. Returns the arguments of the
    event that reloads it and the (component, empty value) pairs a logout resets."""
    with gr.Row():
        since = gr.Textbox(label="起始日期", placeholder="YYYY-MM-DD", max_lines=1, scale=1, elem_id="rqa-qlog-since")
        until = gr.Textbox(label="截止日期", placeholder="YYYY-MM-DD", max_lines=1, scale=1, elem_id="rqa-qlog-until")
        reply = gr.Dropdown(REPLY_CHOICES, value=ALL, label="回复类型", scale=1, elem_id="rqa-qlog-reply")
        report = gr.Dropdown([(ALL, ALL)], value=ALL, label="报告", scale=2, elem_id="rqa-qlog-report")
        reload = gr.Button("筛选 / 刷新", scale=0, min_width=110, elem_id="rqa-qlog-reload")
    summary = gr.HTML(elem_id="rqa-qlog-summary")
    table = gr.Dataframe(value=records_table([]), label="问答记录（最新在前）", interactive=False, wrap=True,
                         max_height=460, latex_delimiters=[], elem_id="rqa-qlog-table",
                         column_widths=["6%", "13%", "27%", "8%", "22%", "12%", "5%", "7%"])
    csv_file = gr.DownloadButton("导出 CSV", value=None, size="sm", elem_id="rqa-qlog-csv")
    with gr.Row():
        # The charts carry their own titles: a floating label would cover them.
        rate_chart = gr.Image(label="每日拒答率", show_label=False, format="png", type="pil", interactive=False,
                              buttons=["download", "fullscreen"], elem_id="rqa-qlog-rate")
        topics_chart = gr.Image(label="拒答最多的话题", show_label=False, format="png", type="pil", interactive=False,
                                buttons=["download", "fullscreen"], elem_id="rqa-qlog-topics")

    refresh = make_records_refresh(log, lambda: _titles(staff), os.environ.get("GRADIO_TEMP_DIR") or None,
                                   allows=staff.allows)
    refresh_io = dict(fn=refresh, inputs=[session, since, until, reply, report],
                      outputs=[summary, table, csv_file, rate_chart, topics_chart, report], api_visibility="private")
    reload.click(**refresh_io)
    reply.change(**refresh_io)
    report.input(**refresh_io)
    cleared = [(summary, ""), (table, records_table([])), (csv_file, None), (rate_chart, None), (topics_chart, None)]
    return refresh_io, cleared
