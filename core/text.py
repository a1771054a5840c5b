"""Chinese text helpers, one of each: folding for comparison, sentences, words, years, places, citation
markers; and text from strangers made safe to process, store and log."""
from __future__ import annotations

import json
import logging
import marshal
import os
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from .files import replace_atomically
from .places import KNOWN_PLACES, PLACE_SUFFIXES
from .types import Span

LOG_CHARS = 200  # user text in a log line is cut to this many characters


# ---------------------------------------------------------------- folding

def nfkc(text: str) -> str:
    """NFKC form of ``text``: full-width digits and punctuation fold to half-width (１７２６ → 1726).

    What groundedness and the evaluation compare: case is kept.
    """
    return unicodedata.normalize("NFKC", text)


_WHITESPACE = re.compile(r"\s+")


def match_form(text: str) -> str:
    """NFKC with every whitespace removed: how evidence, required facts and passages are compared, since
    PDF text spaces words and numbers out (2023 年, 866.60 万人, 周 口 市) and wraps lines anywhere."""
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text))


def fold(text: str) -> str:
    """NFKC and lower case, so 1726, １７２６ and ＡＰＰ/app match: what words are matched on."""
    return unicodedata.normalize("NFKC", text).lower()


# ---------------------------------------------------------------- sentences

SENTENCE_END = "。！？；!?;"
# Closing quotes and brackets that belong to the sentence they end.
_CLOSERS = "”’」』》)）\"'"
_SENTENCE_RE = re.compile(rf"[^{SENTENCE_END}\n]*(?:[{SENTENCE_END}]+[{re.escape(_CLOSERS)}]*|$)")


def split_sentences(text: str, offset: int = 0) -> list[Span]:
    """Split text into whole sentences on 。！？； and their half-width forms.

    Returns absolute spans (``offset`` added); whitespace around a sentence is
    left out of its span so a span slices back to exactly the sentence.
    """
    spans: list[Span] = []
    for match in _SENTENCE_RE.finditer(text):
        start, end = match.span()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append(Span(offset + start, offset + end))
    return spans


# ---------------------------------------------------------------- words

# Function words and question words carry no topic; dropping them keeps BM25
# and the answerer's term coverage about what the question is asking for.
STOPWORDS = frozenset(
    """
    的 了 和 与 及 或 是 在 有 对 为 将 把 被 就 都 也 又 还 而 并 等 于 以 之 其 这 那 哪 该 此
    吗 呢 吧 啊 呀 么 嘛 个 些 种 年 月 日 上 下 中 里 们 我 你 他 她 它 我们 你们 他们 什么 怎么 怎样
    怎么样 如何 多少 几 几个 哪些 哪个 哪里 哪儿 为什么 是否 是不是 有没有 能不能 可以 能 会 要 请 问
    请问 告诉 一下 一些 一个 方面 情况 相关 有关 主要 进行 开展 工作 报告 介绍 具体 哪年 一共 共 总共
    """.split()
)
# A question that asks something of its own (多少, 哪些, 吗…), unlike a bare follow-up such as 那2024年呢？
ASKS = re.compile(r"多少|几|哪|什么|谁|怎么|怎样|如何|是否|有没有|吗")


def cache_dir() -> Path:
    """Where this user's ReportQA keeps what it derives once and reads at every start (REPORTQA_CACHE_DIR,
    else $XDG_CACHE_HOME/reportqa or ~/.cache/reportqa): private to the user, unlike jieba's default /tmp."""
    configured = os.environ.get("REPORTQA_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reportqa"


def _prefix_dict_cache(jieba) -> Path:
    """The file of jieba's prefix dictionary for this jieba and this dictionary file (its size and mtime)."""
    with jieba.dt.get_dict_file() as dictionary:
        stat = os.stat(dictionary.name)
    return cache_dir() / f"jieba-{jieba.__version__}-{stat.st_size}-{stat.st_mtime_ns}.prefix"


def _load_prefix_dict(jieba) -> bool:
    """jieba's prefix dictionary (~500,000 words and prefixes) from our cache: its words as one string and
    their counts as a list, which builds the dict in a third of the time jieba's marshalled dict takes to
    load (0.4 s against 1-1.5 s on a 2-core machine: most of a cold start). False: not cached (yet)."""
    try:
        words, counts, total = marshal.loads(_prefix_dict_cache(jieba).read_bytes())
        frequencies = dict(zip(words.split("\n"), counts, strict=True))
    except (OSError, ValueError, EOFError, TypeError):
        return False
    with jieba.dt.lock:
        jieba.dt.FREQ, jieba.dt.total, jieba.dt.initialized = frequencies, total, True
    return True


def _save_prefix_dict(jieba) -> None:
    path = _prefix_dict_cache(jieba)
    words = list(jieba.dt.FREQ)
    if any("\n" in w for w in words):  # never in jieba's dictionary; a user's word list could have one
        return
    _write_cache(path, ("\n".join(words), list(jieba.dt.FREQ.values()), jieba.dt.total))


def _write_cache(path: Path, value) -> None:
    """``value`` marshalled into ``path``, whole or not at all (readable by this user only); a read-only home
    leaves it unwritten (every start then derives it again)."""
    try:
        replace_atomically(path, marshal.dumps(value), mode=0o600)
    except OSError as exc:
        logging.getLogger(__name__).info("cache %s not written (%s)", path.name, exc)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    if not _load_prefix_dict(jieba):
        try:  # jieba's own cache there too, not in /tmp
            cache_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
            jieba.dt.tmp_dir = str(cache_dir())
        except OSError:
            pass
        jieba.initialize()
        _save_prefix_dict(jieba)
    return jieba


def _is_word(token: str) -> bool:
    return any(ch.isalnum() for ch in token)


def tokenize(text: str) -> list[str]:
    """Jieba search-mode tokens without punctuation or stopwords, for BM25."""
    words = _jieba().lcut_for_search(fold(text))
    return [w for w in (w.strip() for w in words) if w and _is_word(w) and w not in STOPWORDS]


def content_terms(text: str) -> list[str]:
    """The distinct topic words of a question, longest first, words of a length in code-point order (not a
    set's order, which changes with every process's hash seed, and with it sums over the words and ties)."""
    words = _jieba().lcut(fold(text))
    terms = {w.strip() for w in words}
    return sorted((t for t in terms if t and _is_word(t) and t not in STOPWORDS), key=lambda t: (-len(t), t))


def char_bigrams(text: str) -> set[str]:
    """Pairs of neighbouring letters or digits (NFKC): a cheap overlap measure for short Chinese texts."""
    chars = [ch for ch in nfkc(text) if ch.isalnum()]
    return {a + b for a, b in zip(chars, chars[1:])}


# ---------------------------------------------------------------- years and places

# A year as a question or passage mentions it: 2023, 2023年. A range like (2021—2025年) holds two.
YEAR_MENTION = re.compile(r"(?:19|20)\d{2}年?")
# A year said as one (2023年, 2023 年), captured: what a title's or question's year is read from.
YEAR_OF = re.compile(r"((?:19|20)\d{2})\s*年")


def years_in(text: str) -> set[int]:
    """The years a text names as years (2023年)."""
    return {int(y) for y in YEAR_OF.findall(text)}


_KNOWN_PLACE = re.compile("|".join(sorted(KNOWN_PLACES, key=len, reverse=True)))


def _may_name_place(folded: str) -> bool:
    """Whether ``folded`` can hold a word ``place_names`` keeps: a known place, or a word of three characters
    or more ending in a place suffix (so a suffix with two characters before it)."""
    return bool(_KNOWN_PLACE.search(folded)) or any(ch in PLACE_SUFFIXES for ch in folded[2:])


def place_names(text: str) -> list[str]:
    """Provinces, cities and districts a text names (沈阳, 北京市, 西岗区).

    A word counts when it is a known province or city, or jieba's dictionary
    tags it a place and it ends in 省/市/区/县 (``_dictionary_places``); jieba
    alone also tags 台风 and 上门. A text that can hold neither
    (全市建成了多少个便民服务站？) is not even cut into words.
    """
    folded = fold(text)
    return _tagged_places(folded) if _may_name_place(folded) else []


def load_place_tagger() -> None:
    """Read the dictionary's place words now (a server, before its first citizen), not on the first text
    that may name a place."""
    _dictionary_places()


@lru_cache(maxsize=1)
def _dictionary_places() -> frozenset[str]:
    """The words jieba's dictionary tags as places (ns) that end in a place suffix and have three characters
    or more (西岗区, 旅顺口区): about 4,000 of its 349,000 words, from ReportQA's cache or the dictionary.

    What jieba's part-of-speech tagger (jieba.posseg) would say of them, without its tables: 56 MB and
    0.4-1 s to load. The tagger also guesses tags for words its dictionary lacks; on the development
    questions and 14 reports' sentences that changed one text in 1,653 (孟连县), and a rule for such words
    would have named places like 两先 and 经开.
    """
    jieba = _jieba()
    cached = _prefix_dict_cache(jieba).with_suffix(".places")
    try:
        return frozenset(marshal.loads(cached.read_bytes()))
    except (OSError, ValueError, EOFError, TypeError):
        pass
    places = []
    with jieba.dt.get_dict_file() as dictionary:
        for line in dictionary:
            fields = line.decode("utf-8").split()  # word, count, tag
            if len(fields) == 3 and fields[2] == "ns" and fields[0].endswith(PLACE_SUFFIXES) and len(fields[0]) > 2:
                places.append(fields[0])
    _write_cache(cached, places)
    return frozenset(places)


def _tagged_places(folded: str) -> list[str]:
    places = _dictionary_places()
    found = []
    for name in _jieba().lcut(folded):
        base = name[:-1] if name.endswith(PLACE_SUFFIXES) and len(name) > 2 else name
        if base in KNOWN_PLACES or name in places:
            found.append(base)
    return found


# ---------------------------------------------------------------- answers: markers, numbers, titles

CITATION_MARKER = re.compile(r"\[(\d+)\]")  # [1] after a sentence of an answer; group 1 is the number
NUMBER = re.compile(r"\d+(?:\.\d+)?")
TITLE = re.compile(r"《[^《》]+》")


def strip_markers(text: str) -> str:
    """An answer's text without its [n] citation markers."""
    return CITATION_MARKER.sub("", text or "").strip()


def answer_body(answer_text: str) -> str:
    """The answer as checked: NFKC-normalised, without citation markers like [1]."""
    return CITATION_MARKER.sub("", nfkc(answer_text))


# ---------------------------------------------------------------- text from strangers

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
    text = json.dumps(value, ensure_ascii=False)
    for raw, escaped in _LINE_BREAKS_IN_STRINGS.items():
        text = text.replace(raw, escaped)
    return text
