"""Who issued a report, for which year, and where it was published.

Taken, field by field, from the first source that has it: a sidecar
``<file>.meta.json`` (staff's word), the file's own metadata (a portal page's
<meta name="ContentSource"> or 发布机构 cell, <link rel="canonical">), then the
title itself, then the report's front matter and text:

- year: the year the report is about, as its title says (大连市2023年法治政府建设
  情况报告 → 2023; 政府工作报告——2024年3月5日… → 2024, the year it plans;
  国务院关于 2024 年度… → 2024); without one in the title, the year the text
  reviews plus one (一、2021年工作回顾 → 2022) or plans (2022年政府工作任务), or
  the year the first paragraph opens with (2023年，…) for a bulletin; last, a year
  in the file name.
- issuer: XX市人民政府关于… → XX市人民政府; 洪泽区人民政府2023年… → 洪泽区人民政府;
  静海区2023年… → 静海区; a 政府工作报告 → 云南省人民政府, or 国务院 when it names no
  place; a 统计公报 → the bureau its front matter names (洛阳市统计局), else the
  place's 统计局.
"""
from __future__ import annotations

import re

from core.places import KNOWN_PLACES
from core.text import YEAR_OF

from .layout import collapse_spacing

META_FIELDS = ("issuer", "year", "url")
_ISSUER_BEFORE_GUANYU = re.compile(r"^(\S{2,30}?)关于")
_PLACE_UNIT = r"[^\d\s、，,（）()]{1,10}?(?:自治区|自治州|省|市|区|县|州|旗|盟)"
_LEADING_PLACE = re.compile(rf"^((?:{_PLACE_UNIT})+)")
_ORGAN = re.compile(r"^(人民政府办公室|人民政府|政府办公室|[^\d\s年]{1,12}?(?:局|委员会|办公室|厅|署|中心))")
_LEADING_YEAR = re.compile(r"^(?:19|20)\d{2}年度?")
_BUREAU = re.compile(r"\S{2,20}?统计局")
_WORK_REPORT = "政府工作报告"
_BULLETIN = "统计公报"


def title_metadata(title: str, front_matter: tuple[str, ...] = ()) -> dict:
    """Year and issuing body as the title (and the lines around it) state them; {} for what they do not."""
    title = collapse_spacing(title)
    found: dict = {}
    if match := YEAR_OF.search(title):
        found["year"] = int(match.group(1))
    if issuer := _issuer(title, front_matter):
        found["issuer"] = issuer
    return found


def _issuer(title: str, front_matter: tuple[str, ...]) -> str | None:
    if match := _ISSUER_BEFORE_GUANYU.match(title):
        return match.group(1)
    rest = _LEADING_YEAR.sub("", title)
    place_match = _LEADING_PLACE.match(rest)
    place = place_match.group(1) if place_match else ""
    after = rest[len(place):]
    if place:
        organ = _ORGAN.match(after)
        if organ and _LEADING_YEAR.match(after[organ.end():]):
            return place + organ.group(1)  # 洪泽区人民政府2023年…, 沭阳县发展和改革局2023年…
    if _WORK_REPORT in title:
        return f"{place}人民政府" if place else "国务院"
    if _BULLETIN in title:
        for line in front_matter:
            if match := _BUREAU.match(collapse_spacing(line)):
                return match.group()
        return f"{place}统计局" if place else None
    if place and (_LEADING_YEAR.match(after) or _is_place(place)):
        return place  # 静海区2023年…; 大连市法治政府建设年度报告
    return None


def _is_place(name: str) -> bool:
    """大连市, 沈阳市和平区: the first unit is a known province or city (not 关于加强…区)."""
    first = re.match(r"^(.+?)(?:自治区|自治州|省|市|区|县|州|旗|盟)", name)
    return bool(first) and first.group(1) in KNOWN_PLACES


def text_year(headings: list[tuple[str, ...]], first_paragraph: str, source_name: str) -> int | None:
    """The report's year when its title names none: from what it reviews or plans, else the file name."""
    for path in headings:
        heading = collapse_spacing(path[-1])
        if match := re.search(r"((?:19|20)\d{2})年工作回顾", heading):
            return int(match.group(1)) + 1  # a work report reviews last year and plans this one
        if match := re.search(r"((?:19|20)\d{2})年.{0,12}(?:任务|工作安排|总体要求|工作打算)", heading):
            return int(match.group(1))
    if match := re.match(r"^((?:19|20)\d{2})年[，,]", collapse_spacing(first_paragraph)):
        return int(match.group(1))  # a bulletin opens with the year it covers: 2023年，…
    if match := re.search(r"(?<!\d)((?:19|20)\d{2})(?!\d)", source_name):
        return int(match.group(1))
    return None


def infer_title(text: str, front_matter: tuple[str, ...], year: int | None, place_hint: str = "") -> str:
    """A title for a report whose text has none: place, year and kind (政府工作报告, 统计公报), best effort.

    ``place_hint``: a name the file's own metadata gives (a PDF's /Title, 黔东南苗族侗族自治州).
    """
    bureau = next((m.group() for line in front_matter if (m := _BUREAU.match(collapse_spacing(line)))), "")
    place = place_hint or (bureau[:-3] if bureau else "")
    year_text = f"{year}年" if year else ""
    if "向大会报告政府工作" in text or "向大会报告工作" in text:
        return f"{place}{year_text}{_WORK_REPORT}"
    if bureau or "本公报" in text:
        return f"{place}{year_text}国民经济和社会发展{_BULLETIN}"
    return ""


def html_metadata(soup) -> dict:
    """Issuer and URL from the <meta> tags and the 发布机构 cell Chinese government portals write."""
    found: dict = {}
    contents: dict[str, str] = {}
    for tag in soup.find_all("meta"):  # one pass: a portal page holds thousands of tags
        key = tag.get("name") or tag.get("property")
        if key and key not in contents and (tag.get("content") or "").strip():
            contents[key] = tag["content"].strip()

    def meta(*names: str) -> str:
        return next((contents[name] for name in names if name in contents), "")

    if issuer := meta("ContentSource", "contentsource", "source") or _labelled_cell(soup, ("发布机构", "发文机关")):
        found["issuer"] = issuer
    canonical = soup.find("link", rel="canonical")
    if url := (canonical.get("href", "").strip() if canonical else "") or meta("og:url", "Url", "url"):
        if url.startswith(("http://", "https://")):
            found["url"] = url
    return found


def _labelled_cell(soup, labels: tuple[str, ...]) -> str:
    """The value next to a label cell of a portal's metadata table (发布机构 | 沭阳县发展和改革局)."""
    for cell in soup.find_all(("td", "th")):
        if cell.get_text(strip=True).rstrip("：:") in labels:
            value = cell.find_next_sibling(("td", "th"))
            if value is not None and (text := value.get_text(" ", strip=True)):
                return text
    return ""


def merge(*sources: dict) -> dict:
    """Each field from the first source that has it."""
    merged: dict = {}
    for source in sources:
        for key in META_FIELDS:
            if key not in merged and source.get(key) not in (None, ""):
                merged[key] = source[key]
    return merged
