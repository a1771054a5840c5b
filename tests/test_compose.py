"""Questions with two or three parts get every part answered or named as not covered."""
from __future__ import annotations

import pytest

from core.types import REFUSAL_MESSAGE
from retrieval.compose import split_parts


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        ("办了多少件？满意率多少？", ["办了多少件？", "满意率多少？"]),
        ("全市建成了多少个便民服务站？", ["全市建成了多少个便民服务站？"]),
        ("建成了便民服务站。有多少个？", ["建成了便民服务站。有多少个？"]),  # one question, one part
    ],
)
def test_split_parts(question, parts):
    assert split_parts(question) == parts


def test_both_parts_are_answered_each_with_its_fact(qa, report_text):
    answer = qa.ask("大连2023年办理了多少件人大代表建议政协提案？满意率多少？")
    assert not answer.refused
    lines = answer.text.splitlines()
    assert lines[0] == "办理市人大代表建议政协提案823件。[1]"
    assert "满意率100%。[1]" in lines
    assert len(answer.citations) == 1  # one sentence supports both parts: cited once
    c = answer.citations[0]
    assert report_text[c.start : c.end] == c.quote


def test_a_part_the_report_does_not_cover_is_named(qa):
    answer = qa.ask("全市建成了多少个便民服务站？大连地铁几点停运？")
    assert not answer.refused
    assert "1726" in answer.text
    assert "报告中没有提到：大连地铁几点停运？" in answer.text
    assert [c.n for c in answer.citations] == [1]


def test_no_part_covered_is_a_plain_refusal(qa):
    answer = qa.ask("大连地铁几点停运？今天天气怎么样？")
    assert answer.refused and answer.text == REFUSAL_MESSAGE and answer.citations == []


def test_a_footnote_mark_in_a_quote_is_not_taken_for_a_citation(qa):
    """A real bulletin writes 生产总值[2]1329.65亿元: merging two parts must leave that [2] as it is."""
    from dataclasses import replace

    from retrieval.compose import merge_answers

    first = qa.ask("全市建成了多少个便民服务站？")
    with_mark = replace(first, text=first.text.replace("1726个", "1726个[2]", 1))
    merged = merge_answers("两问？", ["一问？", "二问？"], [with_mark, qa.ask("有多少人获得行政执法资格？")])
    assert "1726个[2]" in merged.text and not merged.refused
    assert [c.n for c in merged.citations] == list(range(1, len(merged.citations) + 1))
