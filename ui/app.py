"""The web page: a Gradio chat over the indexed reports, with cited, extractive answers.

Three tabs: 市民问答 (``ui.chat``; with a closed accordion where staff file the
last question into the evaluation set), 报告原文 (``ui.report_tab``) and 工作人员
(``ui.staff_page``: the evaluation, citizens' feedback and the question log, behind a
login; not shown at all when no staff login is configured).
Nothing phones home: analytics are off, the theme uses system font stacks only
(no Google Fonts, no CDN); ``reportqa.server`` serves it.
"""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from core.errors import ReportQAError
from records import DEFAULT_RETENTION_DAYS, Database, FeedbackStore, QuestionLog

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


STAFF_OFF_LOG = ("The staff pages (evaluation, feedback, question log) are off: set REPORTQA_STAFF_USER and "
                 "REPORTQA_STAFF_PASSWORD before starting `reportqa serve` to enable the 工作人员 tab.")


def open_records(database: Path | str, retention_days: int) -> tuple[FeedbackStore, QuestionLog]:
    """The feedback store and the question log on one database, its schema upgraded and old questions deleted
    now (a database that cannot be used is logged; the chat still answers, votes then say they failed)."""
    db = Database(database)
    feedback, log = FeedbackStore(db), QuestionLog(db, retention_days)
    try:
        db.upgrade()
        log.purge_if_due()
        logger.info("feedback and question log in %s (questions kept %d days)", db.where, retention_days)
    except ReportQAError as exc:
        logger.error("the records database cannot be used: %s", exc.message)
    return feedback, log


def build_app(qa, *, eval_set_path: Path | str, eval_out_dir: Path | str, feedback_path: Path | str | None = None,
              records: tuple[FeedbackStore, QuestionLog] | None = None, staff_credentials: tuple[str, str] | None = None, sessions: StaffSessions | None = None,
              library=None, examples=None, question_retention_days: int = DEFAULT_RETENTION_DAYS) -> gr.Blocks:
    """The Blocks app for ``qa`` (the service: reportqa.service.ReportQA); reportqa.server serves it.

    Args:
        eval_set_path: the JSONL set staff add to and evaluate.
        eval_out_dir: where 运行评测 writes results.jsonl, summary.json, report.md and chart.png.
        feedback_path: where citizens' 👍/👎 and the question log go: a SQLite file, or a database URL
            (``postgresql://…``, REPORTQA_DATABASE_URL).
        records: the feedback store and question log already opened (``open_records``), instead of
            ``feedback_path``: the server opens them once for every door.
        staff_credentials: (user, password) of the staff login; None hides the staff tab.
        sessions: the staff sessions (default: new ones for ``staff_credentials``); the server shares
            them with its upload check.
        library: staff report management (reportqa.library.ReportLibrary); None: no 报告管理 view.
        examples: the example questions per report (reportqa.examples.ExampleBook); None: none shown.
        question_retention_days: logged questions older than this are deleted.
    """
    titles, error_zh = _titles(qa)
    feedback, log = records or open_records(feedback_path, question_retention_days)
    page_title = f"{titles[0]} · {APP_TITLE}" if titles else APP_TITLE
    sessions = sessions or StaffSessions(staff_credentials)
    if not sessions.enabled:
        logger.warning(STAFF_OFF_LOG)

    def examples_for(scope):
        return examples.for_scope(indexed_reports(qa), scope) if examples is not None else {}

    chat = make_chat(qa, log, examples_for)
    staff = StaffEval(qa, eval_set_path, eval_out_dir, allows=sessions.valid)

    # Gradio's cached files (downloads, and anything posted to its upload route) are deleted after an hour.
    with gr.Blocks(title=page_title, analytics_enabled=False, delete_cache=CACHE_CLEANUP) as demo:
        header = gr.HTML(render_header_html(titles, error_zh), elem_id="rqa-header")
        session = gr.State(None)  # this browser session's staff login token (ui.auth.StaffSessions); server-side
        # Outside the tabs, so it is on the page before the 报告原文 tab is first opened.
        report_request = gr.Textbox(visible="hidden", elem_id="rqa-report-request")
        with gr.Tabs(elem_id="rqa-tabs"):
            with gr.Tab("市民问答", id="chat", elem_id="rqa-chat-tab"):
                add_form, (scope, *example_slots) = build_chat_tab(chat, staff, feedback, indexed_reports(qa),
                                                                   session, log, examples_for)
            with gr.Tab("报告原文", id="report", elem_id="rqa-report-tab"):
                report_pick, report_shown = build_report_tab(qa, report_request)
            build_staff_tab(demo, staff, sessions, session, feedback=feedback, log=log, reveal=[add_form],
                            library=library, book=examples)
        gr.api(make_ask_api(qa, log), api_name="ask")

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
