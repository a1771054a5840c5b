"""The chat's HTML, built by small pure functions: every piece of user or document text is escaped first.

How Gradio 6 shows chat messages (checked in the installed frontend):

* ``render_markdown=False`` makes the Chatbot treat a message as HTML, not
  Markdown, so ``**bold**``, ``[x](y)`` or ``$$..$$`` in a question stay literal
  (we escape the question, and Markdown never runs).
* ``sanitize_html=True`` (the default, kept) still runs Gradio's allow-list
  sanitizer on that HTML; ``details``, ``summary``, ``mark``, ``sup`` and the
  ``class``/``open`` attributes we use are on its list, ``script``/``on*`` are not.
* ``latex_delimiters=[]`` and ``allow_tags=False`` switch off KaTeX and the
  custom-tag pass, so no document text is ever interpreted.
"""
from __future__ import annotations

import re
import urllib.parse

from core.text import CITATION_MARKER, char_bigrams
from core.types import Answer, Citation, report_label

from .examples import OFF_TOPIC_GROUP, Groups
from .page import esc as _esc

SCOPE_ZH = (
    "本助手只根据上面这份报告的原文回答问题，每句回答都标注出处；"
    "报告里没有写到的内容（其他政策、办事指南、实时信息等）它不会回答，并会直接告诉您“没有找到”。"
)
# What a phone shows instead (the header may take at most a quarter of its first screen).
SCOPE_SHORT_ZH = "只依据报告原文作答，句句注明出处；报告没写的不回答。"


def quote_span(citation: Citation) -> tuple[int, int] | None:
    """Where the quote sits inside ``citation.chunk.text``, or None if it does not."""
    text, quote = citation.chunk.text, citation.quote
    if not quote:
        return None
    offset = citation.start - citation.chunk.start
    if 0 <= offset and text[offset : offset + len(quote)] == quote:
        return offset, offset + len(quote)
    found = text.find(quote)
    return (found, found + len(quote)) if found >= 0 else None


def render_passage_html(citation: Citation) -> str:
    """The passage, escaped, with the supporting quote wrapped in <mark>."""
    text = citation.chunk.text
    span = quote_span(citation)
    if span is None:
        return _esc(text)
    a, b = span
    return f"{_esc(text[:a])}<mark>{_esc(text[a:b])}</mark>{_esc(text[b:])}"


def render_answer_text_html(text: str, numbers: set[int] | None = None) -> str:
    """Escape the answer text, one <p> per line, with [n] markers set as superscripts."""

    def marker(m: re.Match) -> str:
        if numbers is not None and int(m.group(1)) not in numbers:
            return m.group(0)
        return f'<sup class="rqa-ref">[{m.group(1)}]</sup>'

    lines = [requote(line) for line in (text or "").splitlines() if line.strip()]
    return "".join(f"<p>{CITATION_MARKER.sub(marker, _esc(line))}</p>" for line in lines)


_QUOTED_LINE = re.compile(r"^(?P<head>[^“”]{0,8}：)“(?P<quote>.*)”(?P<tail>\S{0,8})$")


def requote(line: str) -> str:
    """A line like 原文：“…” whose quote holds quotation marks itself gets 「…」 instead of a second pair of “”."""
    m = _QUOTED_LINE.match(line.strip())
    if not m or not any(mark in m["quote"] for mark in "“”"):
        return line
    return f"{m['head']}「{m['quote']}」{m['tail']}"


def render_citation_html(citation: Citation, open_: bool = False) -> str:
    """One collapsible source card: [n] and section in the summary; paragraph, title, passage inside."""
    chunk = citation.chunk
    meta = f"第{int(chunk.paragraph)}段 · {_esc(report_label(chunk))}"
    if chunk.url and chunk.url.startswith(("http://", "https://")):
        meta += f' · <a href="{_esc(chunk.url)}" target="_blank" rel="noopener noreferrer">发布页面</a>'
    if chunk.ocr is not None:  # read from a scanned page: the words may hold recognition errors
        meta += (f' · <span class="rqa-ocr" title="此段文字由扫描件文字识别（OCR）得到，可能有个别错字，请以原件为准">'
                 f"扫描件文字识别，置信度 {float(chunk.ocr):.2f}</span>")
    return (
        f'<details class="rqa-card"{" open" if open_ else ""}>'
        f'<summary><span class="rqa-n">[{int(citation.n)}]</span>{_esc(chunk.section)}</summary>'
        f'<div class="rqa-meta">{meta}</div>'
        f'<blockquote class="rqa-passage">{render_passage_html(citation)}</blockquote>'
        f'<a class="rqa-open" href="{source_anchor(citation)}" aria-label="在报告原文中查看来源 {int(citation.n)}">'
        "查看原文 ›</a>"
        "</details>"
    )


def source_anchor(citation: Citation) -> str:
    """The link a card's 查看原文 carries: ``#rqa-src-<start>-<end>-<source>``; the page's script
    (SOURCE_JS) turns a click on it into the 报告原文 tab with the quote marked and scrolled to."""
    return f"#rqa-src-{int(citation.start)}-{int(citation.end)}-{urllib.parse.quote(citation.chunk.source)}"


def related_examples(question: str, groups: Groups, k: int = 3) -> list[str]:
    """The ``k`` answerable example questions of ``groups`` sharing most character pairs with ``question``
    (the first of each topic when nothing overlaps): what to try after a refusal."""
    answerable = [q for group, qs in groups.items() if group != OFF_TOPIC_GROUP for q in qs if q != question]
    asked = char_bigrams(question or "")
    scored = sorted(answerable, key=lambda q: -len(asked & char_bigrams(q)))  # stable: ties keep topic order
    if not scored or not asked & char_bigrams(scored[0]):
        firsts = [qs[0] for group, qs in groups.items() if group != OFF_TOPIC_GROUP and qs]
        return firsts[:k]
    return scored[:k]


SectionPlace = tuple[str, int]  # (source file, offset where the section's first passage starts)


def section_anchor(place: SectionPlace) -> str:
    """The link a suggested section carries: ``#rqa-sec-<start>-<source>``; the page's script opens the
    报告原文 tab at that offset."""
    source, start = place
    return f"#rqa-sec-{int(start)}-{urllib.parse.quote(source)}"


def ask_anchor(question: str) -> str:
    """The link a suggested question carries: ``#rqa-ask-<question>``; the page's script asks it."""
    return "#rqa-ask-" + urllib.parse.quote(question)


def suggested_sections(answer: Answer, titles: set[str] = frozenset()) -> list[str]:
    """The sections a refusal suggests, without a report's title (a passage outside any section is named
    by its report's title, which is not a section to read)."""
    return [s for s in answer.suggestions if s and s not in titles and s.strip("《》") not in titles]


def render_refusal_html(answer: Answer, related: list[str] | None = None, places: dict[str, SectionPlace] | None = None,
                        titles: set[str] = frozenset()) -> str:
    """A refusal, plainly marked, with taps instead of text to retype: each suggested section opens the
    报告原文 tab there (``places``: section -> where it starts), each suggested question asks it."""
    parts = [
        '<div class="rqa-answer rqa-refused">',
        '<p class="rqa-refusal-badge">⚠ 未在报告中找到答案</p>',
        f"<p>{_esc(answer.text)}</p>",
    ]
    sections = suggested_sections(answer, titles)
    if sections:
        places = places or {}
        items = "".join(
            f'<li><a class="rqa-goto" href="{section_anchor(places[s])}">{_esc(s)}</a></li>' if s in places
            else f"<li>{_esc(s)}</li>" for s in sections)
        parts.append("<p>报告没有直接回答这个问题。下面几部分与问题用词最接近，可能有相关背景，点击可查看原文：</p>"
                     f'<ul class="rqa-sections">{items}</ul>')
    if related:
        items = "".join(f'<li><a class="rqa-ask" href="{ask_anchor(q)}">{_esc(q)}</a></li>' for q in related)
        parts.append(f'<p>也可以试试这些报告能回答的问题（点击即问）：</p><ul class="rqa-related">{items}</ul>')
    parts.append("</div>")
    return "".join(parts)


RELATED_LABEL = "报告中的相关内容"


def render_answer_html(answer: Answer, related: list[str] | None = None, places: dict[str, SectionPlace] | None = None,
                       titles: set[str] = frozenset()) -> str:
    """The bot's reply as HTML: answer text with [n] markers, then numbered source cards.

    A "related" reply (the report covers the topic, not what was asked) is labelled 报告中的相关内容.
    ``related``: example questions a refusal suggests (``related_examples`` of the page's examples);
    ``places`` and ``titles``: where suggested sections start, and the report titles never to suggest.
    """
    if answer.refused:
        return render_refusal_html(answer, related, places, titles)
    numbers = {c.n for c in answer.citations}
    parts = ['<div class="rqa-answer rqa-related-reply">' if answer.reply == "related" else '<div class="rqa-answer">']
    intro, text = related_intro(answer)
    if answer.reply == "related":
        parts.append(f'<p class="rqa-related-badge">{RELATED_LABEL}</p><p class="rqa-meta">{_esc(intro)}</p>')
    if answer.resolved_question:  # a follow-up: say how it was understood
        parts.append(f'<p class="rqa-resolved">（按{quoted(answer.resolved_question)}理解）</p>')
    parts.append(render_answer_text_html(text, numbers))
    if answer.citations:
        cards = "".join(render_citation_html(c, open_=(i == 0)) for i, c in enumerate(answer.citations))
        parts.append(f'<div class="rqa-sources"><div class="rqa-sources-title">来源</div>{cards}</div>')
    parts.append("</div>")
    return "".join(parts)


RELATED_INTRO_DEFAULT = "报告没有直接回答这个问题，以下是报告中与它相关的原文："


def related_intro(answer: Answer) -> tuple[str, str]:
    """A related reply's opening line (what the report does not give, 报告中没有直接回答这个问题（没有给出天数）)
    and the rest of its text; the intro is said once, under the label, not again above the quotes."""
    first, _, rest = answer.text.partition("\n")
    if answer.reply == "related" and first.startswith("报告中没有直接回答"):
        return first.removesuffix("报告中的相关内容：").rstrip("。") + "。以下是报告中与它相关的原文：", rest
    return RELATED_INTRO_DEFAULT, answer.text


def quoted(text: str) -> str:
    """``text`` in quotation marks: “…”, or 「…」 when it holds “” itself (no second pair around a quote)."""
    return f"「{text}」" if any(mark in text for mark in "“”\"") else f"“{text}”"


def render_answer_plain(answer: Answer, titles: set[str] = frozenset()) -> str:
    """The answer as plain text to copy: the text with its [n], then 来源： one line per source."""
    if answer.refused:
        lines = [answer.text]
        sections = suggested_sections(answer, titles)
        if sections:
            lines += ["", "可能有相关背景的部分："] + [f"- {s}" for s in sections]
        return "\n".join(lines)
    intro, text = related_intro(answer)
    lines = [RELATED_LABEL + "：", intro, ""] if answer.reply == "related" else []
    lines += [requote(line.strip()) for line in text.splitlines() if line.strip()]
    if answer.citations:
        lines += ["", "来源："]
        for c in answer.citations:
            lines.append(f"[{c.n}] {report_label(c.chunk)} › {c.chunk.section}（第{c.chunk.paragraph}段）：{quoted(c.quote)}")
            if c.chunk.url:
                lines.append(f"    {c.chunk.url}")
    return "\n".join(lines)


def render_report_html(sources: dict[str, str], titles: dict[str, str] | None = None) -> str:
    """Every report in full, escaped, one <p> per paragraph, headed by its title (``titles``: source -> title;
    the file name when it has none); each <p> says where it starts in its file (data-start), so the page
    script can mark a quote by its character offsets."""
    parts = ['<div id="rqa-report-text">']
    for name, text in sources.items():
        title = (titles or {}).get(name) or name
        parts.append(f'<h2 class="rqa-report-name">《{_esc(title)}》</h2>' if title != name
                     else f'<h2 class="rqa-report-name">{_esc(name)}</h2>')
        for match in re.finditer(r"[^\n]+", text):
            if match.group().strip():
                parts.append(f'<p class="rqa-para" data-source="{_esc(name)}" data-start="{match.start()}">'
                             f"{_esc(match.group())}</p>")
    if not sources:
        parts.append("<p>暂时无法显示报告原文。</p>")
    parts.append("</div>")
    return "".join(parts)


def render_question_html(question: str) -> str:
    """The user's message: literal text, never HTML or Markdown."""
    return "<br>".join(_esc(line) for line in (question or "").splitlines()) or "&nbsp;"


def render_error_html(message_zh: str) -> str:
    return f'<div class="rqa-answer rqa-error"><p>⚠ {_esc(message_zh)}</p></div>'


HEADER_TITLES = 3  # more reports than this are counted in the header, not listed


def render_header_html(titles: list[str], error_zh: str | None = None) -> str:
    if len(titles) > HEADER_TITLES:
        names = f"《{_esc(titles[0])}》等 {len(titles)} 份报告"
    else:
        names = "、".join(f"《{_esc(t)}》" for t in titles) if titles else "报告"
    scope = SCOPE_ZH if len(titles) <= 1 else SCOPE_ZH.replace("上面这份报告", f"已收录的 {len(titles)} 份报告")
    error = f'<p class="rqa-error">⚠ {_esc(error_zh)}</p>' if error_zh else ""
    return (
        f'<h1>{names} 问答</h1>'
        f'<p class="rqa-scope"><span class="rqa-scope-long">{_esc(scope)}</span>'
        f'<span class="rqa-scope-short">{_esc(SCOPE_SHORT_ZH)}</span></p>{error}'
    )


def render_partial_html(text: str) -> str:
    """An answer still being composed (an LLM streaming): plain escaped text and a cursor."""
    return f'<div class="rqa-answer rqa-partial"><p>{render_question_html(text)} ▌</p></div>'
