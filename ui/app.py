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
import logging  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from reportqa.errors import InvalidQuestion, ReportQAError  # noqa: E402
from retrieval.models import Answer, Citation, Turn  # noqa: E402

from .staff import STAFF_CSS, StaffEval, build_add_form, build_staff_tab, strip_markers  # noqa: E402

logger = logging.getLogger(__name__)

APP_TITLE = "报告问答"
GENERIC_ERROR_ZH = "抱歉，系统出了点问题，暂时无法回答。请稍后再试。"
SCOPE_ZH = (
    "本助手只根据上面这份报告的原文回答问题，每句回答都标注出处；"
    "报告里没有写到的内容（其他政策、办事指南、实时信息等）它不会回答，并会直接告诉您“没有找到”。"
)
EXAMPLE_QUESTIONS = [
    "全市建成了多少个便民服务站？",
    "对行政处罚不服怎么办？",
    "2024年有哪些工作打算？",
    "法治政府建设还有哪些不足？",
    "大连地铁几点停运？",
]

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
    meta = f"第{int(chunk.paragraph)}段 · 《{_esc(chunk.doc_title)}》"
    return (
        f'<details class="rqa-card"{" open" if open_ else ""}>'
        f'<summary><span class="rqa-n">[{int(citation.n)}]</span>{_esc(chunk.section)}</summary>'
        f'<div class="rqa-meta">{meta}</div>'
        f'<blockquote class="rqa-passage">{render_passage_html(citation)}</blockquote>'
        "</details>"
    )


def render_refusal_html(answer: Answer) -> str:
    parts = [
        '<div class="rqa-answer rqa-refused">',
        '<p class="rqa-refusal-badge">⚠ 未在报告中找到答案</p>',
        f"<p>{_esc(answer.text)}</p>",
    ]
    if answer.suggestions:
        items = "".join(f"<li>{_esc(s)}</li>" for s in answer.suggestions)
        parts.append(f"<p>您可以看看报告的这些部分：</p><ul>{items}</ul>")
    parts.append("</div>")
    return "".join(parts)


def render_answer_html(answer: Answer) -> str:
    """The bot's reply as HTML: answer text with [n] markers, then numbered source cards."""
    if answer.refused:
        return render_refusal_html(answer)
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


def render_question_html(question: str) -> str:
    """The user's message: literal text, never HTML or Markdown."""
    return "<br>".join(_esc(line) for line in (question or "").splitlines()) or "&nbsp;"


def render_error_html(message_zh: str) -> str:
    return f'<div class="rqa-answer rqa-error"><p>⚠ {_esc(message_zh)}</p></div>'


def render_header_html(titles: list[str], error_zh: str | None = None) -> str:
    names = "、".join(f"《{_esc(t)}》" for t in titles) if titles else "报告"
    error = f'<p class="rqa-error">⚠ {_esc(error_zh)}</p>' if error_zh else ""
    return (
        f'<h1>{names} 问答</h1>'
        f'<p class="rqa-scope">{_esc(SCOPE_ZH)}</p>{error}'
    )


# ---------------------------------------------------------------- callbacks

def _warn(message_zh: str) -> None:
    gr.Warning(_esc(message_zh), title="提示")


def render_partial_html(text: str) -> str:
    """An answer still being composed (an LLM streaming): plain escaped text and a cursor."""
    return f'<div class="rqa-answer rqa-partial"><p>{render_question_html(text)} ▌</p></div>'


def _replies(qa, question: str, history: list | None, turns: list | None = None):
    """Ask ``qa`` (follow-ups resolved against ``turns``), streaming.

    Yields (chat messages, textbox value, answer or None): partial states
    while an LLM composes, then the final state; on an error, one state with
    the Chinese message and the typed question kept in the textbox.
    """
    history = list(history or [])
    question = question or ""
    asked = [{"role": "user", "content": render_question_html(question)}]
    try:
        for event in qa.ask_stream(question, turns):
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
        logger.exception("unexpected error while answering %r", question)
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
    (question, history, turns) -> yields (history, textbox value, turns, last answer).

    ``turns`` are the earlier (question, answer text) pairs of this browser
    session; the last answer is {"answer": Answer, "earlier": turns before it},
    or None while composing or after an error, when the form keeps what it had.
    """

    def chat(question: str, history: list | None, turns: list | None):
        turns = list(turns or [])
        for history_now, box, answer in _replies(qa, question, history, turns):
            if answer is None:
                yield history_now, box, turns, None
            else:
                last = {"answer": answer, "earlier": turns}
                yield history_now, box, turns + [Turn(answer.question, strip_markers(answer.text))], last

    return chat


def make_ask_api(qa):
    """The ``/ask`` endpoint: Answer.to_dict(), or {"error": message_zh}."""

    def ask(question: str) -> dict:
        """Answer a question from the report. Returns the answer with citations, or {"error": ...}."""
        try:
            return qa.ask(question or "").to_dict()
        except ReportQAError as exc:
            return {"error": exc.message_zh}
        except Exception:
            logger.exception("unexpected error in /ask for %r", question)
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
    """The evaluation set and the output folder next to ``qa``'s data folder (data/evals/qa.jsonl, reports/eval)."""
    data = Path(qa.settings.data_dir)
    return data / "evals" / "qa.jsonl", data.parent / "reports" / "eval"


def build_app(qa, eval_set_path: Path | str | None = None, eval_out_dir: Path | str | None = None) -> gr.Blocks:
    """The Blocks app for ``qa`` (a reportqa.service.ReportQA). Launch it with ``launch``.

    Args:
        eval_set_path: the JSONL set staff add to and evaluate (default data/evals/qa.jsonl).
        eval_out_dir: where 运行评测 writes results.jsonl, summary.json, report.md and chart.png
            (default reports/eval beside the data folder).
    """
    titles, error_zh = _titles(qa)
    chat = make_chat(qa)
    page_title = f"{titles[0]} · {APP_TITLE}" if titles else APP_TITLE
    default_set, default_out = default_eval_paths(qa)
    staff = StaffEval(qa, eval_set_path or default_set, eval_out_dir or default_out)

    with gr.Blocks(title=page_title, analytics_enabled=False) as demo:
        gr.HTML(render_header_html(titles, error_zh), elem_id="rqa-header")
        with gr.Tabs():
            with gr.Tab("市民问答", id="chat", elem_id="rqa-chat-tab"):
                _build_chat_tab(chat, staff)
            build_staff_tab(demo, staff)
        gr.api(make_ask_api(qa), api_name="ask")

    # A plain ``demo.launch()`` still gets our theme and CSS (Gradio 6 reads these at launch).
    demo._deprecated_theme = THEME
    demo._deprecated_css = CSS
    return demo


def _build_chat_tab(chat, staff: StaffEval) -> None:
    """The citizens' chat, and under it the staff's add-to-set accordion."""
    chatbot = gr.Chatbot(
        elem_id="rqa-chat",
        label="对话",
        height=560,
        render_markdown=False,  # messages are our own escaped HTML, never Markdown
        sanitize_html=True,  # and Gradio's allow-list sanitizer still runs on them
        latex_delimiters=[],
        allow_tags=False,
        buttons=[],  # no share-to-Hugging-Face button; copy would copy raw HTML
        feedback_options=None,
        placeholder="<p>请在下方输入关于报告的问题，或点击示例问题。</p>",
    )
    with gr.Row():
        question = gr.Textbox(
            show_label=False,
            placeholder="输入您的问题，按回车发送",
            lines=1,
            max_lines=4,
            scale=8,
            autofocus=True,
            elem_id="rqa-question",
        )
        send = gr.Button("发送", variant="primary", scale=1, min_width=80)
    examples = gr.Examples(
        examples=[[q] for q in EXAMPLE_QUESTIONS],
        inputs=[question],
        label="示例问题（点击即问）",
        api_visibility="private",
    )
    gr.Markdown("回答均摘自报告原文，[n] 为出处编号；点开来源可查看原文段落。", elem_id="rqa-footnote")

    turns = gr.State([])  # this session's earlier (question, answer) pairs
    last_answer = gr.State(None)
    prefill_io = build_add_form(staff, last_answer)

    chat_io = dict(inputs=[question, chatbot, turns], outputs=[chatbot, question, turns, last_answer],
                   api_visibility="private")
    question.submit(chat, **chat_io).then(**prefill_io)
    send.click(chat, **chat_io).then(**prefill_io)
    examples.load_input_event.then(chat, **chat_io).then(**prefill_io)
    # The chat's trash button starts a new conversation: later questions are not follow-ups of the old one.
    chatbot.clear(lambda: ([], None), outputs=[turns, last_answer], api_visibility="private")


def launch_options(host: str = "127.0.0.1", port: int | None = 7860, **kw: Any) -> dict:
    """Keyword arguments for ``Blocks.launch``: local only, nothing fetched from the internet."""
    options: dict[str, Any] = dict(
        server_name=host,
        server_port=port,
        share=False,  # no gradio.live tunnel
        inbrowser=False,
        ssr_mode=False,  # no Node server
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        footer_links=["api", "settings"],
        run_history=False,  # no run log in the browser, no "save to a Hugging Face bucket" page
        show_error=False,
        theme=THEME,
        css=CSS,
    )
    options.update(kw)
    return options


def launch(qa, host: str = "127.0.0.1", port: int = 7860, eval_set_path: Path | str | None = None,
           eval_out_dir: Path | str | None = None, **kw: Any):
    """Build the app for ``qa`` and serve it on host:port. Extra keywords go to ``Blocks.launch``."""
    demo = build_app(qa, eval_set_path, eval_out_dir)
    demo.launch(**launch_options(host, port, **kw))
    return demo


__all__ = ["build_app", "launch", "default_eval_paths", "render_answer_html", "render_passage_html",
           "render_citation_html", "render_question_html", "render_header_html", "make_respond", "make_chat",
           "make_ask_api", "THEME", "CSS"]
