"""Convert .html, .docx and .pdf reports into the plain text the structure parser reads.

Every format becomes one paragraph per line, headings on their own lines and a
blank line between blocks, so ``parse_structure`` finds the same section paths
in every format. A PDF also gives a page map: (offset in that text, page number)
for the first line of each page, so a paragraph can tell the page it starts on.
"""
from __future__ import annotations

import bisect
import itertools
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ReportFileError

from .layout import PAGE_NUMBER, collapse_spacing, em_width
from .metadata import html_metadata
from .ocr import OcrPage, OcrSettings, read_pages
from .structure import SUB_HEADING, TOP_HEADING
from .tables import is_flat_row


@dataclass(frozen=True)
class ParseLimits:
    """What reading one report may cost; over a cap the file is skipped with the reason (docs/SECURITY.md).

    The defaults are far above any real report (the national work report is
    19,000 characters in 27 PDF pages; a large statistics yearbook a few hundred
    pages) and far below what would take a 2-core server down.
    """

    max_file_bytes: int = 50 * 2**20
    max_unpacked_bytes: int = 200 * 2**20  # a .docx's members, as its zip directory declares them
    max_pages: int = 2000
    max_chars: int = 3_000_000  # of text, after conversion
    max_seconds: float = 60.0  # per file (ingest.sandbox)
    max_memory_bytes: int = 2 * 2**30  # address space of the converter process (ingest.sandbox)
    # PDF pages without a text layer (scans): read by OCR within a time budget per page (ingest.ocr).
    ocr: OcrSettings = OcrSettings()

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_unpacked_bytes", "max_pages", "max_chars", "max_seconds",
                     "max_memory_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


def over_limit(name: str, what: str, value: float, limit: float, what_zh: str) -> ReportFileError:
    """The error for a file over one of the caps: which cap, by how much."""
    return ReportFileError(f"{name}: {what} {value:,.0f} is over the limit of {limit:,.0f}; skipped",
                           f"{name}：{what_zh}超出上限，已跳过")


@dataclass(frozen=True)
class ConvertedText:
    """A report as parser-ready text; ``pages`` maps start offsets to 1-based page numbers (PDF only)."""

    text: str
    pages: list[tuple[int, int]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # issuer/url the file itself names (ingest.metadata)
    ocr: list[tuple[int, int, float]] = field(default_factory=list)  # (start, end, confidence) of each OCR'd line


def page_of(pages: Sequence[tuple[int, int]], offset: int) -> int | None:
    """The page that holds ``offset`` of the converted text, or None when the format has no pages."""
    i = bisect.bisect_right([start for start, _ in pages], offset) - 1
    return pages[i][1] if i >= 0 else (pages[0][1] if pages else None)


def _unreadable(name: str, reason: str, reason_zh: str) -> ReportFileError:
    return ReportFileError(f"{name}: {reason}", f"{name}：{reason_zh}")


def join_wrapped(left: str, right: str) -> str:
    """Join two pieces of one paragraph: no space in Chinese, one between English words."""
    if re.search(r"[A-Za-z,.;:]$", left) and re.match(r"[A-Za-z(]", right):
        return f"{left} {right}"
    return left + right


def _blocks_to_text(blocks: list[str]) -> str:
    return "\n\n".join(b for b in blocks if b) + "\n"


# --- HTML ------------------------------------------------------------------------------

_NOISE_TAGS = ("script", "style", "noscript", "template", "nav", "footer", "aside", "form", "iframe", "select",
               "button", "svg")
_NOISE_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary"}
# Class/id words of portal chrome: menus, breadcrumbs, share bars, sidebars.
_NOISE_NAME = re.compile(r"(?:^|[-_\s])(?:nav|navbar|menu|footer|foot|header|head|sidebar|side|breadcrumbs?|crumbs?|"
                         r"share|toolbar|topbar|links?|friend-?links|copyright|search|login)(?:[-_\s\d]|$)", re.IGNORECASE)
_CONTENT_NAME = re.compile(r"^(?:TRS_Editor|TRS_UEDITOR|zoom|content|article|article-?content|main-?content|"
                           r"news-?content|con|text|detail|pages_content|view)$", re.IGNORECASE)
_BLOCK_TAGS = ("p", "div", "section", "article", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
               "pre", "table", "ul", "ol", "dd", "dt", "main", "header")
# Page metadata lines a portal puts around the article (发布时间：… 来源：… 字号：大 中 小).
_PORTAL_META = re.compile(r"^(?:发布时间|发布日期|发文日期|时间|日期|来源|信息来源|作者|浏览次数|点击数|阅读次数|字号|"
                          r"【?字体|打印|关闭|分享到)\s*[:：】]?")


# Tags some government CMSs wrap the article and its title in (大汉 <ucapcontent>, <ucaptitle>).
_CONTENT_TAGS = ("ucapcontent",)
_TITLE_TAGS = ("ucaptitle",)


def _element_names(tag) -> str:
    return " ".join([*(tag.get("class") or []), tag.get("id") or ""])


def _own_text_length(tag) -> int:
    """Characters of text outside links: menus are mostly links, an article is mostly not."""
    total = len(re.sub(r"\s", "", tag.get_text()))
    in_links = sum(len(re.sub(r"\s", "", a.get_text())) for a in tag.find_all("a"))
    return total - in_links


def _drop_chrome(soup) -> None:
    for tag in soup.find_all(_NOISE_TAGS):
        tag.decompose()
    for tag in soup.find_all("header"):
        if not tag.find_parent("article"):  # an <article>'s own <header> holds its title
            tag.decompose()
    # Blocks holding the article (an <article>, a CMS content tag) are never chrome; found once, not per tag.
    holds_article = {id(parent) for tag in soup.find_all(("article", *_CONTENT_TAGS)) for parent in tag.parents}
    chrome: list = []
    dropped: set[int] = set()
    for tag in soup.find_all(True):  # in document order, so a block comes before what it holds
        if tag.name in ("html", "body") or id(tag) in holds_article or any(id(p) in dropped for p in tag.parents):
            continue
        names = _element_names(tag)
        if any(_CONTENT_NAME.match(n) for n in names.split()):
            continue
        if tag.get("role") in _NOISE_ROLES or (names.strip() and _NOISE_NAME.search(names)):
            chrome.append(tag)
            dropped.add(id(tag))
    for tag in chrome:
        tag.decompose()


def _direct_text_length(tag) -> int:
    """Non-link text of a block's own paragraphs and strings, not of nested blocks."""
    total = 0
    for child in tag.children:
        if child.name is None:
            total += len(re.sub(r"\s", "", str(child)))
        elif child.name in ("p", "span", "font", "strong", "b", "h1", "h2", "h3", "h4"):
            total += _own_text_length(child)
    return total


def _main_content(soup):
    """The article body: <article>, a known content id/class or <main>, else the block with the most own text.

    Of nested candidates, and then of nested blocks, the innermost that still holds 80 % of
    the text wins, so a page-wide <div class="content"> wrapper gives way to the article in it.
    """
    candidates = soup.find_all("article") + soup.find_all("main")
    candidates += [t for t in soup.find_all(True) if any(_CONTENT_NAME.match(n) for n in _element_names(t).split())]
    candidates = sorted((t for t in candidates if _own_text_length(t) > 0), key=_own_text_length, reverse=True)
    if candidates:
        best = candidates[0]
        for tag in candidates[1:]:
            if best in tag.parents and _own_text_length(tag) >= 0.8 * _own_text_length(best):
                best = tag
    else:
        best = max(soup.find_all(("div", "section", "td", "body")), key=_direct_text_length, default=None)
    # Descend while one child block holds nearly all the text: a wrapper gives way to the body.
    while best is not None:
        blocks = best.find_all(("div", "section", "article", "table", "tbody", "tr", "td"), recursive=False)
        inner = max(blocks, key=_own_text_length, default=None)
        if inner is None or _own_text_length(inner) < 0.8 * _own_text_length(best):
            return best
        best = inner
    return None


def _page_title(soup, main) -> str:
    """The report title when the content block lacks it: the CMS's title tag or ArticleTitle, an <h1>, else an
    <h2> outside the block (an <h2> is often the site's name), else <title> minus the site name."""
    for tag in soup.find_all(_TITLE_TAGS):
        if text := tag.get_text("", strip=True):
            return text
    meta = soup.find("meta", attrs={"name": "ArticleTitle"})
    if meta is not None and (meta.get("content") or "").strip():
        return meta["content"].strip()
    for level in ("h1", "h2"):
        for heading in soup.find_all(level):
            if not heading.find_parent(lambda t: t is main):
                text = heading.get_text("", strip=True)
                if text:
                    return text
    if soup.title and soup.title.string:
        return re.split(r"\s*[_|｜–—-]\s*", soup.title.string.strip())[0]
    return ""


def _html_cell_text(cell) -> str:
    """A cell's text: pieces of one word split across <span>s join without a separator (20</span><span>23)."""
    for br in cell.find_all("br"):
        br.replace_with(" ")
    text = re.sub(r"[\s\u3000\xa0]+", " ", cell.get_text("")).strip()
    return text.replace("|", "｜")


def html_table_lines(table) -> list[str]:
    """An HTML table as Markdown rows, rowspan/colspan expanded so every value sits under its column.

    A row-spanning label repeats on each row it spans (三、本年度办理结果 on every row of that block); a
    column-spanning heading names each column under it, a column-spanning value fills only its first column.
    A row of one cell across the whole table is a caption (第二十条第（一）项) and starts a new header.
    """
    grid: dict[tuple[int, int], tuple[str, bool]] = {}  # (row, col) -> (text, is the cell's first column)
    rows = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    spans: list[int] = []
    for r, tr in enumerate(rows):
        c = 0
        for cell in tr.find_all(("td", "th"), recursive=False):
            while (r, c) in grid:
                c += 1
            text = _html_cell_text(cell)
            rowspan = max(1, min(int(cell.get("rowspan") or 1), 1000)) if str(cell.get("rowspan") or 1).isdigit() else 1
            colspan = max(1, min(int(cell.get("colspan") or 1), 100)) if str(cell.get("colspan") or 1).isdigit() else 1
            for dr in range(rowspan):
                for dc in range(colspan):
                    grid.setdefault((r + dr, c + dc), (text, dc == 0))
            c += colspan
        spans.append(c)
    width = max((c for _, c in grid), default=-1) + 1
    lines: list[str] = []
    header: list[list[str]] = []
    in_header = True
    for r in range(len(rows)):
        cells = [grid.get((r, c), ("", True)) for c in range(width)]
        texts = [text for text, _ in cells]
        if not any(texts):
            continue
        if len({t for t in texts if t}) == 1 and all(texts) and width > 1:  # one cell across the table: a caption
            lines.append(texts[0])
            header, in_header = [], True
            continue
        numeric = any(re.fullmatch(r"[-+]?\d[\d,.]*%?", t) for t in texts)
        if in_header and not numeric:
            header.append(texts)
            continue
        if in_header:
            lines += _header_lines(header, width)
            in_header = False
        lines.append("| " + " | ".join(text if first else "" for text, first in cells) + " |")
    if in_header and header:  # a table of words only: its rows are rows, not a header
        lines += ["| " + " | ".join(row) + " |" for row in header]
    return lines


def _header_lines(header: list[list[str]], width: int) -> list[str]:
    if not header:
        return []
    columns = [" ".join(dict.fromkeys(row[c] for row in header if row[c])) for c in range(width)]
    shown = [name if c == 0 or name != columns[c - 1] else "" for c, name in enumerate(columns)]
    return ["| " + " | ".join(shown) + " |", "|" + "---|" * width]


def is_data_table(cells: list[list[str]]) -> bool:
    """A table of rows and columns, not one a page or document uses to lay out its text: two rows and two
    columns or more, and no cell holding a passage (over 200 characters)."""
    return len(cells) >= 2 and max(len(row) for row in cells) >= 2 and all(len(c) <= 200 for row in cells for c in row)


def _html_lines(main) -> list[str]:
    for table in main.find_all("table"):
        if table.find_parent("table") is None and not table.find("table") and is_data_table(
                [[_html_cell_text(c) for c in tr.find_all(("td", "th"))] for tr in table.find_all("tr")]):
            table.replace_with("\n" + "\n".join(html_table_lines(table)) + "\n")
    for br in main.find_all("br"):
        br.replace_with("\n")
    for tag in main.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = [re.sub(r"[ \t\u3000\xa0]+", " ", line).strip() for line in main.get_text().split("\n")]
    return [line for line in lines if line and not (len(line) < 80 and _PORTAL_META.match(line))]


def html_to_text(raw: bytes, name: str) -> ConvertedText:
    """The article of a portal page as parser text; navigation, header, footer and sidebars dropped,
    tables as Markdown rows."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")  # bytes: bs4 honours <meta charset>, so GBK pages decode too
    meta = html_metadata(soup)  # before the chrome goes: the 发布机构 cell sits in the page's header table
    _drop_chrome(soup)
    main = next((tag for tag in soup.find_all(_CONTENT_TAGS) if _own_text_length(tag) >= 20), None) \
        or _main_content(soup)
    if main is None or _own_text_length(main) < 20:
        raise _unreadable(name, "no article text in this HTML page (only navigation or boilerplate?); "
                                "save the page that holds the report itself",
                          "网页中没有找到正文（可能只有导航或页眉页脚），请保存报告正文所在的页面")
    title = _page_title(soup, main)
    lines = _html_lines(main)
    if title and (not lines or title not in lines[0]):
        lines.insert(0, title)
    return ConvertedText(_blocks_to_text(lines), meta=meta)


# --- DOCX ------------------------------------------------------------------------------

def _heading_level(paragraph) -> int | None:
    """0 for the Title style, n for "Heading n" (also localised 标题 n), None for body text."""
    style = paragraph.style.name if paragraph.style is not None else ""
    if style in ("Title", "标题"):
        return 0
    match = re.match(r"^(?:Heading|标题)\s*(\d)$", style)
    return int(match.group(1)) if match else None


def _check_unpacked_size(path: Path, name: str, limits: ParseLimits) -> None:
    """Refuse a zip whose members would unpack past the cap, before anything is unpacked."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip: python-docx says so below, with the fix
    if unpacked > limits.max_unpacked_bytes:
        raise over_limit(name, "unpacked size (bytes)", unpacked, limits.max_unpacked_bytes, "解压后的大小")


def _is_bold_heading(paragraph, text: str) -> bool:
    """A paragraph set in bold that reads as a heading: short, no sentence, not numbered
    (一、/（一） lines are left to the parser, which checks their numbering) and no table caption."""
    runs = [run for run in paragraph.runs if run.text.strip()]
    if not runs or not all(run.bold or (run.style is not None and run.style.font.bold) for run in runs):
        return False
    return (len(text) <= 40 and not re.search(r"[。；！？!?;]", text) and not TOP_HEADING.match(text)
            and not SUB_HEADING.match(text) and not re.match(r"^(?:附?表|图)\s*\d", text))


def _docx_cell_text(cell) -> str:
    text = re.sub(r"\s*\n\s*", " ", cell.text)
    return re.sub(r"[ \t\xa0\u3000]+", " ", text).strip().replace("|", "｜")


def docx_table_lines(table) -> list[str]:
    """A Word table as Markdown rows: a merged cell once per row, the first row as header when it holds no numbers."""
    rows: list[list[str]] = []
    for row in table.rows:
        cells, seen = [], []
        for cell in row.cells:
            if any(cell._tc is tc for tc in seen):  # a cell merged across columns repeats in row.cells
                continue
            seen.append(cell._tc)
            cells.append(_docx_cell_text(cell))
        if any(cells):
            rows.append(cells)
    if not is_data_table(rows):  # a table laying out text: its cells are paragraphs
        return [cell for row in rows for cell in row if cell]
    return markdown_rows(rows)


def markdown_rows(rows: list[list[str]], header_rows: int | None = None) -> list[str]:
    """Rows as ``| a | b |`` lines, the header (its first ``header_rows`` rows, collapsed into one) marked
    by a ``| --- |`` separator. Without ``header_rows``, the first row is the header when it has no numbers
    and a later row has some."""
    if not rows:
        return []
    numeric = [any(re.fullmatch(r"[-+]?\d[\d,.]*%?", cell) for cell in row[1:]) for row in rows]
    if header_rows is None:
        header_rows = 1 if not numeric[0] and any(numeric[1:]) else 0
    lines = []
    if header_rows:
        width = max(len(row) for row in rows[:header_rows])
        columns = []
        for col in range(width):
            names = [row[col] for row in rows[:header_rows] if col < len(row) and row[col]]
            columns.append(" ".join(dict.fromkeys(names)))
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(row) + " |" for row in rows[header_rows:]]
    return lines


def docx_to_text(path: Path, name: str, limits: ParseLimits = ParseLimits()) -> ConvertedText:
    """Paragraphs and tables in document order; heading styles (or, without any, bold headings) become
    Markdown headings, and tables Markdown rows."""
    import docx
    from docx.table import Table

    _check_unpacked_size(path, name, limits)
    try:
        document = docx.Document(str(path))
        items = list(document.iter_inner_content())
    except MemoryError:  # over the converter's memory cap (ingest.sandbox says so), not a damaged file
        raise
    except Exception as exc:  # noqa: BLE001 - a bad zip, missing part or broken XML each raise their own type
        raise _unreadable(name, f"not a readable Word .docx file ({type(exc).__name__}: {exc}); "
                                "open it in Word or WPS and save it again as .docx",
                          "无法读取该 Word 文件（文件损坏或不是 .docx），请用 Word 或 WPS 重新另存为 .docx") from None

    blocks: list[tuple[int | None, str]] = []
    bold: list[int] = []  # blocks set in bold, for documents without heading styles
    for item in items:
        if isinstance(item, Table):
            lines = docx_table_lines(item)
            if lines and lines[0].startswith("|"):
                blocks.append((None, "\n".join(lines)))
            else:
                blocks += [(None, line) for line in lines]
            continue
        text = re.sub(r"\s*\n\s*", "", item.text)  # soft line breaks inside one paragraph
        text = re.sub(r"[ \t\xa0\u3000]+", " ", text).strip()
        if text:
            if _is_bold_heading(item, text):
                bold.append(len(blocks))
            blocks.append((_heading_level(item), text))
    if bold and all(level is None for level, _ in blocks):  # Normal style throughout: bold lines are the headings
        for i in bold:
            blocks[i] = (1 if i == 0 else 2, blocks[i][1])

    # The title is the Title style, else a lone first Heading 1; the remaining heading
    # levels map to ## (top sections) and ### (subsections) in the order they nest.
    levels = [level for level, _ in blocks if level is not None]
    title_index = next((i for i, (lv, _) in enumerate(blocks) if lv == 0), None)
    if title_index is None and blocks and blocks[0][0] == 1 and levels.count(1) == 1:
        title_index = 0
    section_levels = sorted({lv for i, (lv, _) in enumerate(blocks) if lv and i != title_index})
    lines = []
    for i, (level, text) in enumerate(blocks):
        if i == title_index:
            lines.append(f"# {text}")
        elif level:
            lines.append("#" * min(2 + section_levels.index(level), 6) + f" {text}")
        else:
            lines.append(text)
    if not lines:
        raise _unreadable(name, "the Word document holds no text", "该 Word 文件中没有文字")
    return ConvertedText(_blocks_to_text(lines))


# --- PDF -------------------------------------------------------------------------------

@dataclass
class _Line:
    x: float  # left edge
    y: float  # baseline
    size: float  # font size in points
    text: str
    right: float = 0.0  # right edge, estimated from the last piece of text
    fragment: bool = False  # one or two characters: a piece of a table header cell set vertically
    confidence: float | None = None  # OCR's confidence for a line read from a scan; None: from the text layer

    @property
    def width(self) -> float:
        """Width in em: a Chinese character is one, Latin letters and digits about half."""
        return em_width(self.text)


_ENDS_SENTENCE = re.compile(r"[。！？；：.!?;:”」』）)]$")
_FRAGMENT_CHARS = 2  # a table header cell broken into one or two characters a line


def _page_lines(page) -> list[_Line]:
    """Text lines of one page, top to bottom, with their position and font size.

    A piece of text joins the line it sits on when its baseline is within half the
    larger of the two font sizes, so a raised footnote mark (生产总值[2]1329.65亿元)
    stays in its line.
    """
    lines: list[_Line] = []

    def visit(text, cm, tm, _font, size):
        if not text.strip("\n"):
            return
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        scale = abs(cm[3] * tm[3]) or 1.0
        height = (size or 10) * scale
        text = text.replace("\n", "")
        right = x + em_width(text.rstrip()) * height
        if lines and abs(lines[-1].y - y) < max(height, lines[-1].size) * 0.5:
            line = lines[-1]
            line.text += text
            line.x = min(line.x, x)
            line.right = max(line.right, right)
            if height > line.size:  # a raised mark is smaller than its line, and does not set its size or baseline
                line.size, line.y = height, y
        else:
            lines.append(_Line(x, y, height, text, right))

    page.extract_text(visitor_text=visit)
    lines = [_Line(ln.x, ln.y, ln.size, ln.text.strip(), ln.right) for ln in lines if ln.text.strip()]
    return _merge_fragments([ln for ln in lines if not PAGE_NUMBER.match(ln.text)])


def _merge_fragments(lines: list[_Line]) -> list[_Line]:
    """Runs of one- or two-character lines (a table header cell set vertically: 三 / 、/ 本 / 年 …) as one line."""
    merged: list[_Line] = []
    for line in lines:
        line.fragment = len(line.text.replace(" ", "")) <= _FRAGMENT_CHARS
        if line.fragment and merged and merged[-1].fragment and len(merged[-1].text) < 8 * _FRAGMENT_CHARS:
            merged[-1].text += line.text.replace(" ", "")
            merged[-1].x = min(merged[-1].x, line.x)
            continue
        merged.append(line)
    return merged


def _drop_running_headers(pages: list[list[_Line]]) -> list[list[_Line]]:
    """Without the first or last line of a page when the same text opens or closes three pages or more."""
    edges = Counter(text for lines in pages for text in {collapse_spacing(ln.text) for ln in lines[:1] + lines[-1:]})
    repeated = {text for text, n in edges.items() if n >= 3 and n >= 0.3 * len(pages)}
    if not repeated:
        return pages
    return [[ln for i, ln in enumerate(lines)
             if not (i in (0, len(lines) - 1) and collapse_spacing(ln.text) in repeated)] for lines in pages]


def _opens_section(line: _Line) -> bool:
    return bool(TOP_HEADING.match(line.text) or SUB_HEADING.match(line.text))


@dataclass(frozen=True)
class _Layout:
    """The body text's geometry: where its lines start and end, and the line pitch of each font size."""

    left: float
    right: float
    pitch: dict[float, float]

    @classmethod
    def of(cls, pages: list[list[_Line]]) -> "_Layout":
        all_lines = [ln for lines in pages for ln in lines]
        by_size = Counter()
        for ln in all_lines:
            by_size[round(ln.size)] += len(ln.text)
        body_size = by_size.most_common(1)[0][0]
        body = [ln for ln in all_lines if round(ln.size) == body_size] or all_lines
        left = Counter(round(ln.x) for ln in body).most_common(1)[0][0]
        rights = sorted(ln.right for ln in body)
        right = rights[int(0.9 * (len(rights) - 1))]
        gaps: dict[float, list[float]] = {}
        for lines in pages:
            for a, b in itertools.pairwise(lines):
                if round(a.size) == round(b.size) and a.y - b.y > 0:
                    gaps.setdefault(round(b.size), []).append(a.y - b.y)
        pitch = {size: statistics.median(values) for size, values in gaps.items()}
        return cls(float(left), right, pitch)

    def starts_paragraph(self, prev: _Line, line: _Line, same_page: bool) -> bool:
        """Whether ``line`` opens a new paragraph rather than continuing ``prev``.

        A paragraph ends at a short line, at extra space before the next line, where the
        font size changes (a table set smaller, a heading larger), at a table row, or where the next line is
        indented (the two-character first-line indent of Chinese documents) or opens a
        numbered section after a finished sentence.
        """
        if abs(prev.size - line.size) > 1 or is_flat_row(prev.text) or is_flat_row(line.text):
            return True  # a table set in another size, or a table row (a label and numbers): never run on
        full = max(self.right - self.left, 1.0)
        if prev.right < self.right - max(3 * prev.size, 0.15 * full):
            return True
        pitch = self.pitch.get(round(line.size))
        if same_page and pitch and prev.y - line.y > 1.35 * pitch:
            return True
        if line.x > self.left + 0.8 * line.size:
            return True
        return bool(_ENDS_SENTENCE.search(prev.text) and _opens_section(line))


def _has_image(page) -> bool:
    """Whether a page holds an image (directly or in a form), so a page without text is a scan worth OCR."""

    def images_in(resources, depth: int) -> bool:
        if resources is None or depth > 3:
            return False
        xobjects = resources.get_object().get("/XObject")
        for ref in (xobjects.get_object().values() if xobjects is not None else ()):
            xobject = ref.get_object()
            if xobject.get("/Subtype") == "/Image":
                return True
            if xobject.get("/Subtype") == "/Form" and images_in(xobject.get("/Resources"), depth + 1):
                return True
        return False

    try:
        return images_in(page.get("/Resources"), 0)
    except Exception:  # noqa: BLE001 - a damaged resource dictionary: read the page rather than lose it
        return True


def _ocr_lines(page: OcrPage) -> list[_Line]:
    """A page read by OCR as the layout reads a text layer: baselines in PDF points (y up), and one size
    for body lines. Their boxes differ by a few points (a line opening with “ is up to 1.4 times as
    tall), which would otherwise end a paragraph at every line; a line over 1.5 times the body's
    height keeps its own."""
    heights = [ln.y1 - ln.y0 for ln in page.lines]
    body = statistics.median(heights) if heights else 0.0
    lines = []
    for ln in page.lines:
        if PAGE_NUMBER.match(ln.text):
            continue
        height = ln.y1 - ln.y0
        size = body if 0.6 * body <= height <= 1.5 * body else height
        lines.append(_Line(ln.x0, page.height - ln.y1, size, ln.text, ln.x1, confidence=ln.confidence))
    return lines


def _read_scans(path: Path, name: str, reader, pages: list[list[_Line]], limits: ParseLimits,
                progress) -> int:
    """OCR the pages that have no text but an image, in place; returns how many were read."""
    scanned = [number for number, (lines, page) in enumerate(zip(pages, reader.pages), start=1)
               if not lines and _has_image(page)]
    if not scanned or not limits.ocr.enabled:
        return 0
    if len(scanned) > limits.ocr.max_pages:
        raise over_limit(name, "pages to read by OCR", len(scanned), limits.ocr.max_pages, "需要文字识别的页数")
    for page in read_pages(path, scanned, limits.ocr, progress):
        pages[page.number - 1] = _ocr_lines(page)
    return len(scanned)


def pdf_to_text(path: Path, name: str, limits: ParseLimits = ParseLimits(),
                progress=lambda event: None) -> ConvertedText:
    """The text layer of a PDF, wrapped lines joined back into paragraphs, with a page map.

    Pages without text that hold an image (scans) are read by OCR (``ingest.ocr``), when
    ``limits.ocr`` allows; ``ConvertedText.ocr`` then says which lines were read so and how
    confidently, and ``progress(("ocr", done, total))`` follows the pages.
    The PDF's /Title goes into ``meta["title_hint"]``: the loader uses it when the text has no title line.
    """
    import pypdf

    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _unreadable(name, "the PDF is password-protected; remove the password and ingest again",
                              "PDF 文件有密码保护，请去除密码后重新导入")
        if len(reader.pages) > limits.max_pages:
            raise over_limit(name, "page count", len(reader.pages), limits.max_pages, "页数")
        pages = [_page_lines(page) for page in reader.pages]
        title_hint = _pdf_title(reader)
    except (ReportFileError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on a damaged file
        raise _unreadable(name, f"not a readable PDF ({type(exc).__name__}: {exc}); "
                                "download it again or re-export it as PDF",
                          "无法读取该 PDF 文件（文件损坏），请重新下载或重新导出") from None
    read_by_ocr = _read_scans(path, name, reader, pages, limits, progress)
    if not any(pages) and read_by_ocr:
        raise _unreadable(name, f"no text found in its {len(reader.pages)} page(s), not even by OCR "
                                "(blank, or too faint to read)", "PDF 中没有可识别的文字（扫描件也未识别出文字）")
    if not any(pages):
        how = ("OCR is switched off (REPORTQA_OCR=false); switch it on, or OCR it first"
               if not limits.ocr.enabled else "and no page holds an image to read by OCR")
        raise _unreadable(name, f"no text layer in {len(reader.pages)} page(s) (scanned?); {how}",
                          "PDF 没有文字层（可能是扫描件），且未能做文字识别（OCR）")

    pages = _drop_running_headers(pages)
    layout = _Layout.of(pages)
    paragraphs: list[list[tuple[int, _Line]]] = []  # each paragraph: its lines, each with its page
    prev: _Line | None = None
    for number, lines in enumerate(pages, start=1):
        for i, line in enumerate(lines):
            if prev is None or layout.starts_paragraph(prev, line, same_page=i > 0):
                paragraphs.append([])
            paragraphs[-1].append((number, line))
            prev = line

    # A page-map entry wherever a page's first text lands, even inside a paragraph that
    # runs on from the previous page, so a chunk there knows its own page.
    text, page_map, ocr = "", [], []
    for paragraph in paragraphs:
        body = ""
        for number, line in paragraph:
            piece = line.text
            joined = join_wrapped(body, piece) if body else piece
            at = len(text) + len(joined) - len(piece)
            if not page_map or page_map[-1][1] != number:
                page_map.append((at, number))
            if line.confidence is not None:
                ocr.append((at, at + len(piece), line.confidence))
            body = joined
        text += body + "\n\n"
    return ConvertedText(text, page_map, {"title_hint": title_hint} if title_hint else {}, ocr)


def _pdf_title(reader) -> str:
    """The PDF's /Title when it reads as Chinese words (not "Microsoft Word - 文档1.docx")."""
    try:
        title = (reader.metadata.title or "").strip() if reader.metadata else ""
    except Exception:  # noqa: BLE001 - a damaged info dictionary only costs the hint
        return ""
    if not title or re.search(r"[A-Za-z]|\.(?:docx?|wps|pdf)$", title):
        return ""
    return title if re.search(r"[\u4e00-\u9fff]{2}", title) else ""


CONVERTERS = {".html": "html", ".htm": "html", ".docx": "docx", ".pdf": "pdf"}


def convert_report(path: Path, name: str | None = None, limits: ParseLimits = ParseLimits(),
                   progress=lambda event: None) -> ConvertedText:
    """Parser-ready text of an .html, .htm, .docx or .pdf report; ReportFileError when unreadable.

    Runs in this process; ``ingest.sandbox.ConverterProcess`` runs it in a child with a time and memory cap.
    ``progress`` hears of OCR pages of a scanned PDF (``pdf_to_text``).
    """
    name = name or path.name
    kind = CONVERTERS[path.suffix.lower()]
    if kind == "html":
        return html_to_text(path.read_bytes(), name)
    if kind == "docx":
        return docx_to_text(path, name, limits)
    return pdf_to_text(path, name, limits, progress)
