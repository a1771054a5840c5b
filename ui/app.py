"""The web page: a Gradio chat over the indexed reports, with cited, extractive answers.

Three tabs: 市民问答 (``ui.chat``; with a closed accordion where staff file the
last question into the evaluation set), 报告原文 (``ui.report_tab``) and 工作人员
(``ui.staff_page``: the evaluation and citizens' feedback, behind a login).
Nothing phones home: analytics are off, the theme uses system font stacks only
(no Google Fonts, no CDN); ``reportqa.server`` serves it.
"""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from core.errors import ReportQAError
from records.feedback import FeedbackStore

from .api import make_ask_api
from .auth import StaffSessions
from .chat import build_chat_tab, example_updates, make_chat, parse_scope, scope_choices
from .page import APP_TITLE, CACHE_CLEANUP, CSS, GENERIC_ERROR_ZH, SOURCE_JS, THEME
from .render import render_header_html
from .report_tab import build_report_tab, indexed_reports, report_pick_update
from .staff_eval import StaffEval
from .staff_page import build_staff_tab

logger = logging.getLogger(__name__)


def _titles(qa) -> tuple[list[str], str | None]:
    try:
        return list(qa.titles()), None
    except ReportQAError as exc:
        logger.warning("could not read report titles: %s", exc.message)
        return [], exc.message_zh
    except Exception:
        logger.exception("could not read report titles")
        return [], GENERIC_ERROR_ZH


def build_app(qa, *, eval_set_path: Path | str, eval_out_dir: Path | str, feedback_path: Path | str,
              staff_credentials: tuple[str, str] | None = None, sessions: StaffSessions | None = None,
              library=None, examples=None) -> gr.Blocks:
    """The Blocks app for ``qa`` (the service: reportqa.service.ReportQA); reportqa.server serves it.

    Args:
        eval_set_path: the JSONL set staff add to and evaluate.
        eval_out_dir: where 运行评测 writes results.jsonl, summary.json, report.md and chart.png.
        feedback_path: the SQLite file citizens' 👍/👎 go to.
        staff_credentials: (user, password) of the staff login; None keeps the staff pages closed.
        sessions: the staff sessions (default: new ones for ``staff_credentials``); the server shares
            them with its upload check.
        library: staff report management (reportqa.library.ReportLibrary); None: no 报告管理 view.
        examples: the example questions per report (reportqa.examples.ExampleBook); None: none shown.
    """
    titles, error_zh = _titles(qa)
    page_title = f"{titles[0]} · {APP_TITLE}" if titles else APP_TITLE
    sessions = sessions or StaffSessions(staff_credentials)

    def examples_for(scope):
        return examples.for_scope(indexed_reports(qa), scope) if examples is not None else {}

    chat = make_chat(qa, examples_for)
    staff = StaffEval(qa, eval_set_path, eval_out_dir, allows=sessions.valid)
    feedback = FeedbackStore(feedback_path)

    # Gradio's cached files (downloads, and anything posted to its upload route) are deleted after an hour.
    with gr.Blocks(title=page_title, analytics_enabled=False, delete_cache=CACHE_CLEANUP) as demo:
        header = gr.HTML(render_header_html(titles, error_zh), elem_id="rqa-header")
        session = gr.State(None)  # this browser session's staff login token (ui.auth.StaffSessions); server-side
        # Outside the tabs, so it is on the page before the 报告原文 tab is first opened.
        report_request = gr.Textbox(visible="hidden", elem_id="rqa-report-request")
        with gr.Tabs(elem_id="rqa-tabs"):
            with gr.Tab("市民问答", id="chat", elem_id="rqa-chat-tab"):
                add_form, (scope, *example_slots) = build_chat_tab(chat, staff, feedback, indexed_reports(qa),
                                                                   session, examples_for)
            with gr.Tab("报告原文", id="report", elem_id="rqa-report-tab"):
                report_pick, report_shown = build_report_tab(qa, report_request)
            build_staff_tab(demo, staff, sessions, session, feedback=feedback, reveal=[add_form], library=library,
                            book=examples)
        gr.api(make_ask_api(qa), api_name="ask")

        def fresh_page():
            """What a page shows of the indexed reports, read at each page load: staff may have swapped in a
            new index since the server started (reportqa.library)."""
            reports = indexed_reports(qa)
            return (render_header_html([r.display_title for r in reports], None if reports else error_zh),
                    gr.update(choices=scope_choices(reports), value="", visible=len(reports) > 1),
                    *example_updates(examples_for(parse_scope(""))), *report_pick_update(qa, reports))

        demo.load(fresh_page, outputs=[header, scope, *example_slots, report_pick, report_shown],
                  api_visibility="private")

    # A plain ``demo.launch()`` still gets our theme, CSS and script (Gradio 6 reads these at launch).
    demo._deprecated_theme = THEME
    demo._deprecated_css = CSS
    demo._deprecated_js = SOURCE_JS
    return demo
