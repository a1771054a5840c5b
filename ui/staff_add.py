"""The closed 加入评测集 form, under the chat (prefilled from the last answer) and under a 👎 in 反馈."""
from __future__ import annotations

import logging

import gradio as gr

from core.errors import ReportQAError
from evals.drafts import ItemRejected, draft_from_answer, draft_from_parts, item_from_form, next_item_id
from records.feedback import FeedbackRow

from .page import GENERIC_ERROR_ZH, esc as _esc, skip as _skip, warn as _warn
from .session import Shown
from .staff_eval import StaffEval, gated
from .staff_tables import CATEGORY_CHOICES, status_html

logger = logging.getLogger(__name__)


def make_prefill_callback(staff: StaffEval):
    """(the last answer shown, or a stored 👎) -> the add form's fields; nothing changes when there is none."""

    def prefill(last: Shown | FeedbackRow | None):
        if not last:
            return _skip(10)
        item_id = next_item_id(staff.eval_set_path)
        if isinstance(last, FeedbackRow):  # a stored 👎: the answer's text and quotes, not an Answer
            draft = draft_from_parts(last.question, last.answer, last.refused, last.quotes(), last.turns(), item_id)
        else:
            draft = draft_from_answer(last.answer, last.earlier, item_id)
        earlier = "".join(f"<li>问：{_esc(t.question)}<br>答：{_esc(t.answer)}</li>" for t in draft.history)
        history_html = (f'<div class="rqa-meta">前文（追问所依据的对话）：<ul>{earlier}</ul></div>'
                        if draft.history else "")
        return (draft.id, draft.question, draft.answerable, draft.category, draft.reference_answer,
                "\n".join(draft.evidence), "\n".join(draft.required_facts), draft.history,
                gr.update(value=bool(draft.history), visible=bool(draft.history)), history_html)

    return prefill


def make_add_callback(staff: StaffEval):
    """The add form -> (status html, next id). Nothing is written unless the item is valid."""

    def add(item_id, question, answerable, category, reference_answer, evidence_text, facts_text, history,
            with_history):
        try:
            item = item_from_form(item_id, question, answerable, category, reference_answer, evidence_text,
                                  facts_text, (history or []) if with_history else [])
            staff.add(item)
        except ItemRejected as exc:
            _warn(exc.message_zh)
            return status_html(exc.message_zh, ok=False), gr.skip()
        except ReportQAError as exc:
            _warn(exc.message_zh)
            return status_html(exc.message_zh, ok=False), gr.skip()
        except OSError as exc:
            message = f"无法写入评测集 {staff.eval_set_path}：{exc.strerror or exc}"
            _warn(message)
            return status_html(message, ok=False), gr.skip()
        except Exception:
            logger.exception("adding an evaluation item failed")
            _warn(GENERIC_ERROR_ZH)
            return status_html(GENERIC_ERROR_ZH, ok=False), gr.skip()
        return status_html(f"已加入：{item.id}"), next_item_id(staff.eval_set_path)

    return add


def build_add_form(staff: StaffEval, last_answer: gr.State, session: gr.State, title: str = "加入评测集（工作人员）",
                   elem_prefix: str = "rqa-add", visible: bool = True):
    """The closed accordion of the add-to-set form. Returns (the accordion, the ``.then(**...)`` arguments
    that prefill it from ``last_answer``); chain those after every event that answers a question.
    Both prefilling and 加入评测集 check the staff ``session`` (its token State) first."""
    with gr.Accordion(title, open=False, visible=visible, elem_id=elem_prefix) as accordion:
        gr.Markdown("把问题加入评测集。已按回答预填，请核对修改后再加入；证据原文和必含事实每行一条。")
        history = gr.State([])
        history_html = gr.HTML()
        with_history = gr.Checkbox(value=False, visible=False, label="连同前文一起加入（追问）",
                                   elem_id=f"{elem_prefix}-with-history")
        with gr.Row():
            item_id = gr.Textbox(label="编号", scale=1, elem_id=f"{elem_prefix}-id")
            category = gr.Dropdown(CATEGORY_CHOICES, value="fact", label="类别", scale=1,
                                   elem_id=f"{elem_prefix}-category")
            answerable = gr.Checkbox(value=True, label="可回答（报告中有答案）", scale=1,
                                     elem_id=f"{elem_prefix}-answerable")
        question = gr.Textbox(label="问题", elem_id=f"{elem_prefix}-question")
        reference = gr.Textbox(label="参考答案", lines=2, elem_id=f"{elem_prefix}-reference")
        evidence = gr.Textbox(label="证据原文（逐字摘自报告，每行一条）", lines=3, elem_id=f"{elem_prefix}-evidence")
        facts = gr.Textbox(label="必含事实（回答中必须逐字出现，每行一条）", lines=2, elem_id=f"{elem_prefix}-facts")
        add = gr.Button("加入评测集", variant="secondary", elem_id=f"{elem_prefix}-button")
        status = gr.HTML(elem_id=f"{elem_prefix}-status")

    fields = [item_id, question, answerable, category, reference, evidence, facts]
    add.click(gated(staff, make_add_callback(staff), 2), inputs=[session, *fields, history, with_history],
              outputs=[status, item_id], api_visibility="private")
    prefill_outputs = [*fields, history, with_history, history_html]
    return accordion, dict(fn=gated(staff, make_prefill_callback(staff), len(prefill_outputs), warn=False),
                           inputs=[session, last_answer], outputs=prefill_outputs, api_visibility="private")
