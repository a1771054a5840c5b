"""Each check of retrieval.verify on its own, on sentences of the real report, and what read_question
takes from a question (years, relative years, places, the unit an amount wants)."""
from __future__ import annotations

import pytest

from retrieval.question import read_question
from retrieval.verify import clause_share, enumerates, failed, states_place, states_unit, states_year, verify


def sentence_with(qa, phrase: str):
    """The chunk of the shipped index and the sentence of it that holds ``phrase``."""
    for chunk in qa.index.chunks:
        for span in chunk.sentences:
            text = chunk.sentence_text(span)
            if phrase in text:
                return chunk, text
    raise AssertionError(f"no sentence of the report holds {phrase!r}")


def kinds_failed(asked, chunk, sentence, weights=None) -> set[str]:
    return {c.kind for c in failed(verify(asked, chunk, sentence, weights))}


def test_read_question_resolves_relative_years_against_the_report_year():
    asked = read_question("明年打算建多少个便民服务站？", report_year=2023)
    assert asked.years == [2024] and asked.year_words[2024] == "明年"
    assert read_question("今年建了多少个？", report_year=2023).years == [2023]
    assert read_question("2022年建了多少个？", report_year=2023).years == [2022]  # named outright: as it is
    assert read_question("明年建多少个？").years == []  # no report year: nothing to resolve against


def test_read_question_reads_the_unit_an_amount_wants_and_keeps_it_out_of_the_topic():
    asked = read_question("多少人获得行政执法资格？")
    assert asked.wants_quantity and asked.unit == "人数"
    assert {"行政", "执法", "资格"} <= set(asked.terms) and "人" not in asked.terms
    assert read_question("审批要多少天？").unit == "天数"
    assert read_question("收入增长多少？").unit == "增减幅度"
    assert read_question("全市建成了多少个便民服务站？").unit is None  # any amount will do
    assert not read_question("什么是法治政府？").wants_quantity
    assert read_question("具体指哪三项？").wants_enumeration


def test_year_check_needs_the_year_itself_not_a_range_around_it():
    assert states_year(2023, "2023年,大连市认真贯彻落实")
    assert states_year(2023, "2023 年，全市")  # letter-spaced PDF text
    assert not states_year(2022, "《法治政府建设实施纲要(2021—2025年)》")
    assert not states_year(2021, "《法治政府建设实施纲要(2021—2025年)》")


def test_year_check_on_a_report_sentence(qa):
    chunk, sentence = sentence_with(qa, "1726")
    assert "year" not in kinds_failed(read_question("2023年全市建成了多少个便民服务站？"), chunk, sentence)
    checks = verify(read_question("2021年全市建成了多少个便民服务站？"), chunk, sentence)
    year = next(c for c in checks if c.kind == "year")
    assert not year.ok and year.missing_zh == "没有2021年的相关内容"


def test_place_check_reads_the_report_title_and_forgives_one_ocr_lookalike(qa):
    chunk, sentence = sentence_with(qa, "1726")
    assert states_place("大连", chunk, "")  # the report is Dalian's: its title says so
    assert "place" in kinds_failed(read_question("沈阳全市建成了多少个便民服务站？"), chunk, sentence)
    ocr = chunk.__class__(**{**chunk.__dict__, "doc_title": "沐阳县2023年政府信息公开工作年度报告",
                             "issuer": "沐阳县"})
    assert states_place("沭阳", ocr, "")  # 沭 read as 沐 by OCR
    assert not states_place("泗阳", ocr, "")  # another county, not a look-alike


def test_amount_check_wants_a_number_in_the_sentence(qa):
    chunk, sentence = sentence_with(qa, "1726")
    asked = read_question("全市建成了多少个便民服务站？")
    assert "amount" not in kinds_failed(asked, chunk, sentence)
    assert "amount" in kinds_failed(asked, chunk, "持续推进便民服务站建设,提升群众办事体验。")
    assert "amount" not in kinds_failed(asked, chunk, "建成首批便民服务站。")  # 首批 states how many


def test_unit_check_wants_the_unit_asked():
    assert states_unit(r"人|名|人次", "2952人获得行政执法资格")
    assert states_unit(r"人|名|人次", "城镇新增就业1.2万人")
    assert not states_unit(r"天|日|个工作日|小时|个月|年", "全市建成便民服务站1726个")
    assert states_unit(r"元", "一般公共预算收入889.97 亿元")
    # A table row states its unit in a cell or in its header.
    assert states_unit(r"吨", "| 猪肉 | 万吨 | 14.10 |")
    assert states_unit(r"件", "| 罚款 | 0 |", table_header="行政处罚 | 数量（件）")
    assert not states_unit(r"件", "罚款没有发生")
    assert not states_unit(r"天|日|个工作日|小时|个月|年", "《纲要(2021—2025年)》")  # a date, not years


def test_item_check_wants_the_number_in_a_clause_about_what_was_asked(qa):
    chunk, sentence = sentence_with(qa, "1726")  # 全市建成便民服务站1726个,300个高频事项实现“全市通办”
    asked = read_question("全市建成了多少个便民服务站？")
    weights = {t: 1.0 for t in asked.terms}
    assert clause_share(asked, weights, sentence, chunk) >= 0.5
    other = read_question("发布了多少个指导性案例？")
    assert clause_share(other, {t: 1.0 for t in other.terms}, sentence, chunk) < 0.5


def test_item_check_pairs_the_unit_with_the_topic_within_one_clause(qa):
    # 失业的有多少人: the count of people sits beside the unemployment *rate*, about new jobs.
    chunk, _ = sentence_with(qa, "1726")
    sentence = "城镇新增就业1244万人，城镇调查失业率平均为5.2%。"
    asked = read_question("失业的有多少人？")
    weights = {t: 1.0 for t in asked.terms}
    assert asked.unit == "人数"
    assert clause_share(asked, weights, sentence, chunk) == 0.0
    assert "item" in kinds_failed(asked, chunk, sentence, weights)
    rate = read_question("失业率是多少？")
    assert clause_share(rate, {t: 1.0 for t in rate.terms}, sentence, chunk) > 0.0


def test_enumeration_check_wants_the_items_named():
    assert enumerates("制定《大连市A规定》《大连市B办法》")
    assert enumerates("推进教育、医疗、养老等领域改革")
    assert not enumerates("全市建成便民服务站1726个。")


@pytest.mark.parametrize(("question", "kind", "states", "lacks"), [
    ("什么时候印发的？", "time", "2023年5月印发实施", "印发实施了规定"),
    ("在哪里可以查到？", "where", "在市政府门户网站公开", "依法公开"),
])
def test_time_and_where_checks(qa, question, kind, states, lacks):
    chunk, _ = sentence_with(qa, "1726")
    asked = read_question(question)
    assert kind not in kinds_failed(asked, chunk, states)
    assert kind in kinds_failed(asked, chunk, lacks)


def test_every_failed_check_says_in_chinese_what_is_missing(qa):
    chunk, sentence = sentence_with(qa, "认真贯彻落实党中央")
    asked = read_question("2021年沈阳审批要多少天？")
    missing = failed(verify(asked, chunk, sentence, {t: 1.0 for t in asked.terms}))
    assert {c.kind for c in missing} >= {"year", "place", "unit"}
    assert all(c.missing_zh.startswith("没有") for c in missing)
