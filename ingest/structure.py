"""Parse a report's structure: title, appendices, 一、 headings, (一) subsections, paragraphs and table rows.

The parser reads one paragraph a line (plain text as it is; .html/.docx/.pdf and
hard-wrapped text after conversion) and decides, line by line:

- **front matter** before the body: the title (a line, a title wrapped over two
  lines, or 政府工作报告 + its ——date subtitle when the title names no year),
  and what is not the report: a photo caption, a news dateline, 来源：…, a date,
  the speaker (省长 王予波), the issuing body (洛阳市统计局); ``各位代表：`` opens
  the body, it is no title. A trailing signature and date are back matter.
- **page furniture**: page numbers (- 1 -, — 1 —) and running headers (a short
  line repeated three times or more) are skipped.
- **headings**: 一、 top headings in numbering order (so a table row 一、食品烟酒 99.2
  or a ### 一、… inside section 三、 is not one); (一) subsections on their own
  line or opening a paragraph; Markdown # headings (but ### 三是… is a sub-point,
  i.e. a paragraph); appendices (附件1 …, 附件：…, 名词解释, 注释：, 资料来源：)
  restart the numbering and lead the section path, so ("附件1 …", "一、…") never
  collides with the body's ("一、…",).
- **paragraphs**: every other line; 一是/二是 sub-points and —— bullets stay in
  their section; a footnote body (注：…, *…) gets the section ("注释",).
- **table rows**: ``| a | b |`` rows and flattened ``label 1 2 3`` rows are
  paragraphs of their own, each with its table's caption and header row as context.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from core.text import YEAR_OF
from core.types import Paragraph

from .layout import DASHED_PAGE_NUMBER, clean_heading, collapse_spacing
from .tables import CAPTION, PIPE_SEPARATOR, header_text, is_flat_row, is_pipe_row, template_columns, value_count

_NUMERALS = "一二三四五六七八九十"
TOP_HEADING = re.compile(rf"^(?:#+\s*)?([{_NUMERALS}]+)、\s*(\S.*)$")
SUB_HEADING = re.compile(rf"^(?:#+\s*)?[(（]([{_NUMERALS}]+)[)）]\s*(\S.*)$")
MD_HEADING = re.compile(r"^(#{1,6})\s+(\S.*)$")
# A trailing 编辑:/责任编辑：/来源: line is page metadata, not report content.
METADATA = re.compile(r"^(?:责任)?(?:编辑|校对|来源|审核)\s*[:：]")
_MAX_HEADING_CHARS = 40
_SENTENCE_STOP = re.compile(r"[。！？；!?;]")

_APPENDIX = re.compile(r"^(附件|附表)\s*(\d*)\s*[:：]?\s*(.*)$")
_NOTES_HEADING = re.compile(r"^(注释|注|资料来源|名词解释|附注)\s*[:：]?$")
_NOTE_PARAGRAPH = re.compile(r"^(?:注\s*[:：]|\*[^*\s])")
_NUMBERED_NOTE = re.compile(r"^(?:\d{1,2}\s*[.．、]|[\u2460-\u2473]|\[\d{1,2}\])")
_LONE_VALUE = re.compile(r"^[-+]?\d[\d,]*(?:\.\d+)?\s?[%‰]?$")
_SUB_POINT = re.compile(rf"^[{_NUMERALS}]+是")
SALUTATION = re.compile(r"^(?:各位代表|各位委员|各位同志|同志们|尊敬的.{0,20}|委员长、.{0,30})[：:！!]$")
# Front matter that is not the title.
_DATELINE = re.compile(r"^(?:新华社|中新社|人民网|本报|央视网)\S{0,12}\d{1,2}月\d{1,2}日电")
_PHOTO_CAPTION = re.compile(r"(?:记者|摄影).{0,12}摄[)）]?$")
_SOURCE_LINE = re.compile(r"^(?:来源|信息来源|稿源|发布时间|发布日期|发文日期|时间|日期)\s*[:：]")
DATE_LINE = re.compile(r"^[(（]?(?:19|20)\d{2}年\d{1,2}月\d{1,2}日[)）]?$")
SPEAKER = re.compile(r"^\S{0,12}(?:总理|省长|市长|县长|区长|州长|主席|审计长|主任|局长|部长|书记)\s+\S(?:\s?\S){1,3}$")
ISSUER_LINE = re.compile(r"^(?:\S{2,30}?(?:人民政府|办公室|统计局|调查队|委员会|局|厅|署)\s*)+$")
TITLE_KIND = re.compile(r"报告|公报|年报|纲要|规划|白皮书|决算|预算|通报|总结")
_MAX_TITLE_CHARS = 100
_MAX_FRONT_LINES = 12  # a cover page is a few lines; past these the body has begun


@dataclass(frozen=True)
class ParsedText:
    """What the parser found in a report's text."""

    title: str
    headings: list[tuple[str, ...]]
    paragraphs: list[Paragraph]
    front_matter: list[str] = field(default_factory=list)  # issuer, date, speaker, source lines (and the signature)


@dataclass
class _Line:
    start: int
    end: int
    text: str  # the stripped line, as in the source
    clean: str  # letter spacing, escapes and invisible characters removed, for matching


@dataclass
class _Item:
    kind: str  # appendix top top_inline sub sub_inline salutation note para row
    line: _Line
    name: str = ""  # heading name as shown in section paths
    start: int = -1  # where the paragraph's text starts, when not at the line start (### 三是…)
    header: bool = False  # a table's header row (a Markdown separator follows it)
    consumed: bool = False  # read as a table caption or header: not a paragraph of its own
    context: str = ""


def _lines(text: str):
    """Yield every non-blank line."""
    pos = 0
    for raw in text.splitlines(keepends=True):
        stripped = raw.strip()
        if stripped:
            start = pos + raw.index(stripped[0])
            yield _Line(start, start + len(stripped), stripped, collapse_spacing(stripped))
        pos += len(raw)


def _is_heading_text(text: str) -> bool:
    body = text.rstrip("。")
    return len(body) <= _MAX_HEADING_CHARS and not _SENTENCE_STOP.search(body)


def _number(numerals: str) -> int:
    """一 → 1, 十 → 10, 十二 → 12, 二十三 → 23."""
    digits = {ch: i for i, ch in enumerate(_NUMERALS, start=1)}
    if "十" not in numerals:
        return digits.get(numerals, 0) if len(numerals) == 1 else 0
    tens, _, ones = numerals.partition("十")
    return (digits[tens] if tens else 1) * 10 + (digits[ones] if ones else 0)


def parse_structure(text: str) -> tuple[str, list[tuple[str, ...]], list[Paragraph]]:
    """Return (title, section paths in order, body paragraphs); see ``parse_text``."""
    parsed = parse_text(text)
    return parsed.title, parsed.headings, parsed.paragraphs


def parse_text(text: str) -> ParsedText:
    """Title, headings, paragraphs and front matter of a report's text.

    A subsection whose heading stands on its own line scopes every paragraph up
    to the next heading. One whose heading opens its paragraph ("(一)优化政府机构
    职能…。制定…") scopes the paragraphs after it too, unless the section's
    subsections are all such paragraphs in a row: then each scopes only itself,
    and the closing paragraph (the shortcomings) belongs to the top section.
    """
    lines = list(_lines(text))
    while lines and METADATA.match(lines[-1].text):  # 编辑:高佳欢 and the like
        lines.pop()
    lines, header_rows = _drop_page_furniture(lines)
    title, front, body = _front_matter(lines)
    body, back = _back_matter(body)
    items = _classify(body, header_rows)
    _read_tables(items)
    headings, paragraphs = _section_paths(items)
    return ParsedText(title, headings, paragraphs, front + back)


# --- page furniture, front and back matter ------------------------------------------------

def _drop_page_furniture(lines: list[_Line]) -> tuple[list[_Line], set[int]]:
    """Lines without page numbers, Markdown table separators and running headers; and the start
    offsets of table header rows (the rows a separator follows)."""
    counts = Counter(ln.clean for ln in lines)
    kept: list[_Line] = []
    header_rows: set[int] = set()
    for line in lines:
        if PIPE_SEPARATOR.match(line.text) and "-" in line.text:
            if kept and is_pipe_row(kept[-1].text):
                header_rows.add(kept[-1].start)
            continue
        if DASHED_PAGE_NUMBER.match(line.text) or _is_running_header(line, counts):
            continue
        kept.append(line)
    return kept, header_rows


def _is_running_header(line: _Line, counts: Counter) -> bool:
    """A page header a copied PDF repeats (洛阳市2023年国民经济和社会发展统计公报, ×10)."""
    return (counts[line.clean] >= 3 and 6 <= len(line.clean) <= 50 and not _SENTENCE_STOP.search(line.clean)
            and bool(TITLE_KIND.search(line.clean) or YEAR_OF.search(line.clean))
            and not is_pipe_row(line.text) and not is_flat_row(line.text) and not TOP_HEADING.match(line.text)
            and not SUB_HEADING.match(line.text) and not SALUTATION.match(line.clean))


def _not_title(clean: str) -> bool:
    """Front matter that is not the title: caption, dateline, source, date or speaker line."""
    return bool(_PHOTO_CAPTION.search(clean) or _DATELINE.match(clean) or _SOURCE_LINE.match(clean)
                or DATE_LINE.match(clean) or SPEAKER.match(clean))


def _opens_body(line: _Line) -> bool:
    clean = line.clean
    return bool(TOP_HEADING.match(line.text) or SUB_HEADING.match(line.text) or SALUTATION.match(clean)
                or _NOTES_HEADING.match(clean) or is_pipe_row(line.text) or is_flat_row(line.text)
                or _SENTENCE_STOP.search(clean)
                or clean.endswith(("：", ":")) or len(clean) > _MAX_TITLE_CHARS)


def _title_like(line: _Line) -> bool:
    return not _opens_body(line) and not _not_title(line.clean)


def _front_matter(lines: list[_Line]) -> tuple[str, list[str], list[_Line]]:
    """The title, the other front-matter lines, and the body lines after them."""
    title, front, i = "", [], 0
    while i < min(len(lines), _MAX_FRONT_LINES):
        line = lines[i]
        md = MD_HEADING.match(line.text)
        if md and len(md.group(1)) == 1 and not title:
            title, i = clean_heading(line.text), i + 1
            continue
        if _not_title(line.clean):
            front.append(line.clean)
            i += 1
            continue
        if _opens_body(line) or md:
            break
        following = lines[i + 1] if i + 1 < len(lines) else None
        if title:
            if not _year_in(title) and line.clean.startswith(("——", "—")):
                title += clean_heading(line.text)  # 政府工作报告 + ——2015年3月5日在…: the year is in the subtitle
            else:
                front.append(line.clean)
        elif following is not None and _title_like(following) and not TITLE_KIND.search(line.clean) \
                and TITLE_KIND.search(following.clean):
            title = clean_heading(line.text + following.text)  # 黔东南苗族侗族自治州 / 2016年…统计公报
            i += 1
        elif ISSUER_LINE.match(line.clean):
            front.append(line.clean)
        else:
            title = clean_heading(line.text)
        i += 1
    return title, front, lines[i:]


def _year_in(text: str) -> bool:
    return bool(YEAR_OF.search(text))


def _back_matter(lines: list[_Line]) -> tuple[list[_Line], list[str]]:
    """The body without its closing signature and date (沭阳县发展和改革局 / 2024年1月17日)."""
    n = 0
    while n < min(3, len(lines)) and (DATE_LINE.match(lines[-1 - n].clean) or (
            ISSUER_LINE.match(lines[-1 - n].clean) and len(lines[-1 - n].clean) <= 30)):
        n += 1
    tail = lines[len(lines) - n:]
    if not any(DATE_LINE.match(line.clean) for line in tail):  # a lone name at the end may be content
        return lines, []
    return lines[:len(lines) - n], [line.clean for line in tail]


# --- headings, paragraphs, rows -----------------------------------------------------------

def _classify(lines: list[_Line], header_rows: set[int]) -> list[_Item]:
    """Each line as a heading, paragraph or table row; 一、 headings count up from 一 in each appendix."""
    items: list[_Item] = []
    last_top = 0
    skip_next = False
    for i, line in enumerate(lines):
        if skip_next:
            skip_next = False
            continue
        text, clean = line.text, line.clean
        bare = clean.lstrip("#").strip()
        if is_pipe_row(text) or is_flat_row(text) or (items and items[-1].kind == "row" and _LONE_VALUE.match(text)):
            # a row; "# 住 宅 % -2.4" marks a 其中 row, it is no Markdown heading; a lone value between rows
            # is a cell the PDF put on a line of its own
            items.append(_Item("row", line, header=line.start in header_rows))
            continue
        if SALUTATION.match(clean):
            items.append(_Item("salutation", line))
            continue
        appendix = _APPENDIX.match(bare)
        if appendix and len(bare) <= _MAX_HEADING_CHARS and not _SENTENCE_STOP.search(bare):
            label, number, rest = appendix.groups()
            label += number
            following = lines[i + 1] if i + 1 < len(lines) else None
            if not rest and following is not None and _is_appendix_title(following):
                rest, skip_next = clean_heading(following.text), True
            rest = collapse_spacing(rest)
            name = f"{label} {rest}" if rest and number else (f"{label}：{rest}" if rest else label)
            items.append(_Item("appendix", line, name))
            last_top = 0
            continue
        notes = _NOTES_HEADING.match(bare)
        if notes:
            items.append(_Item("appendix", line, notes.group(1) if notes.group(1) != "注" else "注释"))
            last_top = 0
            continue
        top = TOP_HEADING.match(text)
        if top and last_top < _number(top.group(1)) <= last_top + 2:
            if _is_heading_text(text):
                items.append(_Item("top", line, clean_heading(text).rstrip("。")))
                last_top = _number(top.group(1))
                continue
            head = _SENTENCE_STOP.split(text, 1)[0]
            if _number(top.group(1)) == last_top + 1 and len(head) <= _MAX_HEADING_CHARS:
                items.append(_Item("top_inline", line, clean_heading(head)))
                last_top += 1
                continue
        sub = SUB_HEADING.match(text)
        if sub:
            if _is_heading_text(text):
                items.append(_Item("sub", line, clean_heading(text).rstrip("。")))
            else:
                head = _SENTENCE_STOP.split(text, 1)[0]
                items.append(_Item("sub_inline", line, clean_heading(head)))
            continue
        md = MD_HEADING.match(text)
        if md:
            body = md.group(2).strip()
            if _SUB_POINT.match(body) or not _is_heading_text(body):  # ### 三是提高解读效能。 is a sub-point
                items.append(_Item("para", line, start=line.start + text.index(body)))
            else:
                items.append(_Item("top" if len(md.group(1)) <= 2 else "sub", line, clean_heading(body)))
            continue
        items.append(_Item("note" if _NOTE_PARAGRAPH.match(text) else "para", line))
    return items


def _is_appendix_title(line: _Line) -> bool:
    """附件1 / 2025年省十件民生实事: the title line under a bare 附件 label."""
    return (len(line.clean) <= _MAX_HEADING_CHARS and not _SENTENCE_STOP.search(line.clean)
            and not TOP_HEADING.match(line.text) and not SUB_HEADING.match(line.text) and not is_pipe_row(line.text))


def _short_label(item: _Item, limit: int, whole: bool = True) -> bool:
    """A short paragraph without sentence punctuation: a caption or a header row (``whole``), which may hold
    brackets, colons and numbers (本年收费金额（单位：万元）), or a piece of a header a PDF broke up, which holds none."""
    clean = item.line.clean
    return item.kind == "para" and len(clean) <= limit and not re.search(r"[。，；！？,;]", clean) \
        and (whole or not re.search(r"[：:（）()\d]", clean))


def _caption(line: _Line) -> str:
    """A caption as shown: without letter spacing, but 表1 keeps its space before the name."""
    return re.sub(r"^((?:附?表)\d+)\s*", r"\1 ", line.clean)


def _header(line: _Line) -> str:
    """A flattened header row as shown: its cells stay apart."""
    return re.sub(r"[ \t\u3000\xa0]+", " ", line.text)


def _read_tables(items: list[_Item]) -> None:
    """Give every table row its caption and header row as context; the lines read as caption or
    header are no paragraphs of their own."""
    i = 0
    while i < len(items):
        if items[i].kind != "row":
            i += 1
            continue
        end = i + 1
        while end < len(items) and items[end].kind == "row" and not items[end].header:  # a header starts a table
            end += 1
        block = items[i:end]
        header, caption = None, None
        if block[0].header:
            header = block[0].line.text
            block[0].consumed = True
        before = i - 1
        if header is None and not is_pipe_row(block[0].line.text) and before >= 0 \
                and _short_label(items[before], 60) and not CAPTION.match(items[before].line.clean):
            header = _header(items[before].line)  # 信息内容 本年制发件数 本年废止件数 现行有效件数
            items[before].consumed = True
            before -= 1
            while before >= 0 and _short_label(items[before], 20, whole=False):
                # the rest of a header a PDF broke into pieces (结果维持结果纠正…, 总 计)
                items[before].consumed = True
                before -= 1
        if before >= 0:  # the line before the table (and its header): a caption, or the heading it sits under
            previous = items[before]
            if _short_label(previous, _MAX_HEADING_CHARS) and (CAPTION.match(previous.line.clean) or header):
                caption = _caption(previous.line)
                previous.consumed = True
            elif previous.kind in ("sub", "top", "appendix"):
                caption = previous.name
            elif previous.kind == "row" and header and not block[0].header:
                caption, header = header, None  # a group label between rows (三、本年度办理结果)
        # A numbered label broken off its row (5.要求行政机关确认或重 新出具 / 已获取信息 0 0 …) names that row only.
        first_only = bool(caption and header is None and re.match(r"^\d{1,2}[.．]", caption))
        section = _section_before(items, i)
        for row in block:
            if row.consumed:
                continue
            shown = header_text(header) if header else ""
            if not block[0].header:  # flattened rows: a PDF breaks the template tables' headers apart
                columns = template_columns(value_count(row.line.text), section)
                shown = " | ".join(columns) if columns else shown
            row.context = "\n".join(part for part in (caption, shown) if part)
            if first_only:
                caption = None
        i = end


def _section_before(items: list[_Item], i: int) -> str:
    """The names of the top heading and subsections above item ``i``."""
    names: list[str] = []
    for item in reversed(items[:i]):
        if item.kind in ("sub", "sub_inline"):
            names.insert(0, item.name)
        elif item.kind in ("top", "top_inline", "appendix"):
            names.insert(0, item.name)
            break
    return " ".join(names)


def _scopes_itself(items: list[_Item]) -> set[int]:
    """Indexes of inline subsections that scope only their own paragraph: in a top section whose
    subsections are all inline and follow each other (the shipped report's (一)…(九))."""
    itself: set[int] = set()
    section: list[int] = []

    def close() -> None:
        kinds = [items[k].kind for k in section]
        inline = [k for k in section if items[k].kind == "sub_inline"]
        if len(inline) >= 2 and "sub" not in kinds and inline == list(range(inline[0], inline[-1] + 1)):
            itself.update(inline)
        section.clear()

    for k, item in enumerate(items):
        if item.kind in ("top", "top_inline", "appendix"):
            close()
        section.append(k)
    close()
    return itself


def _section_paths(items: list[_Item]) -> tuple[list[tuple[str, ...]], list[Paragraph]]:
    itself = _scopes_itself(items)
    appendix = top = sub = None
    in_note = False
    headings: list[tuple[str, ...]] = []
    paragraphs: list[Paragraph] = []

    def path(*names) -> tuple[str, ...]:
        return tuple(n for n in (appendix, *names) if n)

    def add(item: _Item, section: tuple[str, ...]) -> None:
        start = item.start if item.start >= 0 else item.line.start
        text = item.line.text[start - item.line.start:]
        paragraphs.append(Paragraph(len(paragraphs) + 1, section, start, item.line.end, text, item.context))

    for k, item in enumerate(items):
        kind = item.kind
        if kind != "para":
            in_note = kind == "note"
        if kind == "appendix":
            appendix, top, sub = item.name, None, None
            headings.append(path())
        elif kind in ("top", "top_inline"):
            top, sub = item.name, None
            headings.append(path(top))
            if kind == "top_inline":
                add(item, path(top))
        elif kind == "sub":
            sub = item.name
            headings.append(path(top, sub))
        elif kind == "sub_inline":
            headings.append(path(top, item.name))
            add(item, path(top, item.name))
            sub = None if k in itself else item.name
        elif kind == "note" or (kind == "para" and in_note and _NUMBERED_NOTE.match(item.line.text)):
            if headings[-1:] != [("注释",)] and kind == "note":
                headings.append(("注释",))
            add(item, ("注释",))
        elif not item.consumed:
            in_note = False
            if kind == "salutation":
                sub = None  # 各位代表！ closes the subsection before it
            add(item, path(top, sub))
    return headings, paragraphs
