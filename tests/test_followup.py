"""Follow-ups are resolved against the previous turn before retrieval."""
from __future__ import annotations

import pytest

from core.types import Turn
from retrieval.followup import is_follow_up, resolve_follow_up


@pytest.mark.parametrize("question", ["那2024年呢？", "具体有哪些？", "这个平台叫什么？", "它们一年演练了多少次？", "那收回了多少？"])
def test_elliptical_questions_are_follow_ups(question):
    assert is_follow_up(question)


@pytest.mark.parametrize("question", ["全市建成了多少个便民服务站？", "2024年有哪些工作打算？", "大连地铁几点停运？"])
def test_standalone_questions_are_not(question):
    assert not is_follow_up(question)
    assert resolve_follow_up(question, [Turn("法治政府建设还有哪些不足？")]) == question


def test_a_new_year_replaces_the_old_one():
    resolved = resolve_follow_up("那2024年呢？", [{"question": "2023年大连建成了多少个便民服务站？", "answer": "1726个"}])
    assert "便民服务站" in resolved and "2024年" in resolved and "2023" not in resolved


def test_follow_up_retrieves_what_the_user_means(qa):
    history = [Turn("大连有几支市级应急救援队伍？", "16支市级应急救援队伍开展演练335次。")]
    alone = qa.ask("它们一年演练了多少次？")
    followed = qa.ask("它们一年演练了多少次？", history)
    assert "335" in followed.text and not followed.refused
    assert followed.resolved_question.startswith("大连有几支市级应急救援队伍")
    assert followed.question == "它们一年演练了多少次？"
    assert alone.reply != "answer" or "335" not in alone.text  # without the earlier turn: no direct answer


def test_follow_up_about_a_year_the_report_has_no_number_for_is_refused(qa):
    history = [Turn("2023年大连建成了多少个便民服务站？", "全市建成便民服务站1726个。")]
    answer = qa.ask("那2024年呢？", history)
    assert answer.refused
