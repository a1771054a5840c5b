"""Table rows in parser text, and the caption and column headers a row is read with.

A row alone (``罚款 | 0``, ``规章 0 0 0``) answers nothing: which table, which
column? Three shapes reach the parser: ``a | b`` rows (Markdown, and the .docx
and .html converters), and rows a PDF's text layer flattened to a label and
space-separated numbers (``其中：城镇 392.66 45.31``). Each row keeps its own
text (offsets) and gets a context (caption + header row) that the embedder and
BM25 read with it (``Chunk.context``).

The yearly 政府信息公开 report follows a national template (国办公开办函〔2021〕30号)
whose application and review tables have fixed columns; a PDF scrambles their
headers into one character a line and an OCR'd Markdown file calls them
数据1…数据6, so rows of those tables take the template's column names.
"""
from __future__ import annotations

import re

PIPE_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")
_VALUE = r"(?:[-+]?\d[\d,]*(?:\.\d+)?\s?[%‰]?|-|—)"
FLAT_ROW = re.compile(rf"^(?P<label>[^。，；！？|\s][^。，；！？|]{{0,40}}?)(?P<values>(?:\s+{_VALUE})+)$")
_VALUES_ONLY = re.compile(rf"^{_VALUE}(?:\s+{_VALUE})+$")
CAPTION = re.compile(r"^(?:表|附表)\s*\d+")
_GENERIC_COLUMN = re.compile(r"^(?:数据|列|column\s*)\d+$", re.IGNORECASE)

_RESULTS = ("结果维持", "结果纠正", "其他结果", "尚未审结", "总计")
APPLICANT_COLUMNS = ("自然人", "法人或其他组织·商业企业", "法人或其他组织·科研机构", "法人或其他组织·社会公益组织",
                     "法人或其他组织·法律服务机构", "法人或其他组织·其他", "总计")
REVIEW_COLUMNS = tuple([f"行政复议·{r}" for r in _RESULTS] + [f"行政诉讼（未经复议直接起诉）·{r}" for r in _RESULTS]
                       + [f"行政诉讼（复议后起诉）·{r}" for r in _RESULTS])


def is_pipe_row(line: str) -> bool:
    """``| a | b |`` (Markdown) or ``a | b`` (a converted .docx/.html table row)."""
    return "|" in line and (line.startswith("|") or " | " in line) and not PIPE_SEPARATOR.match(line)


def is_flat_row(line: str) -> bool:
    """A PDF table row flattened to text: a short label, then numbers (``规章 0 0 0``, ``#城镇 1654272 33.8``)."""
    if _VALUES_ONLY.match(line):
        return True
    match = FLAT_ROW.match(line)
    if not match:
        return False
    label = match.group("label")
    # The label names something (16-59 岁（含不满 60 周岁）), and is no sentence broken off at a number:
    # not 2024 年 5 月 7, not …联系（地址：淮安市洪泽湖大道 90 with its bracket still open.
    opened = label.count("（") + label.count("(") - label.count("）") - label.count(")")
    return bool(re.search(r"[\u4e00-\u9fff]", label)) and not label.endswith("年") and opened <= 0


def pipe_cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def value_count(line: str) -> int:
    """How many numeric cells a row holds (its label aside)."""
    if is_pipe_row(line):
        return sum(1 for cell in pipe_cells(line)[1:] if re.fullmatch(_VALUE, cell))
    if _VALUES_ONLY.match(line):
        return len(re.findall(_VALUE, line))
    match = FLAT_ROW.match(line)
    return len(re.findall(_VALUE, match.group("values"))) if match else 0


def template_columns(values: int, section: str) -> tuple[str, ...] | None:
    """The 政府信息公开 template's columns for a row of ``values`` numbers in ``section``, if it is one of them."""
    if values == len(APPLICANT_COLUMNS) and "申请" in section:
        return APPLICANT_COLUMNS
    if values == len(REVIEW_COLUMNS) and "复议" in section:
        return REVIEW_COLUMNS
    return None


def header_text(header: str) -> str:
    """A header row as context; generic names (数据1…数据6, 总计) become the template's application columns."""
    if not is_pipe_row(header):
        return header
    cells = pipe_cells(header)
    generic = [i for i, cell in enumerate(cells) if _GENERIC_COLUMN.match(cell)]
    if len(generic) == len(APPLICANT_COLUMNS) - 1 and cells[generic[-1] + 1:generic[-1] + 2] == ["总计"]:
        for i, name in zip(generic, APPLICANT_COLUMNS):
            cells[i] = name
    return " | ".join(cells).strip()
