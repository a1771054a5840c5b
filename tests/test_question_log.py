"""The question log (records.questions) and the 问答记录 view's callbacks: real answers from the real report,
stored in a SQLite file and in a PostgreSQL server the tests start (``database_target``)."""
from __future__ import annotations

import csv
import io
import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core.types import Scope
from records import Database, FeedbackStore, QuestionLog
from records.schema import questions
from ui import staff_records
from ui.api import make_ask_api
from ui.chat import make_chat, make_vote

STATIONS = "全市建成了多少个便民服务站？"
OFF_TOPIC = "大连地铁几点停运？"
WEATHER = "今天大连天气怎么样？"


@pytest.fixture(scope="module")
def stations(qa):
    return qa.ask(STATIONS)


@pytest.fixture(scope="module")
def refusal(qa):
    answer = qa.ask(OFF_TOPIC)
    assert answer.refused
    return answer


@pytest.fixture()
def log(database_target) -> QuestionLog:
    return QuestionLog(database_target)


def set_created_at(log: QuestionLog, row_id: int, when: datetime | str) -> None:
    value = when if isinstance(when, str) else when.astimezone(UTC).isoformat(timespec="seconds")
    with log.database.write() as conn:
        conn.execute(questions.update().where(questions.c.id == row_id).values(created_at=value))


def test_a_question_is_stored_with_what_staff_need_and_nothing_about_who_asked(log, stations, refusal):
    answered = log.record(stations, 23.44, "page")
    refused = log.record(refusal, 19.0, "api", Scope(sources=("dalian-2023-law-based-government-report.txt",)))
    assert refused > answered and log.count() == 2
    new, old = log.rows()
    assert (old.id, old.question, old.reply, old.channel, old.latency_ms) == (answered, STATIONS, "answer", "page", 23.4)
    assert old.report == stations.citations[0].chunk.source
    assert old.sections == [c.chunk.section for c in stations.citations]
    assert old.citations[0] == {"n": 1, "source": stations.citations[0].chunk.source,
                                "section": stations.citations[0].chunk.section,
                                "chunk_id": stations.citations[0].chunk.chunk_id}
    assert old.vote is None and old.feedback_id is None and old.suggestions == []
    assert datetime.fromisoformat(old.created_at).utcoffset() == timedelta(0)
    assert (new.reply, new.channel, new.citations) == ("refusal", "api", [])
    assert new.report == "dalian-2023-law-based-government-report.txt"  # the scope it was asked in
    assert new.suggestions == list(refusal.suggestions)
    stored = set(new.to_dict())
    assert not stored & {"ip", "address", "client", "session", "history", "answer", "user_agent"}


def test_filters_by_date_reply_kind_and_report(log, stations, refusal):
    related = replace(stations, reply="related")
    made = {}
    for key, answer, when in [("a", stations, "2026-11-24T23:59:59+00:00"), ("b", refusal, "2026-11-25T00:00:00+00:00"),
                              ("c", related, "2026-11-25T12:00:00+00:00"), ("d", refusal, "2026-11-26T08:00:00+00:00")]:
        made[key] = log.record(answer, 10, "page")
        set_created_at(log, made[key], when)
    ids = lambda **f: [made_key for r in log.rows(**f) for made_key, i in made.items() if i == r.id]  # noqa: E731
    assert ids() == ["d", "c", "b", "a"]
    assert ids(reply="refusal") == ["d", "b"] and ids(reply="related") == ["c"] and ids(reply="answer") == ["a"]
    assert ids(since="2026-11-25", until="2026-11-25") == ["c", "b"]
    assert ids(report=stations.citations[0].chunk.source) == ["c", "a"]  # refusals cite no report
    assert log.reports() == [stations.citations[0].chunk.source]
    assert [(d.day, d.questions, d.refusals) for d in log.by_day()] == [
        ("2026-11-24", 1, 0), ("2026-11-25", 2, 1), ("2026-11-26", 1, 1)]
    assert log.by_day(since="2026-11-25")[0].refusal_rate == 0.5
    with pytest.raises(ValueError, match="reply"):
        log.rows(reply="maybe")
    with pytest.raises(ValueError, match="2026/11/25"):
        log.rows(since="2026/11/25")


def test_refused_topics_count_the_words_refused_questions_share(log, qa):
    for question in (OFF_TOPIC, "大连地铁票价多少钱？", "地铁几点开门？", WEATHER):
        answer = qa.ask(question)
        assert answer.refused, question
        log.record(answer, 5)
    log.record(qa.ask(STATIONS), 5)  # answered: not counted
    topics = dict(log.refused_topics())
    assert topics["地铁"] == 3
    assert "便民服务站" not in topics and all(len(word) > 1 for word in topics)
    assert "几点" not in topics  # how a question is asked is no topic
    assert topics["大连"] == 3 and "大连" not in dict(
        log.refused_topics(ignore=staff_records.place_words(["大连市2023年法治政府建设情况报告"])))


def test_questions_older_than_the_retention_are_deleted(database_target, stations):
    log = QuestionLog(database_target, retention_days=90)
    now = datetime.now(UTC)
    kept, edge, old = (log.record(stations, 1) for _ in range(3))
    set_created_at(log, kept, now - timedelta(days=89, hours=23))
    set_created_at(log, edge, now - timedelta(days=90) + timedelta(minutes=5))
    set_created_at(log, old, now - timedelta(days=90, minutes=5))
    assert log.purge(now) == 1
    assert sorted(r.id for r in log.rows()) == [kept, edge]
    with pytest.raises(ValueError, match="retention_days"):
        QuestionLog(database_target, retention_days=0)


def test_recording_purges_at_most_hourly(database_target, stations):
    clock = [datetime.now(UTC).timestamp()]
    log = QuestionLog(database_target, retention_days=1, clock=lambda: clock[0])
    first = log.record(stations, 1)
    set_created_at(log, first, datetime.now(UTC) - timedelta(days=2))
    log.record(stations, 1)  # purged at the first record, not again within the hour
    assert log.count() == 2
    clock[0] += 3601
    log.record(stations, 1)
    assert first not in {r.id for r in log.rows()} and log.count() == 2


def test_a_vote_is_linked_to_its_question(database_target, stations):
    db = Database(database_target)
    log, store = QuestionLog(db), FeedbackStore(db)
    question_id = log.record(stations, 12)
    feedback_id = store.add(STATIONS, stations, "down")
    assert log.set_vote(question_id, "down", feedback_id)
    (row,) = log.rows()
    assert (row.vote, row.feedback_id) == ("down", feedback_id)
    assert not log.set_vote(question_id + 99, "up") and not log.set_vote(None, "up")
    with pytest.raises(ValueError, match="vote"):
        log.set_vote(question_id, "meh")


def test_csv_is_excel_safe_and_parses_back(log, stations):
    evil = replace(stations, question='=HYPERLINK("http://x")')
    log.record(evil, 3)
    log.record(stations, 4)
    rows = log.rows()
    text = log.to_csv(rows)
    lines = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [int(line["id"]) for line in lines] == [r.id for r in rows]
    assert lines[1]["question"].startswith("'=HYPERLINK") and lines[0]["question"] == STATIONS
    assert lines[0]["vote"] == "" and lines[0]["reply"] == "answer" and "section" in lines[0]["citations"]


def test_a_log_that_cannot_be_written_never_stops_an_answer(tmp_path, stations, caplog):
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    log = QuestionLog(blocked / "sub" / "feedback.db")
    assert log.record(stations, 1) is None
    assert "could not log a question" in caplog.text


# ---------------------------------------------------------------- where the page and /ask write it

def test_the_chat_and_the_ask_api_log_each_answer_and_a_vote_links_to_it(tmp_path, qa):
    db = Database(tmp_path / "feedback.db")
    log, store = QuestionLog(db), FeedbackStore(db)
    *_, (history, _, _, shown) = make_chat(qa, log)(STATIONS, [], [], "")
    assert shown.question_id is not None
    (row,) = log.rows()
    assert (row.id, row.question, row.channel, row.reply) == (shown.question_id, STATIONS, "page", "answer")
    assert row.latency_ms > 0

    class Like:
        index, liked = len(history) - 1, False

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_vote(store, log)({len(history) - 1: shown}, Like())
    (row,) = log.rows()
    assert row.vote == "down" and row.feedback_id == store.rows()[0].id

    assert "error" not in make_ask_api(qa, log)(OFF_TOPIC)
    api_row = log.rows()[0]
    assert (api_row.question, api_row.channel, api_row.reply) == (OFF_TOPIC, "api", "refusal")


# ---------------------------------------------------------------- the 问答记录 view

def test_the_records_view_shows_nothing_without_a_staff_session(log, stations):
    log.record(stations, 1)
    refresh = staff_records.make_records_refresh(log, allows=lambda token: token == "ok")
    assert all(out == {"__type__": "update"} for out in refresh(None, "", "", "全部", "全部"))


def test_the_records_view_table_charts_and_csv(log, qa, tmp_path):
    for question in (STATIONS, OFF_TOPIC, "大连地铁票价多少钱？"):
        log.record(qa.ask(question), 8)
    refresh = staff_records.make_records_refresh(log, lambda: {"dalian-2023-law-based-government-report.txt": "大连报告"},
                                                 tmp_path, allows=bool)
    summary, table, csv_path, rate, topics, report = refresh("ok", "", "", "全部", "全部")
    assert "符合条件的提问 3 条，其中拒答 2 条（拒答率 67%）" in summary and "保存 90 天" in summary
    assert list(table.columns) == staff_records.RECORD_COLUMNS
    assert table["回复类型"].tolist() == ["拒答", "拒答", "回答"]
    assert table["报告"].tolist()[-1] == "大连报告" and "优化政府机构职能" in "".join(table["引用的章节"])
    assert rate is not None and topics is not None and rate.size[0] > 500
    assert ("《大连报告》", "dalian-2023-law-based-government-report.txt") in report["choices"]
    with open(csv_path, encoding="utf-8-sig") as f:
        assert len(list(csv.DictReader(f))) == 3
    _, refused_only, *_ = refresh("ok", "", "", "refusal", "全部")
    assert len(refused_only) == 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = refresh("ok", "2026/1/1", "", "全部", "全部")
    assert all(o == {"__type__": "update"} for o in out)
    assert [str(w.message) for w in caught] == [staff_records.BAD_DATE_ZH]


def test_charts_are_drawn_with_the_cjk_font():
    from core.fonts import CJK_FONT, chart_font_family

    assert chart_font_family()[0] == CJK_FONT  # make test installs fonts-noto-cjk


def test_settings_choose_the_database_and_bound_the_retention(tmp_path):
    from pydantic import ValidationError

    from reportqa.config import Settings

    settings = Settings(data_dir=tmp_path)
    assert settings.records_database == tmp_path / "feedback.db" and settings.question_retention_days == 90
    url = "postgresql://reportqa:secret@db.internal/reportqa"
    with_url = Settings(data_dir=tmp_path, database_url=url)
    assert with_url.records_database == url and "secret" not in repr(with_url)
    for bad in (0, 4000):
        with pytest.raises(ValidationError, match="question_retention_days"):
            Settings(data_dir=tmp_path, question_retention_days=bad)
