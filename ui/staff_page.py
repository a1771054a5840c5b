"""The 工作人员 tab: the staff login (``ui.auth``), 退出登录, and the 评测, 反馈, 问答记录 and 报告管理 views behind them.

Without staff credentials the tab is not shown at all (the operator learns how to enable it from the
README and the server log, not the citizens' page)."""
from __future__ import annotations

from typing import Sequence

import gradio as gr

from records import FeedbackStore, QuestionLog

from .auth import StaffSessions
from .page import warn as _warn
from .staff_eval import StaffEval, build_eval_view
from .staff_feedback import build_feedback_view
from .staff_records import build_records_view
from .staff_reports import build_reports_view, redeem_js
from .staff_tables import status_html

LOGIN_FAILED_ZH = "用户名或密码不正确。"
LOGIN_WAIT_ZH = "登录失败次数过多，请 {seconds} 秒后再试。"


LOGGED_OUT_ZH = "已退出登录。"


def _client(request: gr.Request | None) -> str:
    """The address a request came from, for the login back-off and the log."""
    client = getattr(request, "client", None)
    return str(getattr(client, "host", "") or "unknown")


def build_staff_tab(demo: gr.Blocks, staff: StaffEval, sessions: StaffSessions, session: gr.State,
                    feedback: FeedbackStore, log: QuestionLog, reveal: Sequence[gr.components.Component] = (),
                    library=None, book=None) -> gr.Tab:
    """The 工作人员 tab, behind a login: 评测 (the set as a filterable table, 运行评测 with a progress bar,
    the results), 反馈 (citizens' votes, export, a 👎 into the set), 问答记录 (the question log, charts,
    export) and, given a ``library`` and example ``book`` (reportqa.library, reportqa.examples), 报告管理
    (upload, correct, remove, re-ingest, examples). ``session`` holds the token of the browser session's
    login (``ui.auth.StaffSessions``); ``reveal`` are shown on login, hidden on logout. Hidden when no
    staff login is configured."""
    with gr.Tab("工作人员", id="staff", elem_id="rqa-staff", visible=sessions.enabled) as tab:
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
                    refresh_io, eval_clear = build_eval_view(staff, session)
                with gr.Tab("反馈", id="staff-feedback", elem_id="rqa-staff-feedback"):
                    feedback_io, feedback_clear = build_feedback_view(staff, feedback, session)
                with gr.Tab("问答记录", id="staff-questions", elem_id="rqa-staff-questions"):
                    records_io, records_clear = build_records_view(staff, log, session)
                reports_io, reports_clear = None, []
                if library is not None:
                    with gr.Tab("报告管理", id="staff-reports", elem_id="rqa-staff-reports"):
                        reports_io, reports_clear = build_reports_view(staff, session, library, book)
        # The login's upload ticket (ui.auth), traded by the page for its upload cookie at once.
        upload_ticket = gr.Textbox(visible="hidden", elem_id="rqa-upload-ticket")

    def log_in(user_name: str, secret: str, request: gr.Request):
        outcome = sessions.log_in(user_name, secret, _client(request))
        if outcome.token is None:
            message = (LOGIN_WAIT_ZH.format(seconds=max(1, round(outcome.wait_s))) if outcome.wait_s
                       else LOGIN_FAILED_ZH)
            _warn(message)
            return (gr.skip(), gr.skip(), gr.skip(), status_html(message, ok=False), "", "",
                    *(gr.skip() for _ in reveal))
        ticket = sessions.upload_ticket(outcome.token) if library is not None else None
        return (outcome.token, gr.update(visible=False), gr.update(visible=True), "", "", ticket or "",
                *(gr.update(visible=True) for _ in reveal))

    login_event = dict(fn=log_in, inputs=[user, password],
                       outputs=[session, login_box, content, login_status, password, upload_ticket, *reveal],
                       api_visibility="private")
    done = login.click(**login_event)
    done_enter = password.submit(**login_event)
    for event in (done, done_enter):
        followed = event.then(None, inputs=[upload_ticket], js=redeem_js()).then(**refresh_io).then(**feedback_io)
        followed = followed.then(**records_io)
        if reports_io is not None:
            followed.then(**reports_io)
    tab.select(**refresh_io)
    if reports_io is not None:
        tab.select(**reports_io)

    # (component, its empty value): staff data off the page
    cleared = [*eval_clear, *feedback_clear, *records_clear, *reports_clear, (upload_ticket, "")]

    def log_out(token):
        sessions.log_out(token)
        return (None, gr.update(visible=sessions.enabled), gr.update(visible=False), status_html(LOGGED_OUT_ZH),
                *(gr.update(visible=False) for _ in reveal), *(value for _, value in cleared))

    logout.click(log_out, inputs=[session],
                 outputs=[session, login_box, content, login_status, *reveal, *(c for c, _ in cleared)],
                 api_visibility="private")
    return tab
