"""Text from strangers made safe to process, store and log."""
from __future__ import annotations

import unicodedata

LOG_CHARS = 200  # user text in a log line is cut to this many characters


def clean_user_text(text: object) -> str:
    """``text`` as a string without lone surrogates, NUL and other control characters (newline and tab kept).

    A lone surrogate (\\ud800, or an undecodable byte smuggled in by Python's
    surrogateescape) cannot be encoded as UTF-8, so it would break every JSON
    reply, log line and database write after it; control characters have no
    meaning in a question. Anything that is not a string becomes "".
    """
    if not isinstance(text, str):
        return ""
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cs", "Cc"))


def clip(text: object, limit: int = LOG_CHARS) -> str:
    """User text as it may appear in a log line: cleaned, cut to ``limit`` characters, its length said."""
    text = clean_user_text(text if isinstance(text, str) else repr(text))
    return text if len(text) <= limit else f"{text[:limit]}…(+{len(text) - limit} chars)"


# Python's str.splitlines() (and JavaScript before ES2019) break lines at these, and json.dumps leaves them raw.
_LINE_BREAKS_IN_STRINGS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def json_line(value) -> str:
    """``value`` as one line of JSON (JSON Lines): readable Chinese, and no character that a reader could
    take for the end of the line."""
    import json

    text = json.dumps(value, ensure_ascii=False)
    for raw, escaped in _LINE_BREAKS_IN_STRINGS.items():
        text = text.replace(raw, escaped)
    return text
