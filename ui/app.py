"""The web page: a Gradio chat over one report, with cited, extractive answers.

Thin by design: callbacks validate nothing themselves, they call ``qa.ask`` and
format the result. All HTML is built by the small pure ``render_*`` functions
below, and every piece of user or document text goes through ``html.escape``
before it is put into HTML.

How Gradio 6 shows chat messages (checked in the installed frontend):

* ``render_markdown=False`` makes the Chatbot treat a message as HTML, not
  Markdown, so ``**bold**``, ``[x](y)`` or ``$$..$$`` in a question stay literal
  (we escape the question, and Markdown never runs).
* ``sanitize_html=True`` (the default, kept) still runs Gradio's allow-list
  sanitizer on that HTML; ``details``, ``summary``, ``mark``, ``sup`` and the
  ``class``/``open`` attributes we use are on its list, ``script``/``on*`` are not.
* ``latex_delimiters=[]`` and ``allow_tags=False`` switch off KaTeX and the
  custom-tag pass, so no document text is ever interpreted.

Nothing phones home: analytics are off before Gradio is imported, the theme
uses system font stacks only (no Google Fonts, no CDN), and ``launch`` never
creates a share link, SSR Node server or MCP server.

Two tabs: 市民问答 (the chat, with a closed accordion where staff file the last
question into the evaluation set) and 评测（工作人员） (run the evaluation, read
the failures); the staff side is ``ui/staff.py``.
"""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import html  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import urllib.parse  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from core.text import clean_user_text, clip  # noqa: E402
from ingest.build import document_text  # noqa: E402
from reportqa.errors import InvalidQuestion, ReportQAError  # noqa: E402
from reportqa.feedback import MAX_COMMENT_CHARS, FeedbackStore, default_feedback_path  # noqa: E402
from retrieval.models import Answer, Citation, Turn, report_label  # noqa: E402
from retrieval.scope import Scope, parse_scope, report_title, scope_choices  # noqa: E402

from .auth import StaffSessions  # noqa: E402
from .staff import STAFF_CSS, StaffEval, build_add_form, build_staff_tab, staff_credentials, strip_markers  # noqa: E402

logger = logging.getLogger(__name__)

APP_TITLE = "报告问答"
GENERIC_ERROR_ZH = "抱歉，系统出了点问题，暂时无法回答。请稍后再试。"
VOTE_FAILED_ZH = "抱歉，暂时无法保存您的评价，请稍后再试。"
MAX_CHAT_MESSAGES = 200  # messages of the chat kept (the browser sends them back with every question)
CACHE_CLEANUP = (3600, 3600)  # Gradio's delete_cache: every hour, files older than an hour
SCOPE_ZH = (
    "本助手只根据上面这份报告的原文回答问题，每句回答都标注出处；"
    "报告里没有写到的内容（其他政策、办事指南、实时信息等）它不会回答，并会直接告诉您“没有找到”。"
)
# Example questions by topic, each checked to be answered from the report (tests/test_ui.py);
# the last group is one the report does not cover, to show what a refusal looks like.
EXAMPLE_GROUPS: dict[str, list[str]] = {
    "便民服务": ["全市建成了多少个便民服务站？", "多少个高频事项实现全市通办？", "推出了多少个“一件事一次办”事项？"],
    "执法": ["有多少人获得行政执法资格？", "行政执法人员完成了多少课时培训？", "包容审慎监管执法“四张清单”涉及多少项内容？"],
    "复议与调解": ["行政复议体制改革做了什么？", "如何推动行政机关负责人出庭应诉？"],
    "数字政府": ["“一网通办”有什么进展？", "“连政通”App是什么？", "“一网协同”平台获得了什么荣誉？"],
    "2024年打算": ["2024年有哪些工作打算？", "2024年在数字政府方面有什么打算？", "法治政府建设还有哪些不足？"],
    "报告以外的问题": ["大连地铁几点停运？"],
}
OFF_TOPIC_GROUP = "报告以外的问题"
EXAMPLE_QUESTIONS = [q for questions in EXAMPLE_GROUPS.values() for q in questions]

# System font stacks only: no GoogleFont, so the page loads nothing from the internet.
_SANS = ["PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC",
         "Source Han Sans SC", "WenQuanYi Micro Hei"]
_MONO = ["SFMono-Regular", "Menlo", "Consolas", "Noto Sans Mono CJK SC"]
THEME = gr.themes.Default(
    font=[gr.themes.Font(name) for name in _SANS] + ["system-ui", "sans-serif"],
    font_mono=[gr.themes.Font(name) for name in _MONO] + ["ui-monospace", "monospace"],
)

CSS = """
#rqa-header h1 { margin: 0 0 .25rem 0; font-size: 1.5rem; }
#rqa-header .rqa-scope { margin: 0; color: var(--body-text-color-subdued); }
#rqa-header .rqa-error { color: var(--error-text-color); }
.rqa-answer p { margin: 0 0 .4rem 0; }
.rqa-ref { font-size: .75em; font-weight: 600; color: var(--color-accent); margin-left: 1px; }
.rqa-sources { margin-top: .6rem; }
.rqa-sources-title { font-weight: 600; margin-bottom: .3rem; }
.rqa-card { border: 1px solid var(--border-color-primary); border-radius: 6px;
            padding: .35rem .6rem; margin: .3rem 0; }
.rqa-card summary { cursor: pointer; }
.rqa-card .rqa-n { font-weight: 600; color: var(--color-accent); margin-right: .3rem; }
.rqa-meta { color: var(--body-text-color-subdued); font-size: .9em; margin: .3rem 0; }
.rqa-passage { margin: .2rem 0; padding-left: .6rem; border-left: 3px solid var(--border-color-primary); }
.rqa-passage mark { padding: 0 1px; }
.rqa-answer ul { margin: 0; padding-left: 1.4rem; }
.rqa-resolved { color: var(--body-text-color-subdued); font-size: .9em; }
.rqa-refusal-badge { font-weight: 600; color: var(--color-accent); }
.rqa-open { display: inline-block; margin-top: .2rem; font-size: .9em; }
.rqa-examples-title { font-size: 1rem; margin: .4rem 0 .2rem 0; }
#rqa-examples .label { font-weight: 600; }
#rqa-report-text { max-width: 52rem; margin: 0 auto; padding: .5rem 1rem; line-height: 1.8; }
#rqa-report-text .rqa-para { margin: 0 0 .8rem 0; text-indent: 2em; overflow-wrap: anywhere; }
#rqa-report-text .rqa-report-name { font-size: .9rem; color: var(--body-text-color-subdued); }
#rqa-send { white-space: nowrap; }
#rqa-hl { scroll-margin: 6rem; outline: 2px solid var(--color-accent); }
/* Long Chinese lines and URLs wrap anywhere, so nothing widens the page on a phone. */
#rqa-chat .message, .rqa-answer, .rqa-passage { overflow-wrap: anywhere; word-break: break-word; }
@media (max-width: 640px) {
  .gradio-container { padding-left: 6px !important; padding-right: 6px !important; }
  #rqa-header h1 { font-size: 1.2rem; }
  #rqa-header .rqa-scope { font-size: .9em; }
  #rqa-chat { height: 440px !important; }
  #rqa-ask-row { flex-wrap: nowrap; gap: 6px; }
  #rqa-ask-row > * { min-width: 0 !important; }
  #rqa-ask-row > #rqa-send { flex: 0 0 64px; }
  #rqa-report-text { padding: .3rem .2rem; }
}
""" + STAFF_CSS

_MARKER = re.compile(r"\[(\d+)\]")


# ---------------------------------------------------------------- rendering (pure)

def _esc(text: str) -> str:
    return html.escape(text or "", quote=True)


def quote_span(citation: Citation) -> tuple[int, int] | None:
    """Where the quote sits inside ``citation.chunk.text``, or None if it does not."""
    text, quote = citation.chunk.text, citation.quote
    if not quote:
        return None
    offset = citation.start - citation.chunk.start
    if 0 <= offset and text[offset : offset + len(quote)] == quote:
        return offset, offset + len(quote)
    found = text.find(quote)
    return (found, found + len(quote)) if found >= 0 else None


def render_passage_html(citation: Citation) -> str:
    """The passage, escaped, with the supporting quote wrapped in <mark>."""
    text = citation.chunk.text
    span = quote_span(citation)
    if span is None:
        return _esc(text)
    a, b = span
    return f"{_esc(text[:a])}<mark>{_esc(text[a:b])}</mark>{_esc(text[b:])}"


def render_answer_text_html(text: str, numbers: set[int] | None = None) -> str:
    """Escape the answer text, one <p> per line, with [n] markers set as superscripts."""

    def marker(m: re.Match) -> str:
        if numbers is not None and int(m.group(1)) not in numbers:
            return m.group(0)
        return f'<sup class="rqa-ref">[{m.group(1)}]</sup>'

    lines = [line for line in (text or "").splitlines() if line.strip()]
    return "".join(f"<p>{_MARKER.sub(marker, _esc(line))}</p>" for line in lines)


def render_citation_html(citation: Citation, open_: bool = False) -> str:
    """One collapsible source card: [n] and section in the summary; paragraph, title, passage inside."""
    chunk = citation.chunk
    meta = f"第{int(chunk.paragraph)}段 · {_esc(report_label(chunk))}"
    if chunk.url and chunk.url.startswith(("http://", "https://")):
        meta += f' · <a href="{_esc(chunk.url)}" target="_blank" rel="noopener noreferrer">发布页面</a>'
    return (
        f'<details class="rqa-card"{" open" if open_ else ""}>'
        f'<summary><span class="rqa-n">[{int(citation.n)}]</span>{_esc(chunk.section)}</summary>'
        f'<div class="rqa-meta">{meta}</div>'
        f'<blockquote class="rqa-passage">{render_passage_html(citation)}</blockquote>'
        f'<a class="rqa-open" href="{source_anchor(citation)}" aria-label="在报告原文中查看来源 {int(citation.n)}">'
        "查看原文 ›</a>"
        "</details>"
    )


def source_anchor(citation: Citation) -> str:
    """The link a card's 查看原文 carries: ``#rqa-src-<start>-<end>-<source>``; the page's script
    (SOURCE_JS) turns a click on it into the 报告原文 tab with the quote marked and scrolled to."""
    return f"#rqa-src-{int(citation.start)}-{int(citation.end)}-{urllib.parse.quote(citation.chunk.source)}"


def _bigrams(text: str) -> set[str]:
    chars = [ch for ch in text if ch.isalnum()]
    return {a + b for a, b in zip(chars, chars[1:])}


def related_examples(question: str, k: int = 3) -> list[str]:
    """The ``k`` answerable example questions sharing most character pairs with ``question``
    (the first of each topic when nothing overlaps): what to try after a refusal."""
    answerable = [q for group, qs in EXAMPLE_GROUPS.items() if group != OFF_TOPIC_GROUP for q in qs if q != question]
    asked = _bigrams(question or "")
    scored = sorted(answerable, key=lambda q: -len(asked & _bigrams(q)))  # stable: ties keep topic order
    if not scored or not asked & _bigrams(scored[0]):
        firsts = [qs[0] for group, qs in EXAMPLE_GROUPS.items() if group != OFF_TOPIC_GROUP]
        return firsts[:k]
    return scored[:k]


def render_refusal_html(answer: Answer, related: list[str] | None = None) -> str:
    """A refusal, plainly marked, with the report sections and example questions worth trying instead."""
    parts = [
        '<div class="rqa-answer rqa-refused">',
        '<p class="rqa-refusal-badge">⚠ 未在报告中找到答案</p>',
        f"<p>{_esc(answer.text)}</p>",
    ]
    if answer.suggestions:
        items = "".join(f"<li>{_esc(s)}</li>" for s in answer.suggestions)
        parts.append(f"<p>您可以看看报告的这些部分：</p><ul>{items}</ul>")
    if related:
        items = "".join(f"<li>{_esc(q)}</li>" for q in related)
        parts.append(f'<p>也可以试试这些报告能回答的问题：</p><ul class="rqa-related">{items}</ul>')
    parts.append("</div>")
    return "".join(parts)


def render_answer_html(answer: Answer, related: list[str] | None = None) -> str:
    """The bot's reply as HTML: answer text with [n] markers, then numbered source cards.

    ``related``: example questions a refusal suggests (default: ``related_examples`` of the question).
    """
    if answer.refused:
        return render_refusal_html(answer, related_examples(answer.question) if related is None else related)
    numbers = {c.n for c in answer.citations}
    parts = ['<div class="rqa-answer">']
    if answer.resolved_question:  # a follow-up: say how it was understood
        parts.append(f'<p class="rqa-resolved">（按“{_esc(answer.resolved_question)}”理解）</p>')
    parts.append(render_answer_text_html(answer.text, numbers))
    if answer.citations:
        cards = "".join(render_citation_html(c, open_=(i == 0)) for i, c in enumerate(answer.citations))
        parts.append(f'<div class="rqa-sources"><div class="rqa-sources-title">来源</div>{cards}</div>')
    parts.append("</div>")
    return "".join(parts)


def render_answer_plain(answer: Answer) -> str:
    """The answer as plain text to copy: the text with its [n], then 来源： one line per source."""
    if answer.refused:
        lines = [answer.text]
        if answer.suggestions:
            lines += ["", "您可以看看报告的这些部分："] + [f"- {s}" for s in answer.suggestions]
        return "\n".join(lines)
    lines = [line.strip() for line in answer.text.splitlines() if line.strip()]
    if answer.citations:
        lines += ["", "来源："]
        for c in answer.citations:
            lines.append(f"[{c.n}] {report_label(c.chunk)} › {c.chunk.section}（第{c.chunk.paragraph}段）：“{c.quote}”")
            if c.chunk.url:
                lines.append(f"    {c.chunk.url}")
    return "\n".join(lines)


def render_report_html(sources: dict[str, str]) -> str:
    """Every report in full, escaped, one <p> per paragraph; each <p> says where it starts in its
    file (data-start), so the page script can mark a quote by its character offsets."""
    parts = ['<div id="rqa-report-text">']
    for name, text in sources.items():
        parts.append(f'<h2 class="rqa-report-name">{_esc(name)}</h2>')
        for match in re.finditer(r"[^\n]+", text):
            if match.group().strip():
                parts.append(f'<p class="rqa-para" data-source="{_esc(name)}" data-start="{match.start()}">'
                             f"{_esc(match.group())}</p>")
    if not sources:
        parts.append("<p>暂时无法显示报告原文。</p>")
    parts.append("</div>")
    return "".join(parts)


def render_question_html(question: str) -> str:
    """The user's message: literal text, never HTML or Markdown."""
    return "<br>".join(_esc(line) for line in (question or "").splitlines()) or "&nbsp;"


def render_error_html(message_zh: str) -> str:
    return f'<div class="rqa-answer rqa-error"><p>⚠ {_esc(message_zh)}</p></div>'


HEADER_TITLES = 3  # more reports than this are counted in the header, not listed


def render_header_html(titles: list[str], error_zh: str | None = None) -> str:
    if len(titles) > HEADER_TITLES:
        names = f"《{_esc(titles[0])}》等 {len(titles)} 份报告"
    else:
        names = "、".join(f"《{_esc(t)}》" for t in titles) if titles else "报告"
    scope = SCOPE_ZH if len(titles) <= 1 else SCOPE_ZH.replace("上面这份报告", f"已收录的 {len(titles)} 份报告")
    error = f'<p class="rqa-error">⚠ {_esc(error_zh)}</p>' if error_zh else ""
    return (
        f'<h1>{names} 问答</h1>'
        f'<p class="rqa-scope">{_esc(scope)}</p>{error}'
    )


# ---------------------------------------------------------------- callbacks

def _warn(message_zh: str) -> None:
    gr.Warning(_esc(message_zh), title="提示")


def render_partial_html(text: str) -> str:
    """An answer still being composed (an LLM streaming): plain escaped text and a cursor."""
    return f'<div class="rqa-answer rqa-partial"><p>{render_question_html(text)} ▌</p></div>'


def _replies(qa, question: str, history: list | None, turns: list | None = None, scope: Scope | None = None):
    """Ask ``qa`` (follow-ups resolved against ``turns``), streaming.

    Yields (chat messages, textbox value, answer or None): partial states
    while an LLM composes, then the final state; on an error, one state with
    the Chinese message and the typed question kept in the textbox.
    """
    history = list(history or [])[-MAX_CHAT_MESSAGES:]  # the browser sends the chat back each time: keep it bounded
    question = clean_user_text(question)
    asked = [{"role": "user", "content": render_question_html(question)}]
    try:
        for event in qa.ask_stream(question, turns, scope):
            if event.final:
                answer = event.answer
            else:
                yield history + asked + [{"role": "assistant", "content": render_partial_html(event.text)}], "", None
    except ReportQAError as exc:  # InvalidQuestion and every other error a user can act on
        _warn(exc.message_zh)
        if not isinstance(exc, InvalidQuestion):
            history += asked + [{"role": "assistant", "content": render_error_html(exc.message_zh)}]
        yield history, question, None  # keep what the user typed
        return
    except Exception:
        logger.exception("unexpected error while answering %r", clip(question))
        _warn(GENERIC_ERROR_ZH)
        yield history + asked + [{"role": "assistant", "content": render_error_html(GENERIC_ERROR_ZH)}], question, None
        return
    yield history + asked + [{"role": "assistant", "content": render_answer_html(answer)}], "", answer


def _reply(qa, question: str, history: list | None, turns: list | None = None) -> tuple[list, str, Answer | None]:
    """The final state of ``_replies``: (chat messages, textbox value, answer or None on error)."""
    state = None
    for state in _replies(qa, question, history, turns):
        pass
    return state


def make_respond(qa):
    """The chat callback without conversation memory: (question, history) -> (history, textbox value)."""

    def respond(question: str, history: list | None) -> tuple[list, str]:
        history, box, _ = _reply(qa, question, history)
        return history, box

    return respond


def make_chat(qa):
    """The chat callback, streaming, that remembers the conversation for follow-ups and the staff form:
    (question, history, turns, scope value) -> yields (history, textbox value, turns, last answer).

    ``turns`` are the earlier (question, answer text) pairs of this browser
    session; the last answer is {"answer": Answer, "earlier": turns before it},
    or None while composing or after an error, when the form keeps what it had.
    """

    def chat(question: str, history: list | None, turns: list | None, scope_value: str | None = None):
        turns = list(turns or [])
        for history_now, box, answer in _replies(qa, question, history, turns, parse_scope(scope_value)):
            if answer is None:
                yield history_now, box, turns, None
            else:
                last = {"answer": answer, "earlier": turns}
                yield history_now, box, turns + [Turn(answer.question, strip_markers(answer.text))], last

    return chat


BAD_YEAR_ZH = "年份应为四位数字，例如 2023。"


def _year(value) -> int | None:
    """A year as the API may send it (2023, "2023", "", None); ValueError for anything else."""
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    text = str(value).strip()
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else text
    if not (text.isascii() and text.isdigit() and len(text) == 4):
        raise ValueError(value)
    return int(text)


def _text_arg(value) -> str:
    return clean_user_text(value).strip() if isinstance(value, str) else ""


def make_ask_api(qa):
    """The ``/ask`` endpoint: Answer.to_dict(), or {"error": message_zh}."""

    # The hints document the API; Gradio passes values as sent (no preprocessing), so each is checked here.
    def ask(question: str, report: str = "", issuer: str = "", year: int | str | None = None) -> dict:
        """Answer a question from the reports, optionally only one report (file name), issuing body or year.

        Returns the answer with citations, or {"error": ...}.
        """
        try:
            wanted_year = _year(year)
        except ValueError:
            return {"error": BAD_YEAR_ZH}
        report, issuer = _text_arg(report), _text_arg(issuer)
        scope = Scope(sources=(report,) if report else (), issuers=(issuer,) if issuer else (),
                      years=(wanted_year,) if wanted_year else ()) or None
        try:
            qa.check_scope(scope)
            return qa.ask(question if isinstance(question, str) else "", scope=scope).to_dict()
        except ReportQAError as exc:
            return {"error": exc.message_zh}
        except Exception:
            logger.exception("unexpected error in /ask for %r", clip(question))
            return {"error": GENERIC_ERROR_ZH}

    return ask


# ---------------------------------------------------------------- app

def _titles(qa) -> tuple[list[str], str | None]:
    try:
        return list(qa.titles()), None
    except ReportQAError as exc:
        logger.warning("could not read report titles: %s", exc.message)
        return [], exc.message_zh
    except Exception:
        logger.exception("could not read report titles")
        return [], GENERIC_ERROR_ZH


def default_eval_paths(qa) -> tuple[Path, Path]:
    """The evaluation set and the output folder inside ``qa``'s data folder (data/evals/qa.jsonl, data/eval)."""
    return qa.settings.eval_set_path, qa.settings.eval_out_path


def build_app(qa, eval_set_path: Path | str | None = None, eval_out_dir: Path | str | None = None,
              feedback_path: Path | str | None = None) -> gr.Blocks:
    """The Blocks app for ``qa`` (a reportqa.service.ReportQA). Launch it with ``launch``.

    Args:
        eval_set_path: the JSONL set staff add to and evaluate (default data/evals/qa.jsonl).
        eval_out_dir: where 运行评测 writes results.jsonl, summary.json, report.md and chart.png
            (default DATA_DIR/eval, inside the data folder).
        feedback_path: the SQLite file citizens' 👍/👎 go to (default data/feedback.db).
    """
    titles, error_zh = _titles(qa)
    chat = make_chat(qa)
    page_title = f"{titles[0]} · {APP_TITLE}" if titles else APP_TITLE
    default_set, default_out = default_eval_paths(qa)
    sessions = StaffSessions(staff_credentials())
    staff = StaffEval(qa, eval_set_path or default_set, eval_out_dir or default_out, allows=sessions.valid)
    feedback = FeedbackStore(feedback_path or default_feedback_path(qa.settings))

    # Gradio's cached files (downloads, and anything posted to its upload route) are deleted after an hour.
    with gr.Blocks(title=page_title, analytics_enabled=False, delete_cache=CACHE_CLEANUP) as demo:
        gr.HTML(render_header_html(titles, error_zh), elem_id="rqa-header")
        session = gr.State(None)  # this browser session's staff login token (ui.auth.StaffSessions); server-side
        # Outside the tabs, so it is on the page before the 报告原文 tab is first opened.
        report_request = gr.Textbox(visible="hidden", elem_id="rqa-report-request")
        with gr.Tabs(elem_id="rqa-tabs"):
            with gr.Tab("市民问答", id="chat", elem_id="rqa-chat-tab"):
                add_form = _build_chat_tab(chat, staff, feedback, _reports(qa), session)
            with gr.Tab("报告原文", id="report", elem_id="rqa-report-tab"):
                _build_report_tab(qa, report_request)
            build_staff_tab(demo, staff, sessions, session, feedback=feedback, reveal=[add_form])
        gr.api(make_ask_api(qa), api_name="ask")

    # A plain ``demo.launch()`` still gets our theme, CSS and script (Gradio 6 reads these at launch).
    demo._deprecated_theme = THEME
    demo._deprecated_css = CSS
    demo._deprecated_js = SOURCE_JS
    return demo


def _build_report_tab(qa, request: gr.Textbox) -> None:
    """One report in full at a time (a portal may hold thousands), chosen from a list.

    查看原文 on a source card asks for the cited report through a hidden box
    (``request``: SOURCE_JS writes the file name into it) when another one is shown.
    """
    reports = _reports(qa)
    first = reports[0]["source"] if reports else None
    pick = gr.Dropdown(choices=[(f"《{report_title(r)}》", r["source"]) for r in reports],
                       value=first, label="选择报告", elem_id="rqa-report-pick", visible=len(reports) > 1,
                       filterable=True)
    shown = gr.HTML(render_report_html(_source_text(qa, first)), elem_id="rqa-report", padding=False)
    pick.input(lambda source: render_report_html(_source_text(qa, source)), inputs=[pick], outputs=[shown],
               api_visibility="private")

    def show(request_value: str):
        source = (request_value or "").split("\n")[0]
        return (source, render_report_html(_source_text(qa, source))) if source else (gr.skip(), gr.skip())

    request.change(show, inputs=[request], outputs=[pick, shown], api_visibility="private")


def _source_text(qa, source: str | None) -> dict[str, str]:
    """{source: its text} for the report tab; {} when it cannot be read (logged)."""
    if not source:
        return {}
    try:
        row = next(r for r in qa.reports() if r["source"] == source)
        return {source: document_text(qa.settings.index_path, row)}
    except (StopIteration, ReportQAError) as exc:
        logger.warning("could not show report %r: %s", source, exc)
        return {}


def _reports(qa) -> list[dict]:
    try:
        return qa.reports()
    except ReportQAError:
        return []  # the header already says what is wrong


def make_remember(store: FeedbackStore | None = None):
    """After an answer: (chat messages, last answer, answers so far) -> (answers, plain text to copy).

    ``answers`` maps the chat index of each bot message to what a vote on it stores.
    """

    def remember(history: list | None, last: dict | None, answers: dict | None):
        if not last or not history:
            return gr.skip(), gr.skip()
        answer: Answer = last["answer"]
        answers = dict(answers or {})
        answers[len(history) - 1] = {"question": answer.question, "answer": answer.to_dict(),
                                     "history": [{"question": t.question, "answer": t.answer} for t in last["earlier"]]}
        return answers, render_answer_plain(answer)

    return remember


def make_vote(store: FeedbackStore):
    """👍/👎 on a bot message -> (the stored row's id and vote, comment row update, comment box value)."""

    def vote(answers: dict | None, data: gr.LikeData):
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        record = (answers or {}).get(index) or (answers or {}).get(str(index))
        if data.liked is True:
            verdict = "up"
        elif data.liked is False:
            verdict = "down"
        else:  # a vote taken back: the stored one stays, nothing new to record
            return gr.skip(), gr.skip(), gr.skip()
        if record is None:  # an error message or an old conversation: nothing to attach a vote to
            _warn("这条消息无法评价。")
            return gr.skip(), gr.skip(), gr.skip()
        try:
            row_id = store.add(record["question"], record["answer"], verdict, "", record["history"])
        except ReportQAError as exc:  # the detail (a server path) is for the log, not for the citizen
            logger.error("storing a vote failed: %s", exc.message)
            _warn(VOTE_FAILED_ZH)
            return gr.skip(), gr.skip(), gr.skip()
        except Exception:
            logger.exception("storing a vote failed")
            _warn(GENERIC_ERROR_ZH)
            return gr.skip(), gr.skip(), gr.skip()
        gr.Info("感谢反馈！如愿意，可以在下方补充意见。", title="感谢反馈")
        return {"id": row_id, "index": index, "vote": verdict}, gr.update(visible=True), ""

    return vote


def make_comment(store: FeedbackStore):
    """提交反馈: (last vote, answers, comment) -> (comment row update, comment box value).

    The comment is written onto the row the vote created.
    """

    def comment(voted: dict | None, answers: dict | None, text: str):
        text = (text or "").strip()
        if not voted or not text:
            _warn("请先输入意见再提交。" if voted else "请先点 👍 或 👎 再补充意见。")
            return gr.skip(), gr.skip()
        try:
            store.set_comment(voted["id"], clean_user_text(text)[:MAX_COMMENT_CHARS])
        except (ReportQAError, ValueError) as exc:
            logger.error("storing a comment failed: %s", getattr(exc, "message", exc))
            _warn(VOTE_FAILED_ZH)
            return gr.skip(), gr.skip()
        gr.Info("意见已收到，谢谢！", title="感谢反馈")
        return gr.update(visible=False), ""

    return comment


COPY_JS = """() => {
  const box = document.querySelector('#rqa-copy-text textarea');
  const text = box ? box.value : '';
  if (text && navigator.clipboard) { navigator.clipboard.writeText(text).catch(() => {}); }
  if (box) { box.focus(); box.select(); }
}"""

BUSY_ZH = "当前提问的人较多，请稍后再试。"

# One page-wide script: a click on a card's 查看原文 opens the 报告原文 tab, marks the quote by its
# offsets (<mark id="rqa-hl">) and scrolls to it. Delegated from the document, because the cards are
# Chatbot HTML, where Gradio's sanitizer strips every on* attribute.
SOURCE_JS = """() => {
  if (window.rqaShowSource) return;
  // Gradio's page shows its own English notice when the queue is full (it ignores the server's
  // message); say it in Chinese. Text nodes only: nothing else on the page is touched.
  const busy = /This application is currently busy\\.?\\s*Please try again\\.?/;
  const translate = (root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!busy.test(node.nodeValue)) continue;
      node.nodeValue = node.nodeValue.replace(busy, BUSY_ZH);
      const toast = node.parentNode && node.parentNode.closest('.toast-body');
      if (toast) toast.querySelectorAll('.toast-title').forEach((title) => {
        for (const t of title.childNodes) if (t.nodeType === Node.TEXT_NODE && t.nodeValue.trim() === 'Error') t.nodeValue = '提示';
      });
    }
  };
  new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach((n) => {
    if (n.nodeType === Node.TEXT_NODE ? busy.test(n.nodeValue) : n.textContent && busy.test(n.textContent)) {
      translate(n.nodeType === Node.TEXT_NODE ? n.parentNode : n);
    }
  }))).observe(document.body, {childList: true, subtree: true, characterData: false});
  const unmark = () => {
    const old = document.getElementById('rqa-hl');
    if (!old) return;
    const parent = old.parentNode;
    parent.replaceChild(document.createTextNode(old.textContent), old);
    parent.normalize();
  };
  window.rqaShowSource = (source, start, end) => {
    const tab = [...document.querySelectorAll('[role=tab]')].find(t => t.textContent.trim() === '报告原文');
    if (tab) tab.click();
    let asked = false;
    const mark = (attempt) => {
      const paras = [...document.querySelectorAll('#rqa-report .rqa-para')];
      const para = paras.find(p => p.dataset.source === source && start >= +p.dataset.start
                                  && start < +p.dataset.start + p.textContent.length);
      if (!para || !para.offsetParent) {
        // Another report is shown: ask the server for this one (once), then keep looking.
        const request = document.querySelector('#rqa-report-request textarea, #rqa-report-request input');
        if (attempt >= 3 && request && !asked && !paras.some(p => p.dataset.source === source)) {
          asked = true;
          request.value = `${source}\n${Date.now()}`;  // a new value each time, so it always fires
          request.dispatchEvent(new Event('input', {bubbles: true}));
        }
        if (attempt < 80) setTimeout(() => mark(attempt + 1), 100);
        return;
      }
      unmark();
      const node = para.firstChild, from = start - +para.dataset.start;
      const range = document.createRange();
      range.setStart(node, from);
      range.setEnd(node, Math.min(end - +para.dataset.start, node.textContent.length));
      const hl = document.createElement('mark');
      hl.id = 'rqa-hl';
      hl.tabIndex = -1;
      range.surroundContents(hl);
      hl.scrollIntoView({block: 'center'});
      hl.focus({preventScroll: true});
    };
    mark(0);
  };
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a.rqa-open');
    if (!link) return;
    const m = /^#rqa-src-(\\d+)-(\\d+)-(.*)$/.exec(link.getAttribute('href') || '');
    if (!m) return;
    event.preventDefault();
    event.stopPropagation();
    window.rqaShowSource(decodeURIComponent(m[3]), +m[1], +m[2]);
  }, true);
}""".replace("BUSY_ZH", json.dumps(BUSY_ZH, ensure_ascii=False))


def _build_chat_tab(chat, staff: StaffEval, feedback: FeedbackStore, reports: list[dict], session: gr.State):
    """The citizens' chat, and under it the staff's add-to-set accordion (returned: shown after login)."""
    chatbot = gr.Chatbot(
        elem_id="rqa-chat",
        label="对话",
        height=520,
        render_markdown=False,  # messages are our own escaped HTML, never Markdown
        sanitize_html=True,  # and Gradio's allow-list sanitizer still runs on them
        latex_delimiters=[],
        allow_tags=False,
        buttons=[],  # no share-to-Hugging-Face button; copy would copy raw HTML (复制回答 copies plain text)
        feedback_options=("Like", "Dislike"),  # 👍/👎 under every answer (shown once .like is wired)
        placeholder="<p>请在下方输入关于报告的问题，或点击示例问题。</p>",
    )
    with gr.Row(elem_id="rqa-comment-row", visible=False) as comment_row:
        comment_box = gr.Textbox(label="补充意见（可选）", placeholder="哪里好、哪里不对？", lines=1, max_lines=4,
                                 scale=6, elem_id="rqa-comment")
        comment_send = gr.Button("提交反馈", scale=1, min_width=90, elem_id="rqa-comment-send")
    # With several reports a citizen can ask one of them (a year, an issuing body, one report).
    scope = gr.Dropdown(choices=scope_choices(reports), value="", label="查询范围", elem_id="rqa-scope",
                        visible=len(reports) > 1, interactive=True)
    with gr.Row(elem_id="rqa-ask-row"):
        question = gr.Textbox(
            label="您的问题",
            show_label=False,
            placeholder="输入您的问题，按回车发送",
            lines=1,
            max_lines=4,
            scale=8,
            min_width=160,
            autofocus=True,
            elem_id="rqa-question",
        )
        send = gr.Button("发送", variant="primary", scale=1, min_width=70, elem_id="rqa-send")
    with gr.Row(elem_id="rqa-copy-row"):
        copy = gr.Button("复制回答", size="sm", scale=0, min_width=90, elem_id="rqa-copy")
        gr.HTML('<span class="rqa-meta">复制最近一条回答及其来源（纯文本）</span>', padding=False)
    copy_text = gr.Textbox(label="最近一条回答（纯文本，可复制）", lines=3, max_lines=12, interactive=False,
                           buttons=["copy"], elem_id="rqa-copy-text", visible=True)
    example_sets = []
    with gr.Column(elem_id="rqa-examples"):
        gr.HTML('<h2 class="rqa-examples-title">示例问题（点击即问）</h2>', padding=False)
        for group, questions in EXAMPLE_GROUPS.items():
            example_sets.append(gr.Examples(
                examples=[[q] for q in questions],
                inputs=[question],
                label=group,
                api_visibility="private",
                examples_per_page=10,
            ))
    gr.Markdown("回答均摘自报告原文，[n] 为出处编号；点开来源可查看原文段落，点“查看原文”可在整篇报告中定位。",
                elem_id="rqa-footnote")

    turns = gr.State([])  # this session's earlier (question, answer) pairs
    last_answer = gr.State(None)
    answers = gr.State({})  # chat index of each bot message -> what a vote on it stores
    voted = gr.State(None)  # the last vote, which a comment is added to
    add_form, prefill_io = build_add_form(staff, last_answer, session, visible=False)

    chat_io = dict(inputs=[question, chatbot, turns, scope], outputs=[chatbot, question, turns, last_answer],
                   api_visibility="private")
    remember_io = dict(fn=make_remember(), inputs=[chatbot, last_answer, answers], outputs=[answers, copy_text],
                       api_visibility="private")
    question.submit(chat, **chat_io).then(**remember_io).then(**prefill_io)
    send.click(chat, **chat_io).then(**remember_io).then(**prefill_io)
    for examples in example_sets:
        examples.load_input_event.then(chat, **chat_io).then(**remember_io).then(**prefill_io)
    chatbot.like(make_vote(feedback), inputs=[answers], outputs=[voted, comment_row, comment_box],
                 api_visibility="private")
    comment_io = dict(inputs=[voted, answers, comment_box], outputs=[comment_row, comment_box],
                      api_visibility="private")
    comment_send.click(make_comment(feedback), **comment_io)
    comment_box.submit(make_comment(feedback), **comment_io)
    copy.click(None, js=COPY_JS)
    # The chat's trash button starts a new conversation: later questions are not follow-ups of the old one.
    chatbot.clear(lambda: ([], None, {}, None, gr.update(visible=False)),
                  outputs=[turns, last_answer, answers, voted, comment_row], api_visibility="private")
    return add_form


# Answers take ~25 ms of CPU on 2 cores: two at a time keep both busy. Past QUEUE_MAX_SIZE waiting
# events a new one is turned away at once (HTTP 503) instead of hanging; the page's script (SOURCE_JS)
# turns Gradio's English notice into BUSY_ZH. reportqa.server serves the app.
CONCURRENCY_LIMIT = 2
QUEUE_MAX_SIZE = 64


__all__ = ["build_app", "default_eval_paths", "render_answer_html", "render_passage_html",
           "render_answer_plain", "render_report_html", "related_examples", "EXAMPLE_GROUPS",
           "render_citation_html", "render_question_html", "render_header_html", "make_respond", "make_chat",
           "make_ask_api", "THEME", "CSS"]
