"""What citizens leave behind: their votes and comments on answers (SQLite)."""
from .feedback import MAX_COMMENT_CHARS, FeedbackRow, FeedbackStore, FeedbackStoreError

__all__ = ["MAX_COMMENT_CHARS", "FeedbackRow", "FeedbackStore", "FeedbackStoreError"]
