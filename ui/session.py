"""What one browser session keeps on the server between events (the values of its Gradio ``State``s), as types.

The page holds: the conversation's turns (``list[Turn]``), the last answer
shown (``Shown``), every answer shown so far by its chat index (a vote names
the message it is on), the last vote (``Vote``, a comment goes onto its row),
and the staff login's token (``ui.auth``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.types import Answer, Turn


@dataclass(frozen=True)
class Shown:
    """An answer as the session was shown it, with the turns before it (what a vote stores and a staff
    draft is made from)."""

    answer: Answer
    earlier: list[Turn] = field(default_factory=list)
    question_id: int | None = None  # its row in the question log (records.QuestionLog), which a vote links to


@dataclass(frozen=True)
class Vote:
    """A 👍/👎 as stored: the feedback row it made and the chat message it is on."""

    row_id: int
    index: int
    verdict: str  # "up" or "down"
