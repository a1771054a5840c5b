"""Sentence splitting and the word tokens BM25 and the answerer share."""
from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache

from .models import Span

SENTENCE_END = "。！？；!?;"
# Closing quotes and brackets that belong to the sentence they end.
_CLOSERS = "”’」』》)）\"'"
_SENTENCE_RE = re.compile(rf"[^{SENTENCE_END}\n]*(?:[{SENTENCE_END}]+[{re.escape(_CLOSERS)}]*|$)")

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


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def normalize(text: str) -> str:
    """Fold full-width forms and case so 1726, １７２６ and ＡＰＰ match."""
    return unicodedata.normalize("NFKC", text).lower()


def _is_word(token: str) -> bool:
    return any(ch.isalnum() for ch in token)


def tokenize(text: str) -> list[str]:
    """Jieba search-mode tokens without punctuation or stopwords, for BM25."""
    words = _jieba().lcut_for_search(normalize(text))
    return [w for w in (w.strip() for w in words) if w and _is_word(w) and w not in STOPWORDS]


def content_terms(text: str) -> list[str]:
    """The distinct topic words of a question, longest first, for coverage."""
    words = _jieba().lcut(normalize(text))
    terms = {w.strip() for w in words}
    return sorted((t for t in terms if t and _is_word(t) and t not in STOPWORDS), key=len, reverse=True)


def place_names(text: str) -> list[str]:
    """Provinces, cities and districts a text names (沈阳, 北京市, 西岗区).

    A word counts when it is a known province or city, or jieba tags it a
    place and it ends in 省/市/区/县; jieba alone also tags 台风 and 上门.
    """
    _jieba()
    import jieba.posseg as posseg

    from .places import KNOWN_PLACES, PLACE_SUFFIXES

    found = []
    for word in posseg.lcut(normalize(text)):
        name = word.word
        base = name[:-1] if name.endswith(PLACE_SUFFIXES) and len(name) > 2 else name
        if base in KNOWN_PLACES or (word.flag == "ns" and name.endswith(PLACE_SUFFIXES) and len(name) > 2):
            found.append(base)
    return found
