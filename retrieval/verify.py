"""Verify what was asked before answering it: does a sentence, read with its passage, heading and report
title, state the year, the place and the kind of amount the question asks for?

Each check stands alone (tests/test_verify.py), and a failed one says in Chinese what the report does
not give (报告中没有2022年的数据), which the reply passes on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from core.text import fold, match_form, place_names
from core.types import Chunk

from .question import Asked

# A stated amount: 1726个, 100%, 60课时, 十项, 首批, 第三批; not a year (2023年) or a range (2021—2025).
QUANTITY = re.compile(r"\d+(?:\.\d+)?(?![\d年—\-版度])|[一二三四五六七八九十百千万两首]+余?[个项件人次批支家所条级类]")
TIME = re.compile(r"(?:19|20)\d{2}\s*年|\d{1,2}\s*月|\d{1,2}\s*日")
VENUE = re.compile(r"网站|网页|栏目|平台|窗口|大厅|中心")  # "where" is also a place on the web or a service hall
YEAR = re.compile(r"(?:19|20)\d{2}年")
_NUMBER = r"(?:\d+(?:\.\d+)?|[一二三四五六七八九十百千两]+)"
_SCALE = r"(?:多|余|近|约)?(?:万|亿|千|百)?"


@dataclass(frozen=True)
class Check:
    """One thing the question asks that a sentence must state."""

    kind: str  # "year" | "place" | "amount" | "unit" | "time" | "where"
    ok: bool
    missing_zh: str = ""  # what the report does not give, said to the citizen when the check fails


def context_of(chunk: Chunk) -> str:
    """What a sentence is read with: the report's title and issuer, its heading path, table headers, passage."""
    return " ".join(part for part in (chunk.doc_title, chunk.issuer or "", *chunk.section_path, chunk.context,
                                      chunk.text) if part)


def states_year(year: int, context: str) -> bool:
    """``2023年`` (spaces aside) in the context: a range like (2021—2025年) says nothing about 2021 itself."""
    return f"{year}年" in match_form(context)


# Characters OCR mistakes for one another (a scanned 沭阳 read as 沐阳): a place name may differ from the
# report's own by one of these and still be it. Only look-alikes: 泗阳 is another county than 沭阳.
OCR_LOOKALIKES = ("沭沐", "己已巳", "末未", "戊戌戍", "汩汨", "亳毫", "睢雎", "郓鄆")


def _lookalike(a: str, b: str) -> bool:
    return a == b or any(a in group and b in group for group in OCR_LOOKALIKES)


def _misread(place: str, text: str) -> bool:
    """``place`` in ``text`` with at most one character read as its look-alike."""
    n = len(place)
    return any(all(_lookalike(a, b) for a, b in zip(place, text[i:i + n])) for i in range(len(text) - n + 1))


def states_place(place: str, chunk: Chunk, context: str) -> bool:
    """The place, or the report being that place's (its title or issuer, an OCR look-alike aside)."""
    if place in fold(context):
        return True
    return _misread(place, fold(f"{chunk.doc_title} {chunk.issuer or ''}"))


def states_unit(pattern: str, sentence: str, table_header: str = "") -> bool:
    """A number in the wanted unit: 15天, 2952人, 1.2万人, 889.97 亿元, 5.2%. A table row states its unit in
    a cell of its own (| 猪肉 | 万吨 | 14.10 |) or in its header: then a number and the unit anywhere in the
    row or header will do."""
    compact = YEAR.sub("", match_form(sentence))  # 2025年 is a date, not a duration of years
    if re.search(rf"{_NUMBER}{_SCALE}(?:{pattern})", compact):
        return True
    is_row = "|" in sentence or bool(table_header)
    return is_row and bool(re.search(r"\d", compact)) and bool(re.search(pattern, match_form(f"{table_header}{sentence}")))


ITEM_SHARE = 0.2  # of the question's topic words (IDF-weighted) the clause stating the amount must hold
_CLAUSE_END = re.compile(r"[,，;；:：、|]")


def clause_share(asked: Asked, weights: dict[str, float], sentence: str, chunk: Chunk) -> float:
    """How much of the question the clause that would answer it states: the best IDF-weighted share of the
    question's topic words among the sentence's clauses (cut at ，；：、 and table bars), only clauses
    holding a number (in the unit asked, if one is) when an amount is asked, each read with its table header. Another item's amount in
    the same sentence (the total beside one budget line, 进出口 beside 外资) sits in another clause."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    clauses = [c for c in _CLAUSE_END.split(sentence) if c.strip()] or [sentence]
    if asked.unit_pattern:  # 失业的有多少人: the clause with a count of people, not the one with the rate
        clauses = [c for c in clauses if states_unit(asked.unit_pattern, c, chunk.context)] or [""]
    elif asked.wants_quantity:
        clauses = [c for c in clauses if QUANTITY.search(c)] or [""]
    title = fold(chunk.doc_title)
    kept = {t: w for t, w in weights.items() if t not in title}
    kept_total = sum(kept.values())
    if kept_total <= 0:
        return 0.0
    return max(sum(w for t, w in kept.items() if t in fold(f"{chunk.context} {clause}")) / kept_total
               for clause in clauses)


def verify(asked: Asked, chunk: Chunk, sentence: str, weights: dict[str, float] | None = None) -> list[Check]:
    """Every check the question asks of ``sentence`` (a sentence of ``chunk``), passed or not. With the
    topic words' ``weights``, an amount must be stated in a clause about the question's topic."""
    context = context_of(chunk)
    checks = [Check("year", states_year(year, context), f"没有{asked.year_words.get(year, f'{year}年')}的相关内容")
              for year in asked.years]
    checks += [Check("place", states_place(place, chunk, context), f"没有关于{place}的内容") for place in asked.places]
    if asked.wants_quantity:
        checks.append(Check("amount", bool(QUANTITY.search(sentence)), "没有给出具体数字"))
        if weights:
            checks.append(Check("item", clause_share(asked, weights, sentence, chunk) >= ITEM_SHARE,
                                "没有给出这一项的具体数字"))
        if asked.unit_pattern:
            checks.append(Check("unit", states_unit(asked.unit_pattern, sentence, chunk.context), f"没有给出{asked.unit}"))
    if asked.wants_enumeration:
        checks.append(Check("items", enumerates(sentence), "没有逐项列出"))
    if asked.wants_time:
        checks.append(Check("time", bool(TIME.search(sentence)), "没有给出具体时间"))
    if asked.wants_place:
        checks.append(Check("where", bool(VENUE.search(sentence) or place_names(sentence)), "没有给出具体地点"))
    return checks


def enumerates(sentence: str) -> bool:
    """A sentence that lists things: two or more 、/；-separated items, or two or more quoted names."""
    return len(re.findall(r"[、；;]", sentence)) >= 2 or len(re.findall(r"[“《]", sentence)) >= 2


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]
