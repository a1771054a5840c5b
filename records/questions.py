"""The question log: what citizens asked and what they got, for staff (the 问答记录 view), kept for a set time.

One row per question answered through the page, its ``/ask`` API or the REST API
(``QuestionLog.record``). Stored: time (UTC), the question as typed (cleaned), how a
follow-up was understood, the kind of reply (answer / related / refusal), the answer's
confidence, the report it was asked of or first cited, each citation's number, file,
section and chunk id (not the passage), the sections a refusal suggested, the time it took,
the channel, and the citizen's vote once given. Not stored: who asked (no address, session,
cookie or browser), the earlier turns, the answer text (it is reproducible from the report).
Rows older than the retention (default 90 days) are deleted (``purge``), at start and at most
hourly while answering.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import case, delete, func, insert, select, update

from core.errors import ReportQAError
from core.types import REPLIES

from .db import Database
from .feedback import VOTES, date_filters, dumps, neutralise_formula, now_iso
from .schema import questions

if TYPE_CHECKING:
    from core.types import Answer, Scope

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90
PURGE_EVERY_S = 3600.0
CHANNELS = ("page", "api", "rest")
MAX_QUESTION_CHARS = 2000  # the service refuses longer questions; a stray caller's are clipped
TOPIC_SAMPLE = 20_000  # refusals read to count topic words (the newest)
# Words of how a question is asked, not of what it is about.
QUESTION_WORDS = frozenset({"几点", "多少", "什么", "怎么", "怎样", "哪些", "哪个", "哪里", "如何", "是否", "为什么",
                            "有没有", "能否", "可以", "请问", "一下"})


@dataclass(frozen=True)
class QuestionRow:
    """One question as staff review it."""

    id: int
    created_at: str  # ISO 8601 UTC
    question: str
    resolved_question: str  # a follow-up as understood ("" when asked on its own)
    reply: str  # "answer", "related" or "refusal"
    confidence: float | None
    report: str  # the report's file asked of (scope) or cited first; "" when none
    citations: list[dict]  # [{"n", "source", "section", "chunk_id"}]
    suggestions: list[str]  # sections a refusal suggested
    latency_ms: float
    channel: str  # "page", "api" or "rest"
    vote: str | None  # "up", "down", or None (no vote)
    feedback_id: int | None  # the feedback row of the vote

    @property
    def sections(self) -> list[str]:
        return [str(c.get("section", "")) for c in self.citations]

    def to_dict(self) -> dict:
        return asdict(self)


COLUMNS = tuple(f.name for f in fields(QuestionRow))


@dataclass(frozen=True)
class DayStats:
    day: str  # YYYY-MM-DD (UTC)
    questions: int
    refusals: int

    @property
    def refusal_rate(self) -> float:
        return self.refusals / self.questions if self.questions else 0.0


def _log_failure(written: Future) -> None:
    if not written.cancelled() and written.exception() is not None:
        logger.error("could not log a question: %r", written.exception())


class QuestionLog:
    """The question log in the shared database (a path, a URL, or a ``Database`` the feedback store shares).

    ``record`` never raises for a database problem: answering a citizen must not fail because the
    log cannot be written (it is logged instead, and None returned).
    """

    def __init__(self, database: Database | Path | str, retention_days: int = DEFAULT_RETENTION_DAYS,
                 clock=time.time):
        if not isinstance(retention_days, int) or retention_days < 1:
            raise ValueError(f"retention_days must be a whole number >= 1, got {retention_days!r}")
        self.database = database if isinstance(database, Database) else Database(database)
        self.retention_days = retention_days
        self.clock = clock
        self._last_purge = 0.0
        self._purge_lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None  # record_later's one thread, started on first use
        self._writer_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"QuestionLog({self.database.where!r}, retention_days={self.retention_days})"

    # -- writing -------------------------------------------------------------------------------

    def record(self, answer: Answer, latency_ms: float, channel: str = "page", scope: Scope | None = None) -> int | None:
        """Log one answered question; returns its row id (what a vote links to), None when it could not be written."""
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
        if answer.reply not in REPLIES:
            raise ValueError(f"reply must be one of {REPLIES}, got {answer.reply!r}")
        citations = [{"n": c.n, "source": c.chunk.source, "section": c.chunk.section, "chunk_id": c.chunk.chunk_id}
                     for c in answer.citations]
        scoped = list(scope.sources) if scope else []
        report = scoped[0] if len(scoped) == 1 else (citations[0]["source"] if citations else "")
        record = dict(
            created_at=now_iso(), question=answer.question[:MAX_QUESTION_CHARS],
            resolved_question=(answer.resolved_question or "")[:MAX_QUESTION_CHARS], reply=answer.reply,
            confidence=None if answer.confidence is None else float(answer.confidence), report=report,
            citations=dumps(citations), suggestions=dumps(list(answer.suggestions)),
            latency_ms=round(float(latency_ms), 1), channel=channel, vote=None, feedback_id=None)
        try:
            self.purge_if_due()
            with self.database.write() as conn:
                return int(conn.execute(insert(questions).values(**record).returning(questions.c.id)).scalar_one())
        except ReportQAError as exc:
            logger.error("could not log a question: %s", exc.message)
            return None

    def record_later(self, answer: Answer, latency_ms: float, channel: str = "rest",
                     scope: Scope | None = None) -> Future:
        """``record`` on the log's own writer thread, in the order called; for a caller that needs no row id
        (REST: no vote links to it). An answer thread hands the write over and is free for the next
        question at once, instead of waiting the 3-5 ms of a SQLite transaction."""
        with self._writer_lock:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="reportqa-question-log")
        written = self._writer.submit(self.record, answer, latency_ms, channel, scope)
        written.add_done_callback(_log_failure)  # nobody waits on it: a failure is logged, not lost silently
        return written

    def set_vote(self, question_id: int | None, vote: str, feedback_id: int | None = None) -> bool:
        """Link a citizen's vote (and its feedback row) to the logged question; False when there is no such row."""
        if vote not in VOTES:
            raise ValueError(f"vote must be 'up' or 'down', got {vote!r}")
        if question_id is None:
            return False
        with self.database.write() as conn:
            done = conn.execute(update(questions).where(questions.c.id == int(question_id))
                                .values(vote=vote, feedback_id=feedback_id)).rowcount
        return done == 1

    def purge(self, now: datetime | None = None) -> int:
        """Delete the questions older than the retention; returns how many."""
        now = now or datetime.fromtimestamp(self.clock(), UTC)
        cutoff = (now - timedelta(days=self.retention_days)).astimezone(UTC).isoformat(timespec="seconds")
        with self.database.write() as conn:
            deleted = conn.execute(delete(questions).where(questions.c.created_at < cutoff)).rowcount
        if deleted:
            logger.info("deleted %d logged question(s) older than %d days", deleted, self.retention_days)
        return deleted

    def purge_if_due(self) -> None:
        """``purge`` when the last one was more than an hour ago (one thread at a time)."""
        now = self.clock()
        if now - self._last_purge < PURGE_EVERY_S or not self._purge_lock.acquire(blocking=False):
            return
        try:
            self.purge()
            self._last_purge = now
        finally:
            self._purge_lock.release()

    # -- reading -------------------------------------------------------------------------------

    def rows(self, since: str | date | None = None, until: str | date | None = None, reply: str | None = None,
             report: str | None = None, limit: int | None = 1000) -> list[QuestionRow]:
        """Questions, newest first; dates are UTC "YYYY-MM-DD", inclusive; ``reply`` one of answer/related/refusal."""
        query = select(*(questions.c[name] for name in COLUMNS)).where(*self._filters(since, until, reply, report))
        query = query.order_by(questions.c.created_at.desc(), questions.c.id.desc())
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            query = query.limit(limit)
        with self.database.read() as conn:
            return [_row(record) for record in conn.execute(query).all()]

    def count(self) -> int:
        with self.database.read() as conn:
            return int(conn.execute(select(func.count()).select_from(questions)).scalar_one())

    def reports(self) -> list[str]:
        """The reports questions were asked of, for the filter."""
        with self.database.read() as conn:
            found = conn.execute(select(questions.c.report).distinct().where(questions.c.report != "")).scalars()
            return sorted(found)

    def by_day(self, since: str | date | None = None, until: str | date | None = None,
               report: str | None = None) -> list[DayStats]:
        """Questions and refusals per UTC day, oldest first (days without questions are absent)."""
        day = func.substr(questions.c.created_at, 1, 10)
        refused = func.sum(case((questions.c.reply == "refusal", 1), else_=0))
        query = (select(day, func.count(), refused).where(*self._filters(since, until, None, report))
                 .group_by(day).order_by(day))
        with self.database.read() as conn:
            return [DayStats(d, int(n), int(r or 0)) for d, n, r in conn.execute(query).all()]

    def refused_topics(self, since: str | date | None = None, until: str | date | None = None,
                       report: str | None = None, k: int = 10, ignore: frozenset[str] | set[str] = frozenset()
                       ) -> list[tuple[str, int]]:
        """The words refused questions share most (jieba topic words), with how many refused questions hold each;
        question words (多少, 几点…) and ``ignore`` (e.g. the words of the reports' titles: 大连) are left out."""
        from core.text import content_terms

        query = (select(questions.c.resolved_question, questions.c.question)
                 .where(*self._filters(since, until, "refusal", report))
                 .order_by(questions.c.created_at.desc()).limit(TOPIC_SAMPLE))
        with self.database.read() as conn:
            asked = [resolved or question for resolved, question in conn.execute(query).all()]
        skip = QUESTION_WORDS | set(ignore)
        counts = Counter(word for text in asked for word in set(content_terms(text)) if len(word) > 1 and word not in skip)
        return counts.most_common(k)

    @staticmethod
    def _filters(since, until, reply, report) -> list:
        clauses = date_filters(questions.c.created_at, since, until)
        if reply is not None:
            if reply not in REPLIES:
                raise ValueError(f"reply must be one of {REPLIES}, got {reply!r}")
            clauses.append(questions.c.reply == reply)
        if report:
            clauses.append(questions.c.report == report)
        return clauses

    # -- export --------------------------------------------------------------------------------

    @staticmethod
    def to_csv(rows: Sequence[QuestionRow]) -> str:
        """A header and one line per row (citations and suggestions as JSON), Excel-safe: a question starting
        with = + - @ gets a leading '. Encode with "utf-8-sig" for Excel."""
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        for row in rows:
            values = row.to_dict()
            values["question"] = neutralise_formula(row.question)
            values["resolved_question"] = neutralise_formula(row.resolved_question)
            values["citations"], values["suggestions"] = dumps(row.citations), dumps(row.suggestions)
            writer.writerow(["" if values[c] is None else values[c] for c in COLUMNS])
        return buffer.getvalue()


def _row(record) -> QuestionRow:
    values = dict(zip(COLUMNS, record))
    values["citations"] = json.loads(values["citations"])
    values["suggestions"] = json.loads(values["suggestions"])
    return QuestionRow(**values)
