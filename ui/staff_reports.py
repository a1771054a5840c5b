"""The staff's 报告管理 view: upload reports, see each one parsed (or why not), correct metadata, import,
remove, re-ingest, and choose each report's example questions.

The work is done by a ``library`` (reportqa.library.ReportLibrary: staging, one worker, the rebuild
and live swap) and an example ``book`` (reportqa.examples.ExampleBook); every callback here checks
the staff session first (``staff.allows``), then calls one of their methods and formats the result.
A timer polls the worker while it is busy, so per-file progress (OCR pages) shows as it happens.
"""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
import pandas as pd

from core.errors import ReportQAError

from .page import GENERIC_ERROR_ZH, skip as _skip, warn as _warn
from .staff_eval import LOGIN_FIRST_ZH, StaffEval
from .staff_tables import status_html

logger = logging.getLogger(__name__)

FILE_TYPES = [".txt", ".md", ".html", ".htm", ".docx", ".pdf"]
STAGED_COLUMNS = ["文件", "状态", "标题", "发布机关", "年份", "章节", "段落", "片段", "文字识别（OCR）", "说明"]
REPORT_COLUMNS = ["文件", "状态", "标题", "发布机关", "年份", "发布页面", "片段", "文字识别（OCR）", "说明"]
REPORT_STATUS_ZH = {"indexed": "已收录", "skipped": "已跳过", "pending": "待重建索引"}
POLL_S = 1.0
EXAMPLES_HELP = "每行一个问题；以 # 开头的行是分组名（例如 # 便民服务）。最多 12 个问题、6 个分组。"


def _ocr_cell(pages: list) -> str:
    """OCR'd pages as staff read them: 第1页 0.97、第2页 0.99 (the lowest line or passage confidence)."""
    if not pages:
        return ""
    shown = "、".join(f"第{p[0]}页 {p[-1]:.2f}" for p in pages[:8])
    return shown + (f" 等 {len(pages)} 页" if len(pages) > 8 else "")


def staged_table(items: list) -> pd.DataFrame:
    rows = []
    for s in items:
        note = s.detail_zh
        if s.state == "ready" and s.replaces:
            note = "将替换同名的现有报告" + (f"；{note}" if note else "")
        if s.corrected:
            note = "元数据已修改" + (f"；{note}" if note else "")
        rows.append([s.name, s.state_zh, s.title or "", s.issuer or "", s.year or "",
                     s.sections or "", s.paragraphs or "", s.chunks or "", _ocr_cell(s.ocr_pages), note])
    return pd.DataFrame(rows, columns=STAGED_COLUMNS)


def reports_table(rows: list) -> pd.DataFrame:
    data = [[r.source, REPORT_STATUS_ZH.get(r.status, r.status), r.title or "", r.issuer or "", r.year or "",
             r.url or "", r.chunks or "", _ocr_cell(r.ocr_pages), r.reason or ""] for r in rows]
    return pd.DataFrame(data, columns=REPORT_COLUMNS)


PENDING_STATES = ("waiting", "parsing", "importing")


def library_view(library) -> tuple:
    """(work status, staged uploads, report rows, whether the page should keep polling), read in that order.

    The status comes first: the worker may finish a quick job while the tables are read (the reports table
    walks the whole index). Read last, an idle status could stop the page's timer on a table that still says
    正在解析, and nothing would ever redraw it. Read first, "not busy" means every job queued before it has
    finished (reportqa.library keeps the status and the queue in step), so the tables read after it are
    final; an upload still waiting or parsing in them keeps the timer going all the same.
    """
    work = library.status()
    items = library.staged()
    rows = library.reports()
    following = work.busy or any(s.state in PENDING_STATES for s in items)
    return work, items, rows, following


def work_status_html(status) -> str:
    if not status.message_zh:
        return ""
    mark = "⏳ " if status.busy else ("✔ " if status.ok else "⚠ ")
    return status_html(mark + status.message_zh, ok=status.ok)


def _fields(item) -> tuple:
    return item.title or "", item.issuer or "", str(item.year or ""), item.url or ""



def _metadata_row(prefix: str) -> tuple[gr.Textbox, gr.Textbox, gr.Textbox, gr.Textbox]:
    """A report's title, issuer, year and URL boxes in one row (an upload's, or an indexed report's)."""
    with gr.Row():
        return (gr.Textbox(label="标题", max_lines=1, scale=3, elem_id=f"{prefix}-title"),
                gr.Textbox(label="发布机关", max_lines=1, scale=2, elem_id=f"{prefix}-issuer"),
                gr.Textbox(label="年份", max_lines=1, scale=1, elem_id=f"{prefix}-year"),
                gr.Textbox(label="发布页面网址", max_lines=1, scale=3, elem_id=f"{prefix}-url"))


def build_reports_view(staff: StaffEval, session: gr.State, library, book) -> tuple[dict, list]:
    """The view; returns the arguments of the event that reloads it, and the (component, empty value)
    pairs a logout resets."""
    status = gr.HTML(elem_id="rqa-lib-status")
    gr.HTML('<h3 class="rqa-staff-h">上传报告</h3>'
            '<p class="rqa-meta">先解析再导入：上传后每个文件先单独解析（扫描件会做文字识别），确认解析结果、'
            "需要时修改元数据后，点“导入”。导入时重建索引，完成后新索引立即生效，市民问答不中断。</p>",
            padding=False)
    upload = gr.File(label="选择报告文件（.txt .md .html .docx .pdf，可多选）", file_count="multiple",
                     file_types=FILE_TYPES, type="filepath", height=150, elem_id="rqa-upload")
    staged = gr.Dataframe(value=staged_table([]), label="待导入的文件", interactive=False, wrap=True,
                          latex_delimiters=[], elem_id="rqa-staged")
    with gr.Row():
        staged_pick = gr.Dropdown(choices=[], value=None, label="选择待导入的文件（修改元数据或移除）", scale=2,
                                  elem_id="rqa-staged-pick")
        import_all = gr.Button("导入全部可导入的文件", variant="primary", scale=1, elem_id="rqa-import")
    s_title, s_issuer, s_year, s_url = _metadata_row("rqa-staged")
    with gr.Row():
        save_staged = gr.Button("保存元数据", size="sm", elem_id="rqa-staged-save")
        discard = gr.Button("移除此文件", size="sm", elem_id="rqa-staged-discard")

    gr.HTML('<h3 class="rqa-staff-h">已有报告</h3>', padding=False)
    reports = gr.Dataframe(value=reports_table([]), label="报告文件夹", interactive=False, wrap=True,
                           latex_delimiters=[], elem_id="rqa-reports")
    report_pick = gr.Dropdown(choices=[], value=None, label="选择报告（修改元数据、重新导入、删除、示例问题）",
                              filterable=True, elem_id="rqa-report-choose")
    r_title, r_issuer, r_year, r_url = _metadata_row("rqa-meta")
    with gr.Row():
        save_meta = gr.Button("保存元数据并重建索引", size="sm", elem_id="rqa-meta-save")
        reingest = gr.Button("重新导入", size="sm", elem_id="rqa-reingest")
        remove = gr.Button("删除此报告", size="sm", variant="stop", elem_id="rqa-remove")
        confirm = gr.Button("确认删除", size="sm", variant="stop", visible=False, elem_id="rqa-remove-confirm")

    gr.HTML('<h3 class="rqa-staff-h">示例问题</h3>', padding=False)
    examples_text = gr.Textbox(label="所选报告的示例问题", info=EXAMPLES_HELP, lines=8, max_lines=20,
                               elem_id="rqa-examples-edit")
    examples_note = gr.HTML(elem_id="rqa-examples-note")
    with gr.Row():
        save_examples = gr.Button("保存示例问题", size="sm", elem_id="rqa-examples-save")
        reset_examples = gr.Button("恢复默认（评测集中回答正确的问题）", size="sm", elem_id="rqa-examples-reset")
    timer = gr.Timer(POLL_S, active=False)
    seen = gr.State(-1)  # jobs finished when the tables were last drawn

    # ------------------------------------------------------------ callbacks (after the session check)

    def view(picked_staged=None, picked_report=None):
        """(status, staged table, staged choices, reports table, report choices, timer, jobs finished) now."""
        work, items, rows, following = library_view(library)
        staged_ids = {s.id for s in items}
        sources = [r.source for r in rows]
        return (work_status_html(work), staged_table(items),
                gr.update(choices=[(s.name, s.id) for s in items],
                          value=picked_staged if picked_staged in staged_ids else None),
                reports_table(rows),
                gr.update(choices=sources, value=picked_report if picked_report in sources else None),
                gr.Timer(active=following), work.finished)

    def refresh(picked_staged, picked_report, seen_count):
        return view(picked_staged, picked_report)

    def poll(picked_staged, picked_report, seen_count):
        """While the worker is busy: status and the staged table; the report tables when a job finished."""
        work = library.status()
        if work.finished == seen_count and work.busy:
            items = library.staged()
            return (work_status_html(work), staged_table(items), *_skip(3), gr.Timer(active=True), gr.skip())
        return refresh(picked_staged, picked_report, seen_count)

    def stage(files, picked_staged, picked_report):
        paths = [Path(f if isinstance(f, str) else getattr(f, "name", "")) for f in (files or [])]
        if not paths:
            return (*_skip(6), gr.skip())
        added = library.stage([(p, p.name) for p in paths])
        for p in paths:  # the copies in the staging folder are what count now
            try:
                p.unlink()
            except OSError:
                pass
        refused = [f"{s.name}：{s.detail_zh}" for s in added if s.state == "failed"]
        if refused:
            _warn("以下文件未能接收：" + "；".join(refused))
        return (*view(picked_staged, picked_report)[:6], None)

    def pick_staged(item_id):
        item = next((s for s in library.staged() if s.id == item_id), None)
        return _fields(item) if item else ("", "", "", "")

    def save_staged_fields(item_id, title, issuer, year, url, picked_report):
        if not item_id:
            _warn("请先在“待导入的文件”中选择一个文件。")
            return _skip(6)
        try:
            library.correct_staged(item_id, title, issuer, year, url)
        except ReportQAError as exc:
            _warn(exc.message_zh)
            return _skip(6)
        gr.Info("元数据已保存，导入时生效。", title="已保存")
        return view(item_id, picked_report)[:6]

    def discard_staged(item_id, picked_report):
        if not item_id:
            _warn("请先在“待导入的文件”中选择一个文件。")
            return _skip(6)
        try:
            library.discard(item_id)
        except ReportQAError as exc:
            _warn(exc.message_zh)
            return _skip(6)
        return view(None, picked_report)[:6]

    def start(action, picked_staged, picked_report, *args):
        """Queue a change on the worker; the timer then follows it."""
        try:
            action(*args)
        except ReportQAError as exc:
            _warn(exc.message_zh)
            return _skip(6)
        except Exception:
            logger.exception("a staff report action failed")
            _warn(GENERIC_ERROR_ZH)
            return _skip(6)
        shown = view(picked_staged, picked_report)
        return (*shown[:5], gr.Timer(active=True))

    def pick_report(source):
        row = next((r for r in library.reports() if r.source == source), None)
        if row is None:
            return "", "", "", "", "", ""
        groups, note = book.groups(source), ""
        if not groups:
            note = status_html("这份报告还没有示例问题：评测集中没有它回答正确的题。可以在上面填写后保存。", ok=False)
        elif not book.is_chosen(source):
            note = '<p class="rqa-meta">当前显示的是默认示例（评测集中这份报告回答正确的问题）。</p>'
        return (*_fields(row), _format(groups), note)

    def save_examples_fn(source, text):
        if not source:
            _warn("请先选择报告。")
            return gr.skip(), gr.skip()
        try:
            groups, refused = book.save(source, text)
        except ReportQAError as exc:
            _warn(exc.message_zh)
            return gr.skip(), status_html(exc.message_zh, ok=False)
        note = f"已保存 {sum(len(q) for q in groups.values())} 个示例问题，市民页面刷新后可见。"
        if refused:
            note += " 注意：报告目前回答不了这些问题：" + "、".join(refused)
        return _format(groups), status_html(note, ok=not refused)

    def reset_examples_fn(source):
        if not source:
            _warn("请先选择报告。")
            return gr.skip(), gr.skip()
        book.reset(source)
        groups = book.groups(source)
        return _format(groups), status_html("已恢复默认示例。" if groups else "评测集中没有这份报告回答正确的题，暂无默认示例。",
                                            ok=bool(groups))

    # ------------------------------------------------------------ events, each behind the session check

    def behind_login(fn, n_outputs: int, warn: bool = True):
        def checked(token, *args):
            if not staff.allows(token):
                if warn:
                    _warn(LOGIN_FIRST_ZH)
                return _skip(n_outputs) if n_outputs != 1 else gr.skip()
            try:
                return fn(*args)
            except ReportQAError as exc:
                _warn(exc.message_zh)
                return _skip(n_outputs) if n_outputs != 1 else gr.skip()
        return checked

    private = dict(api_visibility="private")
    view_out = [status, staged, staged_pick, reports, report_pick, timer]
    refresh_io = dict(fn=behind_login(refresh, 7, warn=False), inputs=[session, staged_pick, report_pick, seen],
                      outputs=[*view_out, seen], **private)
    timer.tick(behind_login(poll, 7, warn=False), inputs=[session, staged_pick, report_pick, seen],
               outputs=[*view_out, seen], concurrency_limit=None, **private)
    upload.upload(behind_login(stage, 7), inputs=[session, upload, staged_pick, report_pick],
                  outputs=[*view_out, upload], **private)
    staged_pick.input(behind_login(pick_staged, 4, warn=False), inputs=[session, staged_pick],
                      outputs=[s_title, s_issuer, s_year, s_url], **private)
    save_staged.click(behind_login(save_staged_fields, 6),
                      inputs=[session, staged_pick, s_title, s_issuer, s_year, s_url, report_pick],
                      outputs=view_out, **private)
    discard.click(behind_login(discard_staged, 6), inputs=[session, staged_pick, report_pick], outputs=view_out,
                  **private)
    import_all.click(behind_login(lambda a, b: start(library.import_ready, a, b), 6),
                     inputs=[session, staged_pick, report_pick], outputs=view_out, **private)
    report_pick.input(behind_login(pick_report, 6, warn=False), inputs=[session, report_pick],
                      outputs=[r_title, r_issuer, r_year, r_url, examples_text, examples_note], **private)
    save_meta.click(behind_login(lambda a, b, *f: start(library.set_metadata, a, b, b, *f), 6),
                    inputs=[session, staged_pick, report_pick, r_title, r_issuer, r_year, r_url],
                    outputs=view_out, **private)
    reingest.click(behind_login(lambda a, b: start(library.reingest, a, b, b), 6),
                   inputs=[session, staged_pick, report_pick], outputs=view_out, **private)
    remove.click(behind_login(lambda source: gr.update(visible=bool(source)), 1), inputs=[session, report_pick],
                 outputs=[confirm], **private)
    confirm.click(behind_login(lambda a, b: (*start(library.remove, a, b, b), gr.update(visible=False)), 7),
                  inputs=[session, staged_pick, report_pick], outputs=[*view_out, confirm], **private)
    report_pick.change(lambda: gr.update(visible=False), outputs=[confirm], **private)
    save_examples.click(behind_login(save_examples_fn, 2), inputs=[session, report_pick, examples_text],
                        outputs=[examples_text, examples_note], **private)
    reset_examples.click(behind_login(reset_examples_fn, 2), inputs=[session, report_pick],
                         outputs=[examples_text, examples_note], **private)

    cleared = [(status, ""), (staged, staged_table([])), (staged_pick, gr.update(choices=[], value=None)),
               (reports, reports_table([])), (report_pick, gr.update(choices=[], value=None)),
               (s_title, ""), (s_issuer, ""), (s_year, ""), (s_url, ""), (r_title, ""), (r_issuer, ""),
               (r_year, ""), (r_url, ""), (examples_text, ""), (examples_note, "")]
    return refresh_io, cleared


def _format(groups: dict) -> str:
    return "\n".join(f"# {group}\n" + "\n".join(questions) for group, questions in groups.items())


def redeem_js() -> str:
    """The page script run after a login: trade the ticket the login event returned for the upload cookie
    (``ui.auth.StaffSessions``; the server side is ``reportqa.uploads``)."""
    from .auth import UPLOAD_SESSION_ROUTE

    return f"""
async (ticket) => {{
  if (ticket) {{
    try {{
      await fetch(new URL("{UPLOAD_SESSION_ROUTE.lstrip('/')}", document.baseURI),
                  {{method: "POST", headers: {{"X-Upload-Ticket": ticket}}, credentials: "same-origin"}});
    }} catch (e) {{}}
  }}
  return [];
}}
"""
