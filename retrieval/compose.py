"""Questions with several parts (办了多少件？满意率多少？): split, answer each, merge.

Each part after the first is read as a follow-up of the one before, so
满意率多少？ keeps the topic of 办了多少件人大建议？. A part the report does not
answer is named in the answer instead of being dropped silently.
"""
from __future__ import annotations

import re

from core.text import ASKS, CITATION_MARKER
from core.types import REFUSAL_MESSAGE, Answer, Citation

_PART_END = re.compile(r"(?<=[？?；;])")
MAX_PARTS = 3
NOT_COVERED = "报告中没有提到：{part}"


def split_parts(question: str) -> list[str]:
    """The question's parts, when it asks two or three things each with its own question word."""
    parts = [p.strip() for p in _PART_END.split(question.strip()) if p.strip()]
    # Each part asks something of its own, or ends a follow-up with 呢 (满意率呢？).
    if not 2 <= len(parts) <= MAX_PARTS or not all(ASKS.search(p) or "呢" in p for p in parts):
        return [question]
    return parts



def merge_answers(question: str, parts: list[str], answers: list[Answer]) -> Answer:
    """One answer from the parts' answers, citations renumbered and shared where identical."""
    if all(a.refused for a in answers):
        suggestions = list(dict.fromkeys(s for a in answers for s in a.suggestions))[:3]
        return Answer(question=question, text=REFUSAL_MESSAGE, reply="refusal", suggestions=suggestions)
    citations: list[Citation] = []
    number_of: dict[tuple[str, int], int] = {}
    lines: list[str] = []
    for part, answer in zip(parts, answers):
        if answer.refused:
            lines.append(NOT_COVERED.format(part=part))
            continue
        renumber: dict[int, int] = {}
        for c in answer.citations:
            key = (c.chunk.chunk_id, c.start)
            if key not in number_of:
                number_of[key] = len(citations) + 1
                citations.append(Citation(number_of[key], c.chunk, c.quote, c.start, c.end))
            renumber[c.n] = number_of[key]
        # Only the answer's own markers: a report's footnote mark ([2]) in a quote is text, not a citation.
        renumbered = CITATION_MARKER.sub(lambda m: f"[{renumber.get(int(m.group(1)), m.group(1))}]", answer.text)
        for line in renumbered.splitlines():
            if not (line.startswith("原文：") and line in lines):  # one quote of a shared sentence is enough
                lines.append(line)
    return Answer(question=question, text="\n".join(lines), reply="answer", citations=citations)
