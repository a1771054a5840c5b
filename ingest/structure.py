"""Parse a report's structure: title, 一、 headings, (一) subsections, paragraphs."""
from __future__ import annotations

import re

from core.types import Paragraph

_NUMERALS = "一二三四五六七八九十"
TOP_HEADING = re.compile(rf"^(?:#+\s*)?([{_NUMERALS}]+)、\s*(\S.*)$")
SUB_HEADING = re.compile(rf"^(?:#+\s*)?[(（]([{_NUMERALS}]+)[)）]\s*(\S.*)$")
MD_HEADING = re.compile(r"^(#{1,6})\s+(\S.*)$")
# A trailing 编辑:/责任编辑：/来源: line is page metadata, not report content.
METADATA = re.compile(r"^(?:责任)?(?:编辑|校对|来源|审核)\s*[:：]")
_MAX_HEADING_CHARS = 40


def _lines(text: str):
    """Yield (start, end, stripped_line) for every non-blank line."""
    pos = 0
    for raw in text.splitlines(keepends=True):
        stripped = raw.strip()
        if stripped:
            start = pos + raw.index(stripped[0])
            yield start, start + len(stripped), stripped
        pos += len(raw)


def _is_heading_text(text: str) -> bool:
    body = text.rstrip("。")
    return len(body) <= _MAX_HEADING_CHARS and not re.search(r"[。！？；!?;]", body)


def parse_structure(text: str) -> tuple[str, list[tuple[str, ...]], list[Paragraph]]:
    """Return (title, section paths in order, body paragraphs).

    A subsection whose heading stands on its own line scopes every paragraph
    up to the next heading. A subsection whose heading opens its paragraph
    ("(一)优化政府机构职能…。制定…") scopes that paragraph only: the report's
    closing paragraph of 一、 (the shortcomings) belongs to 一、, not to (九).
    """
    title = ""
    top: str | None = None
    sub: str | None = None
    headings: list[tuple[str, ...]] = []
    paragraphs: list[Paragraph] = []
    lines = list(_lines(text))
    # Drop trailing metadata lines (编辑:高佳欢) before anything else.
    while lines and METADATA.match(lines[-1][2]):
        lines.pop()

    for start, end, line in lines:
        md = MD_HEADING.match(line)
        if not title and not paragraphs and (md and len(md.group(1)) == 1 or _is_heading_text(line)):
            title = md.group(2).strip() if md else line
            continue
        top_match = TOP_HEADING.match(line)
        if top_match and _is_heading_text(line):
            top, sub = line.lstrip("#").strip(), None
            headings.append((top,))
            continue
        sub_match = SUB_HEADING.match(line)
        if sub_match and _is_heading_text(line):
            sub = line.lstrip("#").strip().rstrip("。")
            headings.append(tuple(h for h in (top, sub) if h))
            continue
        if md:  # any other markdown heading opens a section at its level
            name = md.group(2).strip()
            if len(md.group(1)) <= 2:
                top, sub = name, None
                headings.append((top,))
            else:
                sub = name
                headings.append(tuple(h for h in (top, sub) if h))
            continue
        path = tuple(h for h in (top, sub) if h)
        if sub_match:  # inline heading: "(一)标题。正文…"
            first_stop = re.search(r"[。！？；!?;]", line)
            inline = line[: first_stop.start()] if first_stop else line
            path = tuple(h for h in (top, inline.strip()) if h)
            headings.append(path)
        paragraphs.append(Paragraph(len(paragraphs) + 1, path, start, end, line))
    return title, headings, paragraphs
