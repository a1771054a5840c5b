"""Follow-up questions (那2024年呢？ 具体有哪些？) resolved against the conversation.

A follow-up leans on the previous question for its topic; joining the two
before retrieval makes it retrieve what the user means. A year or place the
follow-up names replaces the previous one, so 那2024年呢？ after a question
about 2023 asks about 2024, and is refused if the report has nothing on it.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from core.text import YEAR_MENTION, content_terms, place_names
from core.types import Turn

# Openers and pronouns that point back at the previous turn.
FOLLOW_UP_OPENERS = re.compile(r"^(?:那|这|它|其|该|还有|另外|此外|具体|分别|其中|再|又|同时|以及|和|跟|里面|同一)")
BACK_REFERENCES = re.compile(r"这个|那个|这些|那些|这项|这是|这方面|该|它们?|他们|上述|前面|刚才|其中|具体|别的|里面|同一")
SHORT_QUESTION_CHARS = 10


def as_turns(history: Sequence[Turn | dict] | None) -> list[Turn]:
    """The turns with a question, from Turn objects or {"question", "answer"} dicts (the eval set's and API's shape)."""
    return [t for t in map(Turn.of, history or ()) if t.question.strip()]


def is_follow_up(question: str) -> bool:
    """Whether a question needs the previous turn to be understood."""
    q = question.strip()
    if FOLLOW_UP_OPENERS.match(q) or BACK_REFERENCES.search(q):
        return True
    return len(re.sub(r"\W", "", q)) <= SHORT_QUESTION_CHARS and len(content_terms(q)) <= 1


def resolve_follow_up(question: str, history: Sequence[Turn | dict] | None) -> str:
    """The question to retrieve with: the question itself, or joined to the previous one."""
    turns = as_turns(history)
    if not turns or not is_follow_up(question):
        return question
    previous = turns[-1].question.strip().rstrip("？?。！!")
    if YEAR_MENTION.search(question):
        previous = YEAR_MENTION.sub("", previous)
    for place in place_names(question):
        for old in place_names(previous):
            previous = previous.replace(old, "")
    return f"{previous}，{question.strip()}"
