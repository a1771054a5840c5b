"""Answers from the real report with the real model: facts, quotes, refusals."""
from __future__ import annotations

import re

import pytest

from core.types import REFUSAL_MESSAGE

FACTS = [
    ("全市建成了多少个便民服务站？", "1726", "(一)"),
    ("多少人获得行政执法资格？", "2952", "(四)"),
    ("办理市人大代表建议政协提案多少件？", "823", "(七)"),
    ("组织了多少次应急救援实战演练？", "10次", "(五)"),
    ("向园区赋权多少项？", "31项", "(一)"),
    ("在哪个区开展辽宁监管执法平台试点？", "西岗区", "(四)"),
    ("印发了什么重大行政决策后评估的规定？", "《大连市重大行政决策后评估规定》", "(三)"),
]

OFF_TOPIC = [
    "大连地铁几点停运？",
    "今天天气怎么样？",
    "沈阳的便民服务站有多少个？",
    "2021年大连建成了多少个便民服务站？",
    "大连的GDP是多少？",
]


@pytest.mark.parametrize(("question", "fact", "subsection"), FACTS)
def test_fact_questions_are_answered_with_the_supporting_sentence(qa, report_text, question, fact, subsection):
    answer = qa.ask(question)
    assert not answer.refused
    assert fact in answer.text
    first = answer.citations[0]
    # The answer leads with the fact, marked [1], and quotes the sentence that supports it.
    lead = answer.text.splitlines()[0]
    assert fact in lead and lead.endswith("[1]")
    assert first.quote in answer.text
    assert fact in first.quote
    assert report_text[first.start : first.end] == first.quote
    assert first.quote in first.chunk.text
    assert subsection in first.chunk.section


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_questions_are_refused_plainly(qa, question):
    answer = qa.ask(question)
    assert answer.refused
    # Plainly: the refusal sentence, or one naming the place or year the report is not about.
    named = re.fullmatch(r"抱歉，报告中没有(?:关于(沈阳|北京|上海)的内容|(20\d\d年)的相关内容)。", answer.text)
    assert answer.text == REFUSAL_MESSAGE or (named and (named.group(1) or named.group(2)) in question)
    assert answer.citations == []


def test_every_number_and_title_in_an_answer_is_in_its_citations(qa):
    questions = [q for q, _, _ in FACTS] + ["法治政府建设还有哪些不足？", "2024年有哪些工作打算？", "数字政府有哪些成果？"]
    for question in questions:
        answer = qa.ask(question)
        cited = " ".join(c.chunk.text for c in answer.citations)
        body = re.sub(r"\[\d+\]", "", answer.text)
        for token in re.findall(r"\d+(?:\.\d+)?%?|《[^》]+》", body):
            assert token in cited, (question, token)
        markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
        assert markers == {c.n for c in answer.citations}


def test_a_near_miss_points_at_the_sections_on_its_topic(qa):
    # The report covers 行政复议 but gives no time limit: no direct answer, and the reply points at (六).
    answer = qa.ask("行政复议的申请期限是多久？")
    assert answer.reply in ("related", "refusal")
    if answer.reply == "related":
        assert answer.text.startswith("报告中没有直接回答这个问题（没有给出天数）")
        assert any("(六)" in c.chunk.section for c in answer.citations)
    else:
        assert any("(六)" in s or "二、" in s for s in answer.suggestions)


def test_timings_are_reported(qa):
    answer = qa.ask("全市建成了多少个便民服务站？")
    assert set(answer.timings_ms) == {"retrieve", "answer"}
    assert all(v > 0 for v in answer.timings_ms.values())


@pytest.mark.parametrize(
    ("question", "lead"),
    [
        ("全市建成了多少个便民服务站？", "全市建成便民服务站1726个。[1]"),
        ("多少人获得行政执法资格？", "2952人获得行政执法资格。[1]"),
        ("有多少个高频事项实现全市通办？", "300个高频事项实现“全市通办”。[1]"),
    ],
)
def test_precise_questions_lead_with_the_exact_span(qa, question, lead):
    answer = qa.ask(question)
    assert answer.text.splitlines()[0] == lead
    assert answer.text.splitlines()[1] == f"原文：“{answer.citations[0].quote}”"


def test_list_questions_gather_the_items_each_cited(qa):
    answer = qa.ask("2024年有哪些工作打算？")
    lines = answer.text.splitlines()
    assert answer.reply in ("answer", "related")
    if answer.reply == "related":  # labelled as what the report says on it, then the items
        assert lines.pop(0) == "报告中没有直接回答这个问题。报告中的相关内容："
    assert len(lines) >= 5 and len(answer.citations) == len(lines)
    assert all(line.endswith(f"[{c.n}]") for line, c in zip(lines, answer.citations))
    assert all(c.chunk.section == "二、2024年工作打算" for c in answer.citations)
    assert any("机构改革" in line for line in lines)


def test_an_ungrounded_answer_is_never_shown(qa, caplog):
    from dataclasses import replace

    from reportqa.service import ReportQA

    answer = replace(qa.ask("全市建成了多少个便民服务站？"), text="全市建成便民服务站1800个，依据《不存在的规定》。[1]")
    with caplog.at_level("ERROR"):
        shown = ReportQA._grounded(answer)
    assert "1800" not in shown.text and "《不存在的规定》" not in shown.text
    assert shown.text == f"{answer.citations[0].quote}[1]"
    assert "1800" in caplog.text and "《不存在的规定》" in caplog.text


@pytest.mark.parametrize(
    ("question", "fact"),
    [("想查政府规章，在网上哪里看？", "“政策—规章”栏目"), ("在哪个区开展辽宁监管执法平台试点？", "西岗区")],
)
def test_where_questions_are_answered_by_a_place(qa, question, fact):
    answer = qa.ask(question)
    assert not answer.refused and fact in answer.text


@pytest.mark.parametrize(
    "question",
    ["“连政通”App在哪里下载？", "《中华人民共和国行政复议法》是哪一年修订的？", "投资项目审批时长具体压缩了多少天？"],
)
def test_when_where_and_how_many_without_such_a_sentence_are_not_answered_directly(qa, question):
    """The report covers the topic, not the detail: no direct answer; at most its related passages, saying what
    the report does not give."""
    answer = qa.ask(question)
    assert answer.reply in ("related", "refusal")
    if answer.reply == "related":
        assert answer.text.startswith("报告中没有直接回答这个问题") and answer.citations
