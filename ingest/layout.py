"""Line-level facts the converters and the parser share: widths, page numbers, letter spacing."""
from __future__ import annotations

import re

# A page number on a line of its own: - 1 -, — 1 —, 第 1 页（共 9 页）, 1/9, Page 1 of 9.
PAGE_NUMBER = re.compile(r"^(?:[-—–]\s*\d+\s*[-—–]|第\s*\d+\s*页(?:\s*[,，/]?\s*共\s*\d+\s*页)?|\d+(?:\s*/\s*\d+)?|"
                         r"Page \d+(?: of \d+)?)$", re.IGNORECASE)
# The same without bare numbers: in plain text and converted tables a lone "0" can be a value.
DASHED_PAGE_NUMBER = re.compile(r"^(?:[-—–]\s*\d{1,4}\s*[-—–]|第\s*\d+\s*页(?:\s*[,，/]?\s*共\s*\d+\s*页)?)$")
SENTENCE_END = "。！？；!?;"
ENDS_SENTENCE = re.compile(r"[。！？；：.!?;:”」』）)]$")
# R's escape of a character the file's encoding lacks (<U+00A0>), and the invisible characters
# themselves: neither belongs in a title or a section name.
_ESCAPED_CHAR = re.compile(r"<U\+[0-9A-Fa-f]{4,6}>")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u2060\ufeff]")
_SPACE = r"[ \t\u00a0\u2000-\u200a\u3000]"
_WIDE = r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u2014\u2018-\u201d\u2026\u3000-\u303f]"
_SPACE_BY_WIDE = re.compile(rf"(?<={_WIDE}){_SPACE}+|{_SPACE}+(?={_WIDE})")
# A footnote mark left on a title: ①, [1], *.
_TRAILING_NOTE_MARK = re.compile(r"(?:[\u2460-\u2473]|\[\d{1,2}\]|\*)+$")


def em_width(text: str) -> float:
    """Width in em: a Chinese character or full-width mark is one, a Latin letter or digit half, a space a quarter."""
    width = 0.0
    for ch in text:
        if ch in " \t":
            width += 0.25
        elif ord(ch) < 0x2000:
            width += 0.5
        else:
            width += 1.0
    return width


def collapse_spacing(text: str) -> str:
    """Drop the spaces of letter-spaced or justified text next to Chinese (一、综 合, 2023 年, 周 口 市).

    Spaces between two Latin words or numbers stay (Page 1 of 9, 12 345 is rare in Chinese reports).
    """
    text = _INVISIBLE.sub("", _ESCAPED_CHAR.sub(" ", text))
    return re.sub(rf"{_SPACE}+", " ", _SPACE_BY_WIDE.sub("", text)).strip()


def clean_heading(text: str) -> str:
    """A title or section name as a person reads it: no letter spacing, escapes, Markdown marks or note marks."""
    text = collapse_spacing(text.lstrip("#").strip())
    return _TRAILING_NOTE_MARK.sub("", text).strip()
