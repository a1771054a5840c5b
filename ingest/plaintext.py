"""Plain-text reports (.txt, .md): the encoding, and text whose lines were broken where paragraphs are not.

Most plain-text reports hold one paragraph a line and are kept exactly as
decoded, so citation offsets point into the file's own text. Two kinds are
rejoined and then kept as converted text, like a PDF (the index stores it, and
offsets point into it):

- text copied out of a PDF (pypdf), with a hard line break every ~30 characters
  and page markers (`— 3 —`) in the middle of paragraphs: lines are joined back
  into paragraphs, the markers become the page map, and a footnote printed at
  the foot of a page (`*` then its text) becomes a paragraph of its own after
  the paragraph it interrupted;
- a sentence broken by a stray blank line (a page break in an OCR'd file): the
  line that does not end a sentence is joined to the line that continues it.
"""
from __future__ import annotations

import re
import statistics
import unicodedata

from core.errors import ReportFileError

from .formats import ConvertedText, join_wrapped
from .layout import DASHED_PAGE_NUMBER, em_width
from .structure import SUB_HEADING, TOP_HEADING

_TERMINATORS = "。！？；：:;!?"
_CLOSERS = "”’」』》)）】]"
# Openers of a new paragraph in a wrapped report: headings, sub-points, bullets, a footnote.
_OPENS_PARAGRAPH = re.compile(r"^(?:[一二三四五六七八九十]+[、是]|[(（][一二三四五六七八九十]+[)）]|\d{1,2}[．.、]\D|——|\*)")
_SALUTATION = re.compile(r"^(?:各位|尊敬的|委员长|主任|同志们).{0,30}[：:！!]$")
# A speaker line under a title: 审计署审计长 侯 凯, 省长 王予波, 国务院总理 李强.
_SPEAKER = re.compile(r"^\S{0,12}(?:总理|省长|市长|县长|区长|州长|主席|审计长|主任|局长|部长|书记)[\s\u3000]*\S{1,2}(?:\s?\S){1,3}$")
_FOOTNOTE_MARK = re.compile(r"^(?:\*|[\u2460-\u2473])")
_MAX_FOOTNOTE_LINES = 8


def decode_text(raw: bytes, name: str) -> str:
    """The text of a .txt/.md report: UTF-8 (with or without BOM), else GB18030 (a superset of GBK and GB2312).

    A file that is neither, or that decodes to control characters (a binary
    file), is refused with the fix.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        text = None
    if text is not None and _plausible(text):
        return text
    raise ReportFileError(
        f"{name}: neither UTF-8 nor GB18030/GBK text (byte {raw[utf8_error.start]:#04x} at offset "
        f"{utf8_error.start} is not UTF-8); save it as UTF-8 (e.g. `iconv -f <encoding> -t UTF-8`) and ingest again",
        f"{name}：既不是 UTF-8 也不是 GBK/GB18030 编码的文本，请另存为 UTF-8 后重新导入",
    )


def _plausible(text: str) -> bool:
    """Whether GB18030-decoded bytes read as Chinese text rather than a binary file."""
    if any(unicodedata.category(ch) in ("Cc", "Co", "Cs") and ch not in "\t\n\r\f\v" for ch in text):
        return False
    wide = [ch for ch in text if ord(ch) > 0x7F]
    chinese = sum(1 for ch in wide if "\u4e00" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef")
    return not wide or chinese >= 0.6 * len(wide)


def read_plain_text(raw: bytes, name: str) -> ConvertedText:
    """A .txt/.md report as parser text: as decoded, or rejoined when its lines were hard-wrapped."""
    text = decode_text(raw, name)
    lines = text.splitlines()
    if _is_hard_wrapped(lines):
        return _rejoin_wrapped(lines)
    return ConvertedText(_join_split_sentences(text))


# --- hard-wrapped text (copied out of a PDF) ----------------------------------------------

def _is_hard_wrapped(lines: list[str]) -> bool:
    """Most lines are about one width, short, and end mid-sentence: a PDF's text layer, not paragraphs."""
    widths = [em_width(line.strip()) for line in lines if em_width(line.strip()) >= 10]
    if len(widths) < 20:
        return False
    full = statistics.quantiles(widths, n=10)[-1]
    near_full = sum(1 for w in widths if w >= full - 3)
    unfinished = sum(1 for line in lines if len(line.strip()) >= 10 and line.strip()[-1] not in _TERMINATORS + _CLOSERS)
    return full <= 60 and near_full >= 0.6 * len(widths) and unfinished >= 0.5 * len(widths)


def _starts_paragraph(prev: str, line: str, full: float) -> bool:
    """Whether ``line`` opens a new paragraph after ``prev`` in hard-wrapped text.

    Without the PDF's geometry, a paragraph ends where a line ends a sentence and
    is shorter than a full line, or is followed by a heading, sub-point or bullet;
    a short line that ends no sentence is a heading, a title or a speaker line, and
    is joined only to the line that continues a wrapped title.
    """
    prev_width, width = em_width(prev), em_width(line)
    if _SALUTATION.match(line) or _SPEAKER.match(line) or _SPEAKER.match(prev) or _SALUTATION.match(prev):
        return True
    if TOP_HEADING.match(prev) and prev_width < full - 3:
        return True
    if SUB_HEADING.match(prev) and prev[-1] in "。" and prev_width < full - 1:
        return True  # a sub-heading standing on its own line: （六）中央决算草案等部分事项编制不准确。
    if prev[-1] in _TERMINATORS + _CLOSERS:
        if _OPENS_PARAGRAPH.match(line) or prev_width < full - 0.75:
            return True
        return width <= full - 1.5 and line[-1] not in _TERMINATORS  # an indented first line
    return bool(_OPENS_PARAGRAPH.match(line) and line.startswith("——") and prev_width < full - 3)


def _rejoin_wrapped(lines: list[str]) -> ConvertedText:
    stripped = [line.strip() for line in lines]
    body = [s for s in stripped if s and not DASHED_PAGE_NUMBER.match(s)]
    widths = [em_width(s) for s in body if em_width(s) >= 10]
    full = statistics.quantiles(widths, n=10)[-2]  # the 80th percentile: a full line, ignoring wider footnotes

    paragraphs: list[tuple[int, list[str]]] = []  # (page it starts on, its lines)
    pending_notes: list[tuple[int, list[str]]] = []
    page, prev = 1, ""
    i = 0
    while i < len(stripped):
        line = stripped[i]
        if not line:
            prev = ""  # a blank line ends the paragraph
            i += 1
            continue
        if DASHED_PAGE_NUMBER.match(line):
            page = int(re.search(r"\d+", line).group())
            i += 1
            continue
        note_end = _footnote_end(stripped, i)
        if note_end is not None:
            note = [s for s in stripped[i:note_end] if s]
            pending_notes.append((page, ["".join(note[:1])] + note[1:]))
            i = note_end
            continue
        if prev and not _starts_paragraph(prev, line, full):
            paragraphs[-1][1].append(line)
        else:
            paragraphs.extend(pending_notes)  # a footnote follows the paragraph it interrupted
            pending_notes = []
            paragraphs.append((page, [line]))
        prev = line
        i += 1
    paragraphs.extend(pending_notes)

    text, page_map = "", []
    for start_page, parts in paragraphs:
        joined = parts[0]
        for part in parts[1:]:
            joined = join_wrapped(joined, part)
        if not page_map or page_map[-1][1] != start_page:
            page_map.append((len(text), start_page))
        text += joined + "\n\n"
    return ConvertedText(text, page_map)


def _footnote_end(lines: list[str], i: int) -> int | None:
    """Where the footnote starting at line ``i`` ends (the next page marker), or None when it is no footnote.

    A footnote sits at the foot of a page: a mark (``*``, ①) alone or before its text,
    then a few lines, then the page marker.
    """
    if not _FOOTNOTE_MARK.match(lines[i]):
        return None
    for j in range(i + 1, min(len(lines), i + 1 + _MAX_FOOTNOTE_LINES)):
        if DASHED_PAGE_NUMBER.match(lines[j]):
            return j
    return None


# --- a sentence broken by a blank line ------------------------------------------------------

def _join_split_sentences(text: str) -> str:
    """Remove the blank line inside a sentence: a long body line that ends mid-sentence, a blank line, then
    the line that continues it (not a heading, table row, list item or bullet). Other text is kept as it is."""
    pieces = re.split(r"(\n[ \t]*\n(?:[ \t]*\n)*)", text)  # lines, and the blank-line runs between them
    first_line = text.strip().split("\n", 1)[0].strip()  # the title, never continued
    out = [pieces[0]]
    for gap, after in zip(pieces[1::2], pieces[2::2]):
        before_line = out[-1].rsplit("\n", 1)[-1].strip()
        after_line = after.split("\n", 1)[0].strip()
        if before_line != first_line and _continues(before_line, after_line):
            out[-1] += after
        else:
            out.extend([gap, after])
    return "".join(out)


def _continues(before: str, after: str) -> bool:
    """Both lines are prose (a comma or stop in each), and the first ends mid-sentence."""
    if len(before) < 20 or not after or before[-1] in _TERMINATORS + _CLOSERS + "|":
        return False
    if not re.search(r"[，。；、]", before) or not re.search(r"[，。；、]", after):
        return False
    if before.startswith(("#", "|")) or TOP_HEADING.match(before) or SUB_HEADING.match(before):
        return False
    if after.startswith(("#", "|")) or _OPENS_PARAGRAPH.match(after) or TOP_HEADING.match(after):
        return False
    return not unicodedata.category(after[0]).startswith("P") or after[0] in "“《"
