"""The citizens' chat: asking (streamed), the /ask API, votes and comments, and the chat tab's layout.

Thin by design: callbacks validate nothing themselves, they call ``qa.ask`` and
format the result with ``ui.render``.
"""
from __future__ import annotations

import logging
import time

import gradio as gr

from core.errors import InvalidQuestion, ReportQAError
from core.text import clean_user_text, clip, strip_markers
from core.types import Answer, ReportInfo, Scope, Turn
from records import MAX_COMMENT_CHARS, FeedbackStore, QuestionLog

from .examples import MAX_GROUPS, Groups
from .page import COPY_JS, GENERIC_ERROR_ZH, warn as _warn
from .render import (
    render_answer_html,
    render_answer_plain,
    render_error_html,
    render_partial_html,
    render_question_html,
    related_examples,
)
from .session import Shown, Vote
from .staff_add import build_add_form
from .staff_eval import StaffEval

logger = logging.getLogger(__name__)


VOTE_FAILED_ZH = "抱歉，暂时无法保存您的评价，请稍后再试。"
MAX_CHAT_MESSAGES = 200  # messages of the chat kept (the browser sends them back with every question)


def scope_choices(reports: list[ReportInfo]) -> list[tuple[str, str]]:
    """(label, value) pairs for the 查询范围 chooser: all reports, then each year, issuing body and report.

    A value is "", "year:2023", "issuer:大连市" or "source:<file>" (see ``parse_scope``).
    """
    years = sorted({r.year for r in reports if r.year}, reverse=True)
    issuers = sorted({r.issuer for r in reports if r.issuer})
    choices = [("全部报告", "")]
    choices += [(f"{y}年的报告", f"year:{y}") for y in years] if len(years) > 1 else []
    choices += [(f"{i}的报告", f"issuer:{i}") for i in issuers] if len(issuers) > 1 else []
    choices += [(f"《{r.display_title}》", f"source:{r.source}") for r in reports]
    return choices


def parse_scope(value: str | None) -> Scope | None:
    """The Scope a chooser value stands for; None for all reports or a value it does not know."""
    kind, _, rest = (value or "").partition(":")
    if not rest:
        return None
    if kind == "year" and rest.isdigit():
        return Scope(years=(int(rest),))
    if kind == "issuer":
        return Scope(issuers=(rest,))
    if kind == "source":
        return Scope(sources=(rest,))
    return None


def section_places(qa) -> dict[str, tuple[str, int]]:
    """Where each section of the indexed reports starts: section path -> (file, offset of its first passage);
    what a refusal's suggested sections link to. Computed once per loaded index version."""
    try:
        index = qa.index
    except ReportQAError:
        return {}
    cached = _SECTION_PLACES.get(id(qa))
    if cached is not None and cached[0] is index:
        return cached[1]
    places: dict[str, tuple[str, int]] = {}
    for chunk in index.chunks:
        if chunk.section_path:
            places.setdefault(chunk.section, (chunk.source, chunk.start))
    _SECTION_PLACES[id(qa)] = (index, places)
    return places


_SECTION_PLACES: dict[int, tuple[object, dict]] = {}  # id(service) -> (the index version, its section places)


def make_render(qa):
    """The final answer as HTML, with a refusal's sections linked to where they start (``section_places``)
    and the reports' titles kept out of its suggestions."""

    def render(answer: Answer, related: list[str] | None = None) -> str:
        try:
            places, titles = section_places(qa), set(qa.titles())
        except ReportQAError:
            places, titles = {}, set()
        return render_answer_html(answer, related, places=places, titles=titles)

    return render


def _replies(qa, question: str, history: list | None, turns: list | None = None, scope: Scope | None = None,
             render=render_answer_html, examples=None):
    """Ask ``qa`` (follow-ups resolved against ``turns``), streaming.

    Yields (chat messages, textbox value, answer or None): partial states
    while an LLM composes, then the final state; on an error, one state with
    the Chinese message and the typed question kept in the textbox. A refusal
    suggests questions from ``examples(scope)`` (the page's example groups).
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
    related = related_examples(answer.question, _groups(examples, scope)) if answer.refused else None
    yield history + asked + [{"role": "assistant", "content": render(answer, related)}], "", answer


def _groups(examples, scope: Scope | None) -> Groups:
    """The example groups for ``scope`` ({} without an example source, or when it fails: logged)."""
    if examples is None:
        return {}
    try:
        return examples(scope)
    except Exception:  # noqa: BLE001 - examples are a nicety: an answer is never lost for them
        logger.exception("could not work out the example questions")
        return {}

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


def make_chat(qa, log: QuestionLog | None = None, examples=None):
    """The chat callback, streaming, that remembers the conversation for follow-ups and the staff form:
    (question, history, turns, scope value) -> yields (history, textbox value, turns, last answer).
    ``examples(scope)``: the example groups a refusal suggests from.

    ``turns`` are the earlier (question, answer text) pairs of this browser
    session; the last answer is a ``Shown`` (the Answer and the turns before it),
    or None while composing or after an error, when the form keeps what it had.
    Each answer goes into the question ``log`` (when given) with the time it took.
    """
    render = make_render(qa)

    def chat(question: str, history: list | None, turns: list | None, scope_value: str | None = None):
        turns = list(turns or [])
        scope = parse_scope(scope_value)
        started = time.perf_counter()
        for history_now, box, answer in _replies(qa, question, history, turns, scope, render, examples):
            if answer is None:
                yield history_now, box, turns, None
            else:
                question_id = log.record(answer, (time.perf_counter() - started) * 1000, "page", scope) if log else None
                yield (history_now, box, turns + [Turn(answer.question, strip_markers(answer.text))],
                       Shown(answer, turns, question_id))

    return chat


def example_updates(groups: Groups) -> list:
    """Updates for the chat's example slots (and the block holding them) showing ``groups``."""
    items = list(groups.items())[:MAX_GROUPS]
    updates = [gr.update(visible=bool(items))]
    for i in range(MAX_GROUPS):
        if i < len(items):
            label, questions = items[i]
            updates.append(gr.update(samples=[[q] for q in questions], label=label, visible=True))
        else:
            updates.append(gr.update(samples=[], visible=False))
    return updates


def make_remember(qa=None):
    """After an answer: (chat messages, last answer, answers so far) -> (answers, plain text to copy).

    ``answers`` maps the chat index of each bot message to the ``Shown`` a vote on it stores.
    """

    def remember(history: list | None, last: Shown | None, answers: dict[int, Shown] | None):
        if not last or not history:
            return gr.skip(), gr.skip()
        try:
            titles = set(qa.titles()) if qa is not None else set()
        except ReportQAError:
            titles = set()
        return {**(answers or {}), len(history) - 1: last}, render_answer_plain(last.answer, titles)

    return remember


def make_vote(store: FeedbackStore, log: QuestionLog | None = None):
    """👍/👎 on a bot message -> (the stored row's id and vote, comment row update, comment box value).

    The vote is also linked to the answer's row in the question ``log``."""

    def vote(answers: dict[int, Shown] | None, data: gr.LikeData):
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        shown = (answers or {}).get(index)
        if data.liked is True:
            verdict = "up"
        elif data.liked is False:
            verdict = "down"
        else:  # a vote taken back: the stored one stays, nothing new to record
            return gr.skip(), gr.skip(), gr.skip()
        if shown is None:  # an error message or an old conversation: nothing to attach a vote to
            _warn("这条消息无法评价。")
            return gr.skip(), gr.skip(), gr.skip()
        try:
            row_id = store.add(shown.answer.question, shown.answer, verdict, "", shown.earlier)
        except ReportQAError as exc:  # the detail (a server path) is for the log, not for the citizen
            logger.error("storing a vote failed: %s", exc.message)
            _warn(VOTE_FAILED_ZH)
            return gr.skip(), gr.skip(), gr.skip()
        except Exception:
            logger.exception("storing a vote failed")
            _warn(GENERIC_ERROR_ZH)
            return gr.skip(), gr.skip(), gr.skip()
        if log is not None and shown.question_id is not None:
            try:
                log.set_vote(shown.question_id, verdict, row_id)
            except ReportQAError as exc:  # the vote itself is stored; only the log's link is missing
                logger.error("linking a vote to the question log failed: %s", exc.message)
        gr.Info("感谢反馈！如愿意，可以在下方补充意见。", title="感谢反馈")
        return Vote(row_id, index, verdict), gr.update(visible=True), ""

    return vote


def make_comment(store: FeedbackStore):
    """提交反馈: (last vote, answers, comment) -> (comment row update, comment box value).

    The comment is written onto the row the vote created.
    """

    def comment(voted: Vote | None, answers: dict[int, Shown] | None, text: str):
        text = (text or "").strip()
        if not voted or not text:
            _warn("请先输入意见再提交。" if voted else "请先点“赞”或“踩”再补充意见。")
            return gr.skip(), gr.skip()
        try:
            store.set_comment(voted.row_id, clean_user_text(text)[:MAX_COMMENT_CHARS])
        except (ReportQAError, ValueError) as exc:
            logger.error("storing a comment failed: %s", getattr(exc, "message", exc))
            _warn(VOTE_FAILED_ZH)
            return gr.skip(), gr.skip()
        gr.Info("意见已收到，谢谢！", title="感谢反馈")
        return gr.update(visible=False), ""

    return comment


def build_chat_tab(chat, staff: StaffEval, feedback: FeedbackStore, reports: list[ReportInfo], session: gr.State,
                   log: QuestionLog | None = None, examples=None):
    """The citizens' chat, and under it the staff's add-to-set accordion (returned: shown after login).

    ``examples(scope)`` gives the example groups (reportqa.examples: staff's choice per report, else the
    evaluation items that pass); they follow the 查询范围 chooser. Returns the add form, and the
    components a page load refreshes: the scope chooser, the examples block and its slots.
    """
    chatbot = gr.Chatbot(
        elem_id="rqa-chat",
        label="对话",
        show_label=False,  # a floating label would cover the first message
        autoscroll=False,  # the page's script brings the first line of a new answer into view instead
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
            placeholder="请输入问题，回车发送",
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
    first = list(_groups(examples, None).items())[:MAX_GROUPS]
    with gr.Column(elem_id="rqa-examples", visible=bool(first)) as examples_block:
        gr.HTML('<h2 class="rqa-examples-title">示例问题（点击即问）</h2>', padding=False)
        for i in range(MAX_GROUPS):
            label, questions = first[i] if i < len(first) else ("", [])
            example_sets.append(gr.Dataset(components=[question], samples=[[q] for q in questions], label=label,
                                           visible=i < len(first), samples_per_page=12, type="values",
                                           elem_id=f"rqa-example-group-{i}"))
    gr.Markdown("回答均摘自报告原文，[n] 为出处编号；点开来源可查看原文段落，点“查看原文”可在整篇报告中定位。",
                elem_id="rqa-footnote")

    turns = gr.State([])  # this session's earlier (question, answer) pairs
    last_answer = gr.State(None)
    answers = gr.State({})  # chat index of each bot message -> what a vote on it stores
    voted = gr.State(None)  # the last vote, which a comment is added to
    add_form, prefill_io = build_add_form(staff, last_answer, session, visible=False)

    chat_io = dict(inputs=[question, chatbot, turns, scope], outputs=[chatbot, question, turns, last_answer],
                   api_visibility="private")
    remember_io = dict(fn=make_remember(staff.qa), inputs=[chatbot, last_answer, answers], outputs=[answers, copy_text],
                       api_visibility="private")
    question.submit(chat, **chat_io).then(**remember_io).then(**prefill_io)
    send.click(chat, **chat_io).then(**remember_io).then(**prefill_io)
    for example_set in example_sets:
        example_set.click(lambda sample: sample[0] if sample else gr.skip(), inputs=[example_set], outputs=[question],
                          api_visibility="private").then(chat, **chat_io).then(**remember_io).then(**prefill_io)
    scope.change(lambda value: example_updates(_groups(examples, parse_scope(value))), inputs=[scope],
                 outputs=[examples_block, *example_sets], api_visibility="private")
    chatbot.like(make_vote(feedback, log), inputs=[answers], outputs=[voted, comment_row, comment_box],
                 api_visibility="private")
    comment_io = dict(inputs=[voted, answers, comment_box], outputs=[comment_row, comment_box],
                      api_visibility="private")
    comment_send.click(make_comment(feedback), **comment_io)
    comment_box.submit(make_comment(feedback), **comment_io)
    copy.click(None, js=COPY_JS)
    # The chat's trash button starts a new conversation: later questions are not follow-ups of the old one.
    chatbot.clear(lambda: ([], None, {}, None, gr.update(visible=False)),
                  outputs=[turns, last_answer, answers, voted, comment_row], api_visibility="private")
    return add_form, [scope, examples_block, *example_sets]
