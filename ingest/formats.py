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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ReportFileError

from .metadata import html_metadata
from .structure import SUB_HEADING, TOP_HEADING


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


def page_of(pages: Sequence[tuple[int, int]], offset: int) -> int | None:
    """The page that holds ``offset`` of the converted text, or None when the format has no pages."""
    i = bisect.bisect_right([start for start, _ in pages], offset) - 1
    return pages[i][1] if i >= 0 else (pages[0][1] if pages else None)


def _unreadable(name: str, reason: str, reason_zh: str) -> ReportFileError:
    return ReportFileError(f"{name}: {reason}", f"{name}：{reason_zh}")


def _join_wrapped(left: str, right: str) -> str:
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
    for tag in soup.find_all(True):
        if tag.decomposed or tag.name in ("html", "body") or tag.find("article"):
            continue
        names = _element_names(tag)
        if any(_CONTENT_NAME.match(n) for n in names.split()):
            continue
        if tag.get("role") in _NOISE_ROLES or (names.strip() and _NOISE_NAME.search(names)):
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
    """The report title when the content block lacks it: a heading outside it, else <title> minus the site name."""
    for heading in soup.find_all(("h1", "h2")):
        if not heading.find_parent(lambda t: t is main):
            text = heading.get_text(" ", strip=True)
            if text:
                return text
    if soup.title and soup.title.string:
        return re.split(r"\s*[_|｜–—-]\s*", soup.title.string.strip())[0]
    return ""


def _html_lines(main) -> list[str]:
    for br in main.find_all("br"):
        br.replace_with("\n")
    for tag in main.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    for cell in main.find_all(("td", "th")):
        cell.insert_after(" ")
    lines = [re.sub(r"[ \t\u3000\xa0]+", " ", line).strip() for line in main.get_text().split("\n")]
    return [line for line in lines if line and not (len(line) < 80 and _PORTAL_META.match(line))]


def html_to_text(raw: bytes, name: str) -> ConvertedText:
    """The article of a portal page as parser text; navigation, header, footer and sidebars dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")  # bytes: bs4 honours <meta charset>, so GBK pages decode too
    _drop_chrome(soup)
    main = _main_content(soup)
    if main is None or _own_text_length(main) < 20:
        raise _unreadable(name, "no article text in this HTML page (only navigation or boilerplate?); "
                                "save the page that holds the report itself",
                          "网页中没有找到正文（可能只有导航或页眉页脚），请保存报告正文所在的页面")
    title = _page_title(soup, main)
    lines = _html_lines(main)
    if title and (not lines or title not in lines[0]):
        lines.insert(0, title)
    return ConvertedText(_blocks_to_text(lines), meta=html_metadata(soup))


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


def docx_to_text(path: Path, name: str, limits: ParseLimits = ParseLimits()) -> ConvertedText:
    """Paragraphs and tables in document order; heading styles become Markdown headings."""
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
    for item in items:
        if isinstance(item, Table):
            for row in item.rows:
                cells = list(dict.fromkeys(c.text.strip() for c in row.cells if c.text.strip()))  # merged cells repeat
                if cells:
                    blocks.append((None, " | ".join(cells)))
            continue
        text = re.sub(r"\s*\n\s*", "", item.text).strip()  # soft line breaks inside one paragraph
        if text:
            blocks.append((_heading_level(item), text))

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
    x: float
    y: float
    size: float
    text: str

    @property
    def width(self) -> float:
        """Width in em: a Chinese character is one, Latin letters and digits about half."""
        return sum(1.0 if ord(ch) > 0x2E7F else 0.5 for ch in self.text)


_PAGE_NUMBER = re.compile(r"^(?:[-—–]\s*\d+\s*[-—–]|第\s*\d+\s*页(?:\s*[,，/]?\s*共\s*\d+\s*页)?|\d+(?:\s*/\s*\d+)?|"
                          r"Page \d+(?: of \d+)?)$", re.IGNORECASE)
_ENDS_SENTENCE = re.compile(r"[。！？；：.!?;:”」』）)]$")


def _page_lines(page) -> list[_Line]:
    """Text lines of one page, top to bottom, with their position and font size."""
    lines: list[_Line] = []

    def visit(text, cm, tm, _font, size):
        if not text.strip("\n"):
            return
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        scale = abs(cm[3] * tm[3]) or 1.0
        height = (size or 10) * scale
        text = text.replace("\n", "")
        if lines and abs(lines[-1].y - y) < height * 0.5:
            lines[-1].text += text
            lines[-1].x = min(lines[-1].x, x)
        else:
            lines.append(_Line(x, y, height, text))

    page.extract_text(visitor_text=visit)
    lines = [_Line(ln.x, ln.y, ln.size, ln.text.strip()) for ln in lines if ln.text.strip()]
    return [ln for ln in lines if not _PAGE_NUMBER.match(ln.text)]


def _opens_section(line: _Line) -> bool:
    return bool(TOP_HEADING.match(line.text) or SUB_HEADING.match(line.text))


def _starts_paragraph(prev: _Line, line: _Line, pitch: float, full_width: float, left: float,
                      same_page: bool) -> bool:
    """Whether ``line`` opens a new paragraph rather than continuing ``prev``.

    A paragraph ends at a short line, at extra space before the next line, or where the
    next line is indented (the two-character first-line indent of Chinese documents) or
    opens a numbered section after a finished sentence.
    """
    if prev.width < 0.8 * full_width:
        return True
    if same_page and pitch and prev.y - line.y > 1.35 * pitch:
        return True
    if line.x > left + 0.8 * line.size:
        return True
    return bool(_ENDS_SENTENCE.search(prev.text) and _opens_section(line))


def pdf_to_text(path: Path, name: str, limits: ParseLimits = ParseLimits()) -> ConvertedText:
    """The text layer of a PDF, wrapped lines joined back into paragraphs, with a page map."""
    import pypdf

    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _unreadable(name, "the PDF is password-protected; remove the password and ingest again",
                              "PDF 文件有密码保护，请去除密码后重新导入")
        if len(reader.pages) > limits.max_pages:
            raise over_limit(name, "page count", len(reader.pages), limits.max_pages, "页数")
        pages = [_page_lines(page) for page in reader.pages]
    except (ReportFileError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on a damaged file
        raise _unreadable(name, f"not a readable PDF ({type(exc).__name__}: {exc}); "
                                "download it again or re-export it as PDF",
                          "无法读取该 PDF 文件（文件损坏），请重新下载或重新导出") from None
    if not any(pages):
        raise _unreadable(name, f"no text layer in {len(reader.pages)} page(s) (scanned?); OCR it first, "
                                "e.g. `ocrmypdf --language chi_sim in.pdf out.pdf`",
                          "PDF 没有文字层（可能是扫描件），请先做文字识别（OCR）后再导入")

    all_lines = [ln for lines in pages for ln in lines]
    full_width = statistics.quantiles([ln.width for ln in all_lines], n=10)[-1] if len(all_lines) > 1 \
        else all_lines[0].width
    left = min(ln.x for ln in all_lines)
    paragraphs: list[list[tuple[int, str]]] = []  # each paragraph: its lines, each with its page
    prev: _Line | None = None
    for number, lines in enumerate(pages, start=1):
        gaps = [a.y - b.y for a, b in itertools.pairwise(lines) if a.y - b.y > 0]
        pitch = statistics.quantiles(gaps, n=4)[0] if len(gaps) > 1 else (gaps[0] if gaps else 0.0)
        for i, line in enumerate(lines):
            if prev is None or _starts_paragraph(prev, line, pitch, full_width, left, same_page=i > 0):
                paragraphs.append([])
            paragraphs[-1].append((number, line.text))
            prev = line

    # A page-map entry wherever a page's first text lands, even inside a paragraph that
    # runs on from the previous page, so a chunk there knows its own page.
    text, page_map = "", []
    for paragraph in paragraphs:
        body = ""
        for number, piece in paragraph:
            joined = _join_wrapped(body, piece) if body else piece
            if not page_map or page_map[-1][1] != number:
                page_map.append((len(text) + len(joined) - len(piece), number))
            body = joined
        text += body + "\n\n"
    return ConvertedText(text, page_map)


CONVERTERS = {".html": "html", ".htm": "html", ".docx": "docx", ".pdf": "pdf"}


def convert_report(path: Path, name: str | None = None, limits: ParseLimits = ParseLimits()) -> ConvertedText:
    """Parser-ready text of an .html, .htm, .docx or .pdf report; ReportFileError when unreadable.

    Runs in this process; ``ingest.sandbox.ConverterProcess`` runs it in a child with a time and memory cap.
    """
    name = name or path.name
    kind = CONVERTERS[path.suffix.lower()]
    if kind == "html":
        return html_to_text(path.read_bytes(), name)
    if kind == "docx":
        return docx_to_text(path, name, limits)
    return pdf_to_text(path, name, limits)
