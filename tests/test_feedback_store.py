"""The feedback store as the chat and staff use it: real answers, in a real SQLite file under tmp_path and in a
real PostgreSQL server the tests start (``database_target`` runs each test against both)."""
from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import sqlite3
import threading
from datetime import datetime, timedelta

import pytest

from core.errors import ReportQAError
from core.types import Turn
from records.db import HEAD
from records.feedback import COLUMNS, FeedbackRow, FeedbackStore
from records.schema import feedback

QUESTION = "全市建成了多少个便民服务站？"
HISTORY = [{"question": "大连有几支市级应急救援队伍？", "answer": "全市组建市级专业应急救援队伍…[1]"}]
COMMENT = "数字很清楚，谢谢！👍 \"引号\", 逗号\n第二行"

THREADS, THREAD_VOTES = 8, 25
PROCESSES, PROCESS_VOTES = 2, 25


@pytest.fixture(scope="module")
def answer(qa):
    answer = qa.ask(QUESTION)
    assert not answer.refused and answer.citations and answer.citations[0].quote
    return answer


@pytest.fixture(scope="module")
def refusal(qa):
    refusal = qa.ask("今天天气怎么样？")
    assert refusal.refused
    return refusal


@pytest.fixture()
def store(database_target) -> FeedbackStore:
    return FeedbackStore(database_target)


def set_created_at(store: FeedbackStore, row_id: int, created_at: str) -> None:
    with store.database.write() as conn:
        conn.execute(feedback.update().where(feedback.c.id == row_id).values(created_at=created_at))


def test_the_database_is_created_on_first_use(tmp_path, built_settings):
    assert built_settings.feedback_path == built_settings.data_dir / "feedback.db"
    path = tmp_path / "new" / "folder" / "feedback.db"
    store = FeedbackStore(path)
    assert not path.parent.exists()  # constructing is cheap
    assert store.count() == 0 and store.rows() == []
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # an older ReportQA still reads its votes
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == HEAD
    conn.close()


def test_a_postgresql_database_gets_its_tables_on_first_use(postgres):
    url = postgres.new_database()
    store = FeedbackStore(url)
    assert store.path is None and "postgresql" in repr(store)
    assert store.count() == 0 and store.rows() == []
    assert store.database.revision() == HEAD


def test_add_and_rows_round_trip_every_field(store, answer, refusal):
    before = datetime.now().astimezone()
    up_id = store.add(QUESTION, answer, "up", COMMENT, history=HISTORY)
    down_id = store.add("今天天气怎么样？", refusal, "down", history=[Turn(QUESTION, answer.text)])
    assert down_id > up_id and store.count() == 2

    refused_row, up_row = store.rows()
    assert up_row == FeedbackRow(
        id=up_id, created_at=up_row.created_at, question=QUESTION, history=HISTORY, answer=answer.text,
        refused=False, citations=[c.to_dict() for c in answer.citations], vote="up", comment=COMMENT)
    assert "1726" in up_row.answer and up_row.citations[0]["quote"] == answer.citations[0].quote
    created = datetime.fromisoformat(up_row.created_at)
    assert created.utcoffset() == timedelta(0) and up_row.created_at.endswith("+00:00")
    assert before - timedelta(seconds=1) <= created <= datetime.now().astimezone()

    assert refused_row.id == down_id and refused_row.refused is True
    assert refused_row.answer == refusal.text and refused_row.citations == []
    assert refused_row.history == [{"question": QUESTION, "answer": answer.text}]
    assert refused_row.vote == "down" and refused_row.comment == ""


def test_an_answer_given_as_its_json_dict_is_stored_the_same(store, answer):
    store.add(QUESTION, answer, "up", history=HISTORY)
    store.add(QUESTION, answer.to_dict(), "up", history=HISTORY)
    from_dict, from_answer = store.rows()
    assert from_dict.citations == from_answer.citations and from_dict.answer == from_answer.answer
    assert from_dict.refused is from_answer.refused is False


@pytest.mark.parametrize("vote", ["UP", "like", "", None, 1])
def test_a_vote_other_than_up_or_down_is_refused_by_name(store, answer, vote):
    with pytest.raises(ValueError, match="vote") as excinfo:
        store.add(QUESTION, answer, vote)
    assert repr(vote) in str(excinfo.value)
    assert store.count() == 0


def test_comment_length_and_question_are_checked(store, answer):
    assert store.add(QUESTION, answer, "down", "长" * 2000)
    with pytest.raises(ValueError, match="2000"):
        store.add(QUESTION, answer, "down", "长" * 2001)
    for question in ("", "   "):
        with pytest.raises(ValueError, match="question"):
            store.add(question, answer, "up")
    assert store.count() == 1
    with pytest.raises(ValueError, match="vote"):
        store.rows(vote="meh")
    with pytest.raises(ValueError, match="2026/11/25"):
        store.rows(since="2026/11/25")


def test_rows_filter_by_vote_and_by_inclusive_utc_dates_newest_first(store, answer):
    dated = {  # comment -> (vote, created_at)
        "a": ("up", "2026-11-24T23:59:59+00:00"),
        "b": ("down", "2026-11-25T00:00:00+00:00"),
        "c": ("up", "2026-11-25T23:59:59+00:00"),
        "d": ("down", "2026-11-26T00:00:00+00:00"),
        "e": ("up", "2026-11-27T12:00:00+00:00"),
    }
    for comment in ["c", "e", "a", "d", "b"]:  # ids not in date order
        vote, created_at = dated[comment]
        set_created_at(store, store.add(QUESTION, answer, vote, comment), created_at)

    def comments(**filters) -> str:
        return "".join(row.comment for row in store.rows(**filters))

    assert comments() == "edcba"
    assert comments(vote="up") == "eca"
    assert comments(vote="down") == "db"
    assert comments(since="2026-11-25") == "edcb"
    assert comments(until="2026-11-25") == "cba"
    assert comments(since="2026-11-25", until="2026-11-26") == "dcb"
    assert comments(since="2026-11-25", until="2026-11-25", vote="up") == "c"
    assert comments(since="2026-11-28") == ""
    assert comments(limit=2) == "ed"


def test_rows_made_in_the_same_second_are_newest_first_by_id(store, answer):
    ids = [store.add(QUESTION, answer, "up", str(i)) for i in range(3)]
    for row_id in ids:
        set_created_at(store, row_id, "2026-11-25T00:10:00+00:00")
    assert [row.id for row in store.rows()] == ids[::-1]


def test_csv_parses_back_into_the_same_values(store, answer, refusal):
    store.add(QUESTION, answer, "up", COMMENT, history=HISTORY)
    store.add("今天天气怎么样？", refusal, "down")
    rows = store.rows()
    text = store.to_csv(rows)
    assert not text.startswith("\ufeff")
    assert QUESTION in text and "便民服务站1726个" in text and "引号" in text

    header, *lines = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(header) == COLUMNS
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows):
        record = dict(zip(header, line))
        assert FeedbackRow(
            id=int(record["id"]), created_at=record["created_at"], question=record["question"],
            history=json.loads(record["history"]), answer=record["answer"],
            refused=json.loads(record["refused"]), citations=json.loads(record["citations"]),
            vote=record["vote"], comment=record["comment"]) == row
    assert store.to_csv([]) == ",".join(COLUMNS) + "\r\n"


def test_jsonl_lines_parse_back(store, answer, refusal):
    store.add(QUESTION, answer, "up", COMMENT, history=HISTORY)
    store.add("今天天气怎么样？", refusal, "down")
    rows = store.rows()
    text = store.to_jsonl(rows)
    assert QUESTION in text and "\\u" not in text  # Chinese stays readable
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n")
    assert [FeedbackRow(**json.loads(line)) for line in lines] == rows
    assert store.to_jsonl([]) == ""


def _vote_from_process(target: str, answer, writer: str, votes: int, start) -> None:
    """Runs in a spawned process: waits for the others, then votes as fast as it can."""
    store = FeedbackStore(target)
    start.wait(timeout=60)
    for i in range(votes):
        store.add(QUESTION, answer, "up" if i % 2 else "down", f"{writer}-{i}")


def test_threads_and_processes_voting_at_once_lose_nothing(database_target, answer):
    path = database_target  # not created yet (no file, no tables): the writers race to create it too
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(PROCESSES + 1)
    go = threading.Event()
    errors: list[BaseException] = []

    shared = FeedbackStore(path)  # one store for all threads, as the app holds it

    def vote_from_thread(writer: str) -> None:
        go.wait(timeout=60)
        try:
            for i in range(THREAD_VOTES):
                shared.add(QUESTION, answer, "up" if i % 2 else "down", f"{writer}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    processes = [spawn.Process(target=_vote_from_process, args=(str(path), answer, f"p{n}", PROCESS_VOTES, start))
                 for n in range(PROCESSES)]
    threads = [threading.Thread(target=vote_from_thread, args=(f"t{n}",)) for n in range(THREADS)]
    for worker in [*processes, *threads]:
        worker.start()
    start.wait(timeout=60)  # both processes are up and importing is behind them
    go.set()
    for thread in threads:
        thread.join(timeout=60)
    for process in processes:
        process.join(timeout=60)

    assert errors == []
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    expected = {f"t{n}-{i}" for n in range(THREADS) for i in range(THREAD_VOTES)}
    expected |= {f"p{n}-{i}" for n in range(PROCESSES) for i in range(PROCESS_VOTES)}
    assert shared.count() == len(expected) == 250
    rows = shared.rows()
    assert {row.comment for row in rows} == expected
    assert len({row.id for row in rows}) == 250


@pytest.mark.parametrize("content", [os.urandom(4096), b"SQLite format 3\x00" + os.urandom(4080), b"hello"],
                         ids=["random-bytes", "sqlite-header-then-garbage", "five-bytes"])
def test_a_damaged_file_is_refused_clearly_and_left_untouched(tmp_path, answer, content):
    path = tmp_path / "feedback.db"
    path.write_bytes(content)
    store = FeedbackStore(path)
    for use in (lambda: store.add(QUESTION, answer, "up"), store.rows, store.count):
        with pytest.raises(ReportQAError) as excinfo:
            use()
        error = excinfo.value
        assert str(path) in error.message and "not a SQLite database" in error.message
        assert "move it aside" in error.message
        assert "反馈数据库文件" in error.message_zh and "损坏" in error.message_zh
        assert error.__cause__ is None and error.__suppress_context__  # no sqlite3 traceback attached
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feedback.db"]  # no -wal / -shm left behind


def test_a_comment_is_attached_to_the_vote_row(database_target, qa):
    store = FeedbackStore(database_target)
    row_id = store.add("全市建成了多少个便民服务站？", qa.ask("全市建成了多少个便民服务站？"), "down")
    store.set_comment(row_id, "  想知道各区分别有多少个  ")
    (row,) = store.rows()
    assert row.id == row_id and row.comment == "想知道各区分别有多少个" and row.vote == "down"
    with pytest.raises(ValueError, match="no feedback row"):
        store.set_comment(row_id + 1, "x")
    with pytest.raises(ValueError, match="at most"):
        store.set_comment(row_id, "长" * 2001)


def test_excel_safe_csv_neutralises_formulas(database_target, qa):
    import csv
    import io

    store = FeedbackStore(database_target)
    store.add("=HYPERLINK(\"http://x\")", qa.ask("全市建成了多少个便民服务站？"), "down", comment="@SUM(A1)")
    (safe,) = list(csv.DictReader(io.StringIO(store.to_csv(store.rows(), excel_safe=True))))
    assert safe["question"].startswith("'=") and safe["comment"] == "'@SUM(A1)"
    (plain,) = list(csv.DictReader(io.StringIO(store.to_csv(store.rows()))))
    assert plain["question"].startswith("=HYPERLINK")


LEGACY_SCHEMA = """
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, question TEXT NOT NULL,
    history TEXT NOT NULL DEFAULT '[]', answer TEXT NOT NULL, refused INTEGER NOT NULL CHECK (refused IN (0, 1)),
    citations TEXT NOT NULL DEFAULT '[]', vote TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    comment TEXT NOT NULL DEFAULT '');
CREATE INDEX feedback_created_at ON feedback (created_at);
INSERT INTO feedback (created_at, question, answer, refused, vote, comment)
    VALUES ('2026-11-25T00:10:00+00:00', '旧的问题', '旧的回答', 0, 'up', '旧的意见');
PRAGMA user_version = 1;
"""


def test_a_file_of_the_hand_written_store_is_upgraded_with_its_votes_kept(tmp_path, answer):
    path = tmp_path / "feedback.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(LEGACY_SCHEMA)
    conn.close()
    store = FeedbackStore(path)
    (old,) = store.rows()
    assert (old.id, old.question, old.vote, old.comment) == (1, "旧的问题", "up", "旧的意见")
    assert store.add(QUESTION, answer, "down") == 2
    assert store.database.revision() == HEAD
    with sqlite3.connect(path) as conn:
        assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= {
            "feedback", "questions", "alembic_version"}


def test_a_database_newer_than_this_reportqa_is_refused_by_name(tmp_path):
    path = tmp_path / "feedback.db"
    FeedbackStore(path).count()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    with pytest.raises(ReportQAError, match="newer than this ReportQA") as excinfo:
        FeedbackStore(path).count()
    assert "9999" in excinfo.value.message and "升级" in excinfo.value.message_zh
