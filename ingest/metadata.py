"""Who issued a report, for which year, and where it was published.

Taken, field by field, from the first source that has it: a sidecar
``<file>.meta.json`` (staff's word), the file's own metadata (a portal page's
<meta name="ContentSource">, <link rel="canonical">), then the title itself
(大连市2023年法治政府建设情况报告 → year 2023, body 大连市;
XX市人民政府关于2023年…的报告 → body XX市人民政府).
"""
from __future__ import annotations

import re

from core.places import KNOWN_PLACES
from core.text import YEAR_OF

META_FIELDS = ("issuer", "year", "url")
_ISSUER_BEFORE_GUANYU = re.compile(r"^(\S{2,30}?)关于")
_LEADING_PLACE = re.compile(r"^((?:[^\d\s]{1,8}?(?:自治区|省|市|区|县|州))+)")


def title_metadata(title: str) -> dict:
    """Year and issuing body as the title states them; {} for what it does not."""
    found: dict = {}
    if match := YEAR_OF.search(title):
        found["year"] = int(match.group(1))
    if match := _ISSUER_BEFORE_GUANYU.match(title):
        found["issuer"] = match.group(1)
    elif (match := _LEADING_PLACE.match(title)) and _is_place(match.group(1)):
        found["issuer"] = match.group(1)
    return found


def _is_place(name: str) -> bool:
    """大连市, 沈阳市和平区: the first unit is a known province or city (not 关于加强…区)."""
    first = re.match(r"^(.+?)(?:自治区|省|市|区|县|州)", name).group(1)
    return first in KNOWN_PLACES


def html_metadata(soup) -> dict:
    """Issuer and URL from the <meta> tags Chinese government portals write."""
    found: dict = {}

    def meta(*names: str) -> str:
        for name in names:
            tag = soup.find("meta", attrs={"name": name}) or soup.find("meta", attrs={"property": name})
            if tag and (tag.get("content") or "").strip():
                return tag["content"].strip()
        return ""

    if issuer := meta("ContentSource", "contentsource", "source"):
        found["issuer"] = issuer
    canonical = soup.find("link", rel="canonical")
    if url := (canonical.get("href", "").strip() if canonical else "") or meta("og:url", "Url", "url"):
        if url.startswith(("http://", "https://")):
            found["url"] = url
    return found


def merge(*sources: dict) -> dict:
    """Each field from the first source that has it."""
    merged: dict = {}
    for source in sources:
        for key in META_FIELDS:
            if key not in merged and source.get(key) not in (None, ""):
                merged[key] = source[key]
    return merged
