"""What a question asks for: its topic words, the years and places it names (relative years resolved
against the report's), and the kind of answer it wants (an amount in some unit, a time, a place, a list).

Verification (``retrieval.verify``) checks a sentence against this; nothing here looks at a passage.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.text import YEAR_MENTION, content_terms, place_names

# Questions that ask for a count or amount are answered only by a sentence that states one.
QUANTITY_QUESTION = re.compile(r"多少|(?<!哪)几|数量|比例|百分之|多大|多长|多久|占比|人数|增速|增幅|涨了|降了|规模")
# Questions that want one precise thing: an amount, a name, a place, a document.
PRECISE_QUESTION = re.compile(r"多少|(?<!哪)几|哪(?:个|部|一|里|家|位|项|次|年)|什么|谁|叫")
TIME_QUESTION = re.compile(r"哪一?年|什么时候|何时|几月|几号|哪天|哪一天|日期")
PLACE_QUESTION = re.compile(r"哪里|在哪|什么地方|何处|哪个(?:区|县|市|省|地方|城市)")
# Questions that ask the items of a counted set to be named: 哪四张？ 分别叫什么？ 具体指哪三项？
ENUMERATION_QUESTION = re.compile(r"哪[几两二三四五六七八九十]+[个项张条种类件家]|分别(?:是|叫|指|有)|具体(?:是|指)哪")
# Units and measure words say the kind of answer, not its topic (亿元, 万人, 个).
UNIT_WORD = re.compile(r"^[万亿千百]?(?:元|人|人次|吨|斤|亩|公顷|公里|米|户|件|次|个|项|所|家|座|条|台|张|%)$")
# Questions whose answer is a list of items: 有哪些不足？ 2024年有哪些打算？ 做了什么？
LIST_QUESTION = re.compile(r"哪些|哪几|什么(?:措施|举措|工作|成果|成效|打算|荣誉)|做了什么|打算|不足|成果|成效|举措|措施")

# The unit an amount question wants, read from its words: (question pattern, unit name, unit pattern in text).
# A generic 多少/几 wants any amount; these want one kind.
UNIT_QUESTIONS: tuple[tuple[re.Pattern, str, str], ...] = tuple((re.compile(q), name, unit) for q, name, unit in (
    (r"多少天|(?<!哪)几天|多少日|多少个工作日|多长时间|多久", "天数", r"天|日|个工作日|小时|个月|年"),
    (r"多少人|(?<!哪)几人|多少名|人数|多少人次", "人数", r"人|名|人次"),
    (r"多少户|(?<!哪)几户|户数", "户数", r"户"),
    (r"多少钱|多少元|多少万元|多少亿元|金额|资金多少|经费多少|投资多少|投入多少|花了多少|收入多少|支出多少|花费",
     "金额", r"元"),
    (r"增长多少|增长了多少|增速|增幅|涨了多少|涨了|提高了多少|下降了多少|降了多少|减少了多少|增加了多少|变化",
     "增减幅度", r"%|％|倍|百分点|增长|下降|提高|减少"),
    (r"比例|占比|百分之|比重|覆盖率|达标率|满意率|率是多少|率多少|率达到", "比例", r"%|％|百分点|成"),
    (r"多少吨|产量", "产量", r"吨|斤|公斤|千克"),
    (r"面积|多少亩|多少公顷|多少平方", "面积", r"亩|公顷|平方"),
    (r"多少公里|里程|多长的|长度", "长度", r"公里|千米|米"),
    (r"多少件|(?<!哪)几件", "件数", r"件"),
    (r"多少次|(?<!哪)几次", "次数", r"次"),
))
RELATIVE_YEARS = {"今年": 0, "本年": 0, "当年": 0, "去年": -1, "上年": -1, "上一年": -1, "前年": -2, "明年": 1,
                  "下一年": 1, "后年": 2}
_RELATIVE = re.compile("|".join(sorted(RELATIVE_YEARS, key=len, reverse=True)))


@dataclass
class Asked:
    """The parts of a question the answerer checks a sentence against."""

    terms: list[str]  # topic words, longest first
    years: list[int] = field(default_factory=list)  # named (2022年) or relative (明年) and resolved
    year_words: dict[int, str] = field(default_factory=dict)  # how each year was said, for the reply
    places: list[str] = field(default_factory=list)
    wants_quantity: bool = False
    unit: str | None = None  # the kind of amount wanted (人数, 天数, 金额…), None for any amount
    unit_pattern: str | None = None
    wants_time: bool = False
    wants_place: bool = False
    wants_list: bool = False
    wants_precise: bool = False
    wants_enumeration: bool = False  # the items of a counted set named one by one


def read_question(question: str, kind_from: str | None = None, report_year: int | None = None) -> Asked:
    """What ``question`` asks; the kind of answer is read from ``kind_from`` when given (a follow-up's own
    words, 满意率多少？, after it was joined to the question before it).

    Relative years (今年, 明年…) resolve against ``report_year``, the year the report is about; a year
    named outright (2022年) stands as it is.
    """
    kind = question if kind_from is None else kind_from
    years: dict[int, str] = {}
    for mention in YEAR_MENTION.findall(question):
        years.setdefault(int(mention[:4]), mention.rstrip("年") + "年")
    if report_year:
        for word in _RELATIVE.findall(question):
            years.setdefault(report_year + RELATIVE_YEARS[word], word)
    unit = next(((name, pattern) for q, name, pattern in UNIT_QUESTIONS if q.search(kind)), (None, None))
    places = sorted(set(place_names(question)))
    # Years and places are checked on their own (retrieval.verify); the topic is the rest.
    anchors = {str(y) for y in years} | set(places) | set(RELATIVE_YEARS)
    terms = [t for t in content_terms(question)
             if t not in anchors and not YEAR_MENTION.fullmatch(t) and not UNIT_WORD.match(t)]
    return Asked(
        terms=terms,
        years=sorted(years),
        year_words=years,
        places=places,
        wants_quantity=bool(QUANTITY_QUESTION.search(kind)) or unit[0] is not None,
        unit=unit[0],
        unit_pattern=unit[1],
        wants_time=bool(TIME_QUESTION.search(kind)),
        wants_place=bool(PLACE_QUESTION.search(kind)),
        wants_list=bool(LIST_QUESTION.search(kind)),
        wants_precise=bool(PRECISE_QUESTION.search(kind)),
        wants_enumeration=bool(ENUMERATION_QUESTION.search(kind)),
    )
