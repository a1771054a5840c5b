"""What citizens leave behind, in one database (SQLite file or PostgreSQL): their votes and comments on answers
(``feedback``) and the question log (``questions``), with the schema migrated by Alembic (``db``)."""
from .db import Database, DatabaseError
from .feedback import MAX_COMMENT_CHARS, FeedbackRow, FeedbackStore, FeedbackStoreError
from .questions import DEFAULT_RETENTION_DAYS, DayStats, QuestionLog, QuestionRow

__all__ = ["DEFAULT_RETENTION_DAYS", "MAX_COMMENT_CHARS", "Database", "DatabaseError", "DayStats", "FeedbackRow",
           "FeedbackStore", "FeedbackStoreError", "QuestionLog", "QuestionRow"]
