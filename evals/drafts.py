"""Drafting evaluation items from answers and checking them: what the staff's 加入评测集 forms fill in.

Pure (no Gradio): an item drafted from an answer (its quotes as evidence, its
numbers and 《titles》 as required facts), a form's fields turned into a
checked ``EvalItem``, and the schema's English messages said in Chinese.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from core.text import NUMBER, TITLE, answer_body, nfkc, strip_markers
from core.types import Answer, Turn
from retrieval.followup import is_follow_up

from .dataset import CATEGORIES, EvalItem

REFUSED_REFERENCE = "报告中没有相关内容。"
ID_PREFIX = "staff-"


HISTORY_TURNS = 3  # earlier turns kept with a follow-up; the follow-up resolver reads only the last one
FIELD_ZH = {
    "id": "编号", "question": "问题", "history": "对话历史", "answerable": "可回答", "category": "类别",
    "reference_answer": "参考答案", "required_facts": "必含事实", "evidence": "证据原文",
}


@dataclass


class ItemDraft:
    """The add-to-set form, prefilled from the last answer; staff edit it before adding."""

    id: str
    question: str
    answerable: bool
    category: str
    reference_answer: str
    evidence: list[str] = field(default_factory=list)
    required_facts: list[str] = field(default_factory=list)
    history: list[Turn] = field(default_factory=list)


class ItemRejected(ValueError):
    """The form does not make a valid evaluation item; ``message_zh`` names the field and the fix."""

    def __init__(self, message_zh: str):
        super().__init__(message_zh)
        self.message_zh = message_zh


def claims_in(text: str) -> list[str]:
    """The 《titles》 and numbers an answer states, in order, as ``evals.metrics`` finds them.

    Numbers inside a title (纲要(2021—2025年)) belong to the title and are not listed twice.
    """
    body = answer_body(text or "")
    titles = list(dict.fromkeys(TITLE.findall(body)))
    outside = TITLE.sub(" ", body)
    numbers = list(dict.fromkeys(NUMBER.findall(outside)))
    return numbers + titles


def next_item_id(path: Path | str, prefix: str = ID_PREFIX) -> str:
    """The next free id like staff-007: one more than the highest staff id in the file."""
    highest = 0
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    try:
        lines = Path(path).read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        match = pattern.match(str(row.get("id", ""))) if isinstance(row, dict) else None
        if match:
            highest = max(highest, int(match.group(1)))
    return f"{prefix}{highest + 1:03d}"


def draft_from_answer(answer: Answer, earlier: Sequence[Turn], item_id: str) -> ItemDraft:
    """The form for ``answer``: our answer as the reference, its quotes as evidence, its claims as facts.

    ``earlier`` are the turns before this question; they become the item's
    history only when the question reads as a follow-up (那2024年呢？), so a
    citizen's fifth unrelated question is not filed as a follow-up of the first four.
    """
    return draft_from_parts(answer.question, answer.text, answer.refused, [c.quote for c in answer.citations],
                            earlier, item_id)


def draft_from_parts(question: str, text: str, refused: bool, quotes: Sequence[str], earlier: Sequence[Turn],
                     item_id: str) -> ItemDraft:
    """``draft_from_answer`` from the pieces an answer leaves behind (as a stored 👎 keeps them)."""
    history = list(earlier)[-HISTORY_TURNS:] if is_follow_up(question) else []
    if refused:
        return ItemDraft(item_id, question, False, "followup" if history else "unanswerable",
                         REFUSED_REFERENCE, history=history)
    evidence = list(dict.fromkeys(q for q in quotes if q.strip()))
    folded = [nfkc(q) for q in evidence]
    facts = [f for f in claims_in(text) if any(f in q for q in folded)]
    category = "followup" if history else ("multi" if len(evidence) > 1 else "fact")
    return ItemDraft(item_id, question, True, category, strip_markers(text), evidence, facts, history)


def lines_of(text: str | None) -> list[str]:
    """A multi-line form field as a list: one entry per non-blank line, stripped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


# English messages of the set's schema (evals.dataset, pydantic) -> what staff read.


_REASONS_ZH: list[tuple[re.Pattern, str]] = [(re.compile(p), zh) for p, zh in [
    (r"^Field required", "缺少此项"),
    (r"^Extra inputs are not permitted", "不认识的字段，请删除"),
    (r"^String should have at least 1 character", "不能为空"),
    (r"^String should have at most (\d+) characters?", r"太长，最多 \1 字"),
    (r"^List should have at most (\d+) items?", r"条目太多，最多 \1 条"),
    (r"^Input should be 'fact'", "只能是 " + "、".join(CATEGORIES) + " 之一"),
    (r"^Input should be a valid boolean", "应为 true 或 false"),
    (r"^Input should be a valid string", "应为文字"),
    (r"^Input should be a valid list", "应为列表"),
    (r"^category 'unanswerable' needs answerable false", "类别为 unanswerable 时，“可回答”不能勾选"),
    (r"^an answerable item needs at least one required fact", "可回答的题目至少要有一条必含事实"),
    (r"^an unanswerable item has no required facts", "不可回答的题目不能有必含事实，请清空"),
    (r"^a required fact is empty", "有一条必含事实是空的"),
    (r"^an answerable item needs at least one evidence quote", "可回答的题目至少要有一条证据原文"),
    (r"^an unanswerable item has no evidence", "不可回答的题目不能有证据原文，请清空"),
    (r"^an evidence quote is empty", "有一条证据原文是空的"),
    (r"^required fact (.+) is in none of the evidence quotes", r"必含事实 \1 不在任何一条证据原文中"),
    (r"^not valid JSON", "不是有效的 JSON"),
    (r"^expected a JSON object", "应为一个 JSON 对象"),
    (r"^duplicate id (.+) \(first on line (\d+)\)", r"编号 \1 重复（第 \2 行已有）"),
    (r"^not valid UTF-8", "不是 UTF-8 编码，请另存为 UTF-8"),
]]


def reason_zh(message: str) -> str:
    """A schema message in Chinese; an unknown one is kept as it is."""
    for pattern, zh in _REASONS_ZH:
        match = pattern.match(message)
        if match:
            return match.expand(zh)
    return message


def field_zh(name: str | None) -> str:
    """“证据原文”（evidence） for a field name; nested names (history.0.answer) keep their path."""
    if not name:
        return ""
    head = name.split(".")[0]
    return f"“{FIELD_ZH[head]}”（{name}）" if head in FIELD_ZH else f"“{name}”"


def validation_message_zh(exc: ValidationError) -> str:
    """Every problem of a rejected item, each naming its field."""
    parts = []
    for err in exc.errors():
        name = ".".join(str(part) for part in err["loc"])
        parts.append(f"{field_zh(name)}：{reason_zh(err['msg'].removeprefix('Value error, '))}")
    return "；".join(parts)


def item_from_form(item_id: str, question: str, answerable: bool, category: str | None, reference_answer: str,
                   evidence_text: str, facts_text: str, history: Sequence[Turn] = ()) -> EvalItem:
    """The form as an ``EvalItem``; raises ItemRejected with a Chinese message naming the bad field."""
    row = {
        "id": (item_id or "").strip(),
        "question": (question or "").strip(),
        "history": [turn.to_dict() for turn in history],
        "answerable": bool(answerable),
        "category": category or "",
        "reference_answer": (reference_answer or "").strip(),
        "required_facts": lines_of(facts_text),
        "evidence": lines_of(evidence_text),
    }
    try:
        return EvalItem.model_validate(row)
    except ValidationError as exc:
        raise ItemRejected(validation_message_zh(exc)) from None


def check_evidence_verbatim(item: EvalItem, sources: dict[str, str]) -> None:
    """Each evidence quote must be copied from a report (compared NFKC, as the metrics compare)."""
    texts = [nfkc(t) for t in sources.values()]
    for n, quote in enumerate(item.evidence, start=1):
        if not any(nfkc(quote) in t for t in texts):
            raise ItemRejected(f"{field_zh('evidence')}：第 {n} 行在报告中找不到，请逐字复制报告原文（{quote[:30]}…）")
