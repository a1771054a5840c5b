"""Citizens' thumbs up/down on answers, in the shared database (``records.db``), for staff to review and export.

Several people vote at once (Gradio worker threads, several server processes or replicas); each
call is one short transaction (``Database.write``): on SQLite a ``BEGIN IMMEDIATE`` that waits its
turn, on PostgreSQL an ordinary one, so no vote is lost.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select, update

from .db import Database, FeedbackStoreError
from .schema import feedback

if TYPE_CHECKING:
    from core.types import Answer, Turn

VOTES = ("up", "down")
MAX_COMMENT_CHARS = 2000

__all__ = ["COLUMNS", "MAX_COMMENT_CHARS", "FeedbackRow", "FeedbackStore", "FeedbackStoreError", "VOTES"]


def neutralise_formula(text: str) -> str:
    """A citizen's text made safe for a spreadsheet: = + - @ at the start would run as a formula (OWASP)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


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
    """Votes in the shared database: a SQLite file (a path) or a URL, or a ``Database`` another store shares.
    Cheap to construct; the file (or schema) is created on first use."""

    def __init__(self, database: Database | Path | str):
        self.database = database if isinstance(database, Database) else Database(database)

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None when the database is a server."""
        return self.database.path

    def __repr__(self) -> str:
        return f"FeedbackStore({self.database.where!r})"

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
        record = dict(created_at=now_iso(), question=question.strip(), history=dumps(_history_dicts(history)),
                      answer=answer_text, refused=int(refused), citations=dumps(citations), vote=vote, comment=comment)
        with self.database.write() as conn:
            return int(conn.execute(insert(feedback).values(**record).returning(feedback.c.id)).scalar_one())

    def set_comment(self, row_id: int, comment: str) -> None:
        """Attach the optional comment a citizen writes after voting to that vote's row."""
        comment = (comment or "").strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"comment must be at most {MAX_COMMENT_CHARS} characters, got {len(comment)}")
        with self.database.write() as conn:
            updated = conn.execute(update(feedback).where(feedback.c.id == int(row_id)).values(comment=comment)).rowcount
        if updated != 1:
            raise ValueError(f"no feedback row with id {row_id}")

    # -- reading -----------------------------------------------------------------------------

    def rows(self, vote: str | None = None, since: str | date | None = None, until: str | date | None = None,
             limit: int | None = None) -> list[FeedbackRow]:
        """Votes, newest first; ``since``/``until`` are UTC dates "YYYY-MM-DD", both inclusive."""
        query = select(*(feedback.c[name] for name in COLUMNS))
        if vote is not None:
            _check_vote(vote)
            query = query.where(feedback.c.vote == vote)
        query = query.where(*date_filters(feedback.c.created_at, since, until))
        query = query.order_by(feedback.c.created_at.desc(), feedback.c.id.desc())
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            query = query.limit(limit)
        with self.database.read() as conn:
            records = conn.execute(query).all()
        return [_row(record) for record in records]

    def count(self) -> int:
        with self.database.read() as conn:
            return int(conn.execute(select(func.count()).select_from(feedback)).scalar_one())

    # -- export ------------------------------------------------------------------------------

    def to_csv(self, rows: Sequence[FeedbackRow], excel_safe: bool = False) -> str:
        """A header and one line per row; history and citations as JSON, refused as true/false.

        Returned without a BOM: encode with "utf-8-sig" when Excel is to open the file.
        ``excel_safe``: a citizen's text starting with = + - @ gets a leading ' so a
        spreadsheet shows it instead of running it as a formula (OWASP CSV injection).
        """
        guard = neutralise_formula if excel_safe else (lambda text: text)
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)  # excel dialect: \r\n, quotes around commas, quotes, newlines
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row.id, row.created_at, guard(row.question), dumps(row.history), guard(row.answer),
                             "true" if row.refused else "false", dumps(row.citations), row.vote, guard(row.comment)])
        return buffer.getvalue()

    def to_jsonl(self, rows: Sequence[FeedbackRow]) -> str:
        return "".join(json.dumps(row.to_dict(), ensure_ascii=False) + "\n" for row in rows)


# -- shared by the stores ------------------------------------------------------------------------

def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def parse_day(day: str | date, name: str) -> date:
    if isinstance(day, datetime):
        return day.astimezone(UTC).date() if day.tzinfo else day.date()
    if isinstance(day, date):
        return day
    try:
        return date.fromisoformat(day)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a date 'YYYY-MM-DD', got {day!r}") from None


def day_start(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat(timespec="seconds")


def date_filters(column, since: str | date | None, until: str | date | None) -> list:
    """WHERE clauses for an ISO-text UTC time column between two inclusive dates (either may be None)."""
    clauses = []
    if since is not None:
        clauses.append(column >= day_start(parse_day(since, "since")))
    if until is not None:
        clauses.append(column < day_start(parse_day(until, "until") + timedelta(days=1)))
    return clauses


def _check_vote(vote: str) -> None:
    if vote not in VOTES:
        raise ValueError(f"vote must be 'up' or 'down', got {vote!r}")


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


def _row(record) -> FeedbackRow:
    row_id, created_at, question, history, answer, refused, citations, vote, comment = record
    return FeedbackRow(id=row_id, created_at=created_at, question=question, history=json.loads(history),
                       answer=answer, refused=bool(refused), citations=json.loads(citations),
                       vote=vote, comment=comment)
