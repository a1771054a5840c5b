"""The groundedness check: every number and 《title》 an answer states must be in a passage it cites.

The product runs it on every answer before it is shown; `reportqa eval`
reports the same check as the groundedness metric.
"""
from __future__ import annotations

from collections.abc import Sequence

from core.text import NUMBER, TITLE, answer_body, nfkc


def ungrounded_claims(answer_text: str, cited_texts: Sequence[str]) -> list[str]:
    """The numbers and 《titles》 of an answer that no cited passage contains.

    A number is a maximal run of digits with an optional decimal part
    (2021—2025 is two numbers); it is grounded when it is one of the numbers
    of a cited passage, so 26 is not grounded by 1726. A title, brackets
    included, is grounded when it is a substring of a cited passage.
    """
    body = answer_body(answer_text)
    sources = [nfkc(text) for text in cited_texts]
    known_numbers = {n for text in sources for n in NUMBER.findall(text)}
    missing = [n for n in dict.fromkeys(NUMBER.findall(body)) if n not in known_numbers]
    missing += [t for t in dict.fromkeys(TITLE.findall(body)) if not any(t in text for text in sources)]
    return missing
