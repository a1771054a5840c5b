"""Citizens' thumbs up/down on answers, kept in a small SQLite file for staff to review and export.

Several people vote at once (Gradio worker threads, more than one server process), so every
call opens its own connection, the database runs in WAL mode with a busy timeout, and every
write is one ``BEGIN IMMEDIATE`` transaction: a vote waits its turn instead of failing.

(Over 300 lines on purpose: the connection discipline, the schema and its migration, the
Chinese/English error for each way SQLite fails, and the exports all read the same table.)
"""
from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ReportQAError

if TYPE_CHECKING:
    from core.types import Answer, Turn

SCHEMA_VERSION = 1  # PRAGMA user_version; bump with a migration in _ensure_schema
VOTES = ("up", "down")
MAX_COMMENT_CHARS = 2000
BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT    NOT NULL,               -- ISO 8601 UTC, 2026-11-25T00:10:00+00:00
    question   TEXT    NOT NULL,
    history    TEXT    NOT NULL DEFAULT '[]',  -- JSON [{"question", "answer"}, ...]
    answer     TEXT    NOT NULL,
    refused    INTEGER NOT NULL CHECK (refused IN (0, 1)),
    citations  TEXT    NOT NULL DEFAULT '[]',  -- JSON [Citation.to_dict(), ...]
    vote       TEXT    NOT NULL CHECK (vote IN ('up', 'down')),
    comment    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS feedback_created_at ON feedback (created_at);
"""


def _neutralise_formula(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class FeedbackStoreError(ReportQAError):
    """The feedback database cannot be opened or written (damaged, newer, locked, unwritable)."""


@dataclass(frozen=True)
class FeedbackRow:
    """One vote as staff review it: the question, what was shown, and the verdict."""

    id: int
    created_at: str  # ISO 8601 UTC, e.g. "2026-11-25T00:10:00+00:00"
    question: str
    history: list[dict]  # [{"question": str, "answer": str}, ...] earlier turns, may be []
    answer: str  # the answer text shown
    refused: bool
    citations: list[dict]  # Citation.to_dict() dicts
    vote: str  # "up" or "down"
    comment: str  # may be ""

    def to_dict(self) -> dict:
        return asdict(self)

    def turns(self) -> list[Turn]:
        """The earlier turns of the conversation the vote was given in."""
        from core.types import Turn

        return [Turn.of(t) for t in self.history if isinstance(t, dict)]

    def quotes(self) -> list[str]:
        """The supporting sentences the answer quoted, in citation order."""
        return [str(c.get("quote", "")) for c in self.citations if isinstance(c, dict)]


COLUMNS = tuple(f.name for f in fields(FeedbackRow))


class FeedbackStore:
    """Votes in one SQLite file. Cheap to construct; the file is created on first use."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FeedbackStore({str(self.path)!r})"

    # -- writing -----------------------------------------------------------------------------

    def add(self, question: str, answer: Answer | dict, vote: str, comment: str = "",
            history: Sequence[Turn | dict] | None = None) -> int:
        """Record one vote on an answer; returns the new row id.

        ``answer`` is the ``Answer`` shown (or its ``to_dict()``); ``history`` the earlier turns.
        """
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"question must be a non-empty string, got {question!r}")
        _check_vote(vote)
        comment = "" if comment is None else comment
        if not isinstance(comment, str):
            raise ValueError(f"comment must be a string, got {type(comment).__name__}")  # noqa: TRY004 - callers show any ValueError as a message
        comment = comment.strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"comment must be at most {MAX_COMMENT_CHARS} characters, got {len(comment)}")
        answer_text, refused, citations = _answer_fields(answer)
        record = (
            datetime.now(UTC).isoformat(timespec="seconds"),
            question.strip(),
            _dumps(_history_dicts(history)),
            answer_text,
            int(refused),
            _dumps(citations),
            vote,
            comment,
        )
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = conn.execute(
                    "INSERT INTO feedback (created_at, question, history, answer, refused, citations, vote, comment)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", record)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return int(cursor.lastrowid)

    def set_comment(self, row_id: int, comment: str) -> None:
        """Attach the optional comment a citizen writes after voting to that vote's row."""
        comment = (comment or "").strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"comment must be at most {MAX_COMMENT_CHARS} characters, got {len(comment)}")
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                updated = conn.execute("UPDATE feedback SET comment = ? WHERE id = ?", (comment, int(row_id))).rowcount
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        if updated != 1:
            raise ValueError(f"no feedback row with id {row_id}")

    # -- reading -----------------------------------------------------------------------------

    def rows(self, vote: str | None = None, since: str | date | None = None, until: str | date | None = None,
             limit: int | None = None) -> list[FeedbackRow]:
        """Votes, newest first; ``since``/``until`` are UTC dates "YYYY-MM-DD", both inclusive."""
        where, params = [], []
        if vote is not None:
            _check_vote(vote)
            where.append("vote = ?")
            params.append(vote)
        if since is not None:
            where.append("created_at >= ?")
            params.append(_day_start(_parse_day(since, "since")))
        if until is not None:
            where.append("created_at < ?")
            params.append(_day_start(_parse_day(until, "until") + timedelta(days=1)))
        sql = "SELECT " + ", ".join(COLUMNS) + " FROM feedback"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            sql += " LIMIT ?"
            params.append(limit)
        with self._connect() as conn:
            records = conn.execute(sql, params).fetchall()
        return [_row(record) for record in records]

    def count(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    # -- export ------------------------------------------------------------------------------

    def to_csv(self, rows: Sequence[FeedbackRow], excel_safe: bool = False) -> str:
        """A header and one line per row; history and citations as JSON, refused as true/false.

        Returned without a BOM: encode with "utf-8-sig" when Excel is to open the file.
        ``excel_safe``: a citizen's text starting with = + - @ gets a leading ' so a
        spreadsheet shows it instead of running it as a formula (OWASP CSV injection).
        """
        guard = _neutralise_formula if excel_safe else (lambda text: text)
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)  # excel dialect: \r\n, quotes around commas, quotes, newlines
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row.id, row.created_at, guard(row.question), _dumps(row.history), guard(row.answer),
                             "true" if row.refused else "false", _dumps(row.citations), row.vote, guard(row.comment)])
        return buffer.getvalue()

    def to_jsonl(self, rows: Sequence[FeedbackRow]) -> str:
        return "".join(json.dumps(row.to_dict(), ensure_ascii=False) + "\n" for row in rows)

    # -- the database ------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection for this call (never shared across threads), schema ensured."""
        self._refuse_folder()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FeedbackStoreError(
                f"Cannot create the folder for the feedback database {self.path}: {exc.strerror or exc}",
                f"无法创建反馈数据库所在的文件夹 {self.path.parent}：{exc.strerror or exc}",
            ) from None
        conn = None
        try:
            # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE themselves.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _use_wal(conn)
            self._ensure_schema(conn)
            yield conn
        except sqlite3.DatabaseError as exc:  # busy, NOTADB, CORRUPT, I/O; not ProgrammingError (a bug here)
            raise self._explain(exc) from None
        finally:
            if conn is not None:
                conn.close()

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise FeedbackStoreError(
                f"Feedback database {self.path} has schema version {version}, newer than this ReportQA "
                f"understands ({SCHEMA_VERSION}); upgrade ReportQA or point it at another file.",
                f"反馈数据库 {self.path} 的版本（{version}）比当前 ReportQA 支持的版本（{SCHEMA_VERSION}）新，"
                "请升级 ReportQA 或改用其他文件。",
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have created it while we waited for the write lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _refuse_folder(self) -> None:
        # Only stat the path: open()+close() of the database file here would drop every POSIX lock
        # this process holds on it (SQLite's "how to corrupt" 2.2). SQLite itself refuses a foreign
        # file with SQLITE_NOTADB before writing anything.
        if self.path.is_dir():
            raise FeedbackStoreError(
                f"Feedback database {self.path} is a folder, not a file; choose another path.",
                f"反馈数据库路径 {self.path} 是一个文件夹，不是文件，请换一个路径。",
            )

    def _explain(self, exc: sqlite3.Error) -> FeedbackStoreError:
        code = getattr(exc, "sqlite_errorname", "")
        if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in str(exc) \
                or "malformed" in str(exc):
            return self._damaged()
        if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc):
            return FeedbackStoreError(
                f"Feedback database {self.path} stayed busy for more than {BUSY_TIMEOUT_S:g} s "
                "(another program holds it open?); try again.",
                "反馈数据库正忙（可能被其他程序占用），请稍后重试。",
            )
        return self._unreadable(str(exc))

    def _damaged(self) -> FeedbackStoreError:
        return FeedbackStoreError(
            f"Feedback database {self.path} is not a SQLite database or is damaged; move it aside "
            f"(e.g. rename it to {self.path.name}.bad) and a new one will be created. Nothing was written.",
            f"反馈数据库文件 {self.path} 已损坏或不是 SQLite 数据库；请将其移走（例如改名为 {self.path.name}.bad），"
            "系统会新建一个。原文件未被改动。",
        )

    def _unreadable(self, reason: str) -> FeedbackStoreError:
        return FeedbackStoreError(
            f"Cannot use feedback database {self.path}: {reason}",
            f"无法使用反馈数据库 {self.path}：{reason}",
        )


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL (persistent in the file); retried because the switch can report busy at once."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _check_vote(vote: str) -> None:
    if vote not in VOTES:
        raise ValueError(f"vote must be 'up' or 'down', got {vote!r}")


def _parse_day(day: str | date, name: str) -> date:
    if isinstance(day, datetime):
        return day.astimezone(UTC).date() if day.tzinfo else day.date()
    if isinstance(day, date):
        return day
    try:
        return date.fromisoformat(day)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a date 'YYYY-MM-DD', got {day!r}") from None


def _day_start(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat(timespec="seconds")


def _answer_fields(answer: Answer | dict) -> tuple[str, bool, list[dict]]:
    """(text, refused, citation dicts) of an Answer or of its to_dict()."""
    if isinstance(answer, dict):
        return str(answer.get("answer", "")), bool(answer.get("refused", False)), list(answer.get("citations", []))
    try:
        return answer.text, bool(answer.refused), [c.to_dict() for c in answer.citations]
    except AttributeError:
        raise ValueError(f"answer must be an Answer or Answer.to_dict(), got {type(answer).__name__}") from None


def _history_dicts(history: Sequence[Turn | dict] | None) -> list[dict]:
    turns = []
    for turn in history or []:
        if isinstance(turn, dict):
            question, answer = turn.get("question"), turn.get("answer", "")
        else:
            question, answer = getattr(turn, "question", None), getattr(turn, "answer", "")
        if not isinstance(question, str) or not isinstance(answer, str):
            raise ValueError(f"history turns must be {{'question': str, 'answer': str}}, got {turn!r}")  # noqa: TRY004
        turns.append({"question": question, "answer": answer})
    return turns


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _row(record: tuple) -> FeedbackRow:
    row_id, created_at, question, history, answer, refused, citations, vote, comment = record
    return FeedbackRow(id=row_id, created_at=created_at, question=question, history=json.loads(history),
                       answer=answer, refused=bool(refused), citations=json.loads(citations),
                       vote=vote, comment=comment)
