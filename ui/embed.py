"""The embeddable chat (served at /embed/): the citizens' chat and the report text, for a portal's <iframe>.

The same chat as the page (``ui.chat``: answers, source cards, 查看原文, votes),
under a one-line header, without the staff tab or any staff login: nobody can
log in here, so the chat tab's staff form stays closed to every visitor.
``reportqa.server`` mounts it and sends the frame-ancestors that let the
operator's portals (REPORTQA_EMBED_ORIGINS) frame it.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from records import DEFAULT_RETENTION_DAYS

from .app import _titles, open_records
from .chat import build_chat_tab, make_chat
from .page import APP_TITLE, CACHE_CLEANUP, esc
from .report_tab import build_report_tab, indexed_reports
from .staff_eval import StaffEval

# Less room above the chat: a portal's frame is small. Scoped to the embed's own header and container.
EMBED_CSS = """
#rqa-embed-header { margin: 0; }
#rqa-embed-header p { margin: 0; font-size: .9em; color: var(--body-text-color-subdued); }
#rqa-embed-header strong { color: var(--body-text-color); }
.gradio-container:has(#rqa-embed-header) { padding-top: 4px !important; }
"""


def render_embed_header_html(titles: list[str], error_zh: str | None = None) -> str:
    """One line: which report(s), and that answers are quoted from them."""
    names = f"《{esc(titles[0])}》" if titles else "报告"
    if len(titles) > 1:
        names += f"等 {len(titles)} 份报告"
    error = f' <span class="rqa-error">⚠ {esc(error_zh)}</span>' if error_zh else ""
    return f"<p><strong>{esc(APP_TITLE)}</strong> · {names} · 只根据报告原文回答，每句标注出处{error}</p>"


def build_embed_app(qa, *, feedback_path: Path | str | None = None, records=None,
                    question_retention_days: int = DEFAULT_RETENTION_DAYS) -> gr.Blocks:
    """The Blocks app of the embeddable chat for ``qa`` (the service); votes and the question log go to
    ``feedback_path`` (a SQLite file or a database URL), as the page's do, or to ``records`` (the feedback
    store and question log the server already opened)."""
    feedback, log = records or open_records(feedback_path, question_retention_days)
    titles, error_zh = _titles(qa)
    # No staff session can exist here: the staff form of the chat tab refuses every visitor.
    staff = StaffEval(qa, eval_set_path=Path("/nonexistent/qa.jsonl"), eval_out_dir=Path("/nonexistent"),
                      allows=lambda _token: False)
    with gr.Blocks(title=f"{titles[0]} · {APP_TITLE}" if titles else APP_TITLE, analytics_enabled=False,
                   delete_cache=CACHE_CLEANUP) as demo:
        gr.HTML(render_embed_header_html(titles, error_zh), elem_id="rqa-embed-header", padding=False)
        session = gr.State(None)
        report_request = gr.Textbox(visible="hidden", elem_id="rqa-report-request")
        with gr.Tabs(elem_id="rqa-tabs"):
            with gr.Tab("市民问答", id="chat", elem_id="rqa-chat-tab"):
                build_chat_tab(make_chat(qa, log), staff, feedback, indexed_reports(qa), session, log)
            with gr.Tab("报告原文", id="report", elem_id="rqa-report-tab"):
                build_report_tab(qa, report_request)
    return demo
