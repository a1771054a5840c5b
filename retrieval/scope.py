"""Narrowing a search to some reports: by file, issuing body or year."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """Which reports a question is asked of; empty fields do not narrow.

    Within a field any value matches (OR); across fields all must match (AND):
    ``Scope(issuers=("大连市人民政府",), years=(2023, 2024))``.
    """

    sources: tuple[str, ...] = ()
    issuers: tuple[str, ...] = ()
    years: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.sources or self.issuers or self.years)

    def milvus_expr(self) -> str:
        """The same condition as a Milvus boolean expression over source/issuer/year fields."""
        parts = []
        for field, values in (("source", self.sources), ("issuer", self.issuers), ("year", self.years)):
            if values:
                parts.append(f"{field} in {json.dumps(list(values), ensure_ascii=False)}")
        return " and ".join(parts)


def report_title(report: dict) -> str:
    """A manifest source row's title, or its file name when the report has none."""
    return report.get("title") or report["source"]


def scope_choices(reports: list[dict]) -> list[tuple[str, str]]:
    """(label, value) pairs for a chooser: all reports, then each year, issuing body and report.

    ``reports`` are manifest source rows (source, title, issuer, year); a
    value is "", "year:2023", "issuer:大连市" or "source:<file>" (see ``parse_scope``).
    """
    years = sorted({r["year"] for r in reports if r.get("year")}, reverse=True)
    issuers = sorted({r["issuer"] for r in reports if r.get("issuer")})
    choices = [("全部报告", "")]
    choices += [(f"{y}年的报告", f"year:{y}") for y in years] if len(years) > 1 else []
    choices += [(f"{i}的报告", f"issuer:{i}") for i in issuers] if len(issuers) > 1 else []
    choices += [(f"《{report_title(r)}》", f"source:{r['source']}") for r in reports]
    return choices


def parse_scope(value: str | None) -> Scope | None:
    """The Scope a chooser value stands for; None for all reports or a value it does not know."""
    kind, _, rest = (value or "").partition(":")
    if not rest:
        return None
    if kind == "year" and rest.isdigit():
        return Scope(years=(int(rest),))
    if kind == "issuer":
        return Scope(issuers=(rest,))
    if kind == "source":
        return Scope(sources=(rest,))
    return None


_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")


SCOPE_FIELDS = (("sources", "source"), ("issuers", "issuer"), ("years", "year"))


class ReportCatalogue:
    """The indexed reports' metadata, for reading a scope off a question."""

    def __init__(self, reports: tuple[dict, ...]):
        self.reports = reports  # manifest source rows: source, title, issuer, year
        self._scopes: dict[tuple[frozenset, frozenset], Scope | None] = {}  # questions repeat their places

    def unknown(self, scope: Scope) -> list[tuple[str, list, list]]:
        """(row field, values of ``scope`` no report has, the values reports do have) for each field
        of ``scope`` that names something not indexed; empty when every value is known."""
        problems = []
        for attribute, field in SCOPE_FIELDS:
            have = {r.get(field) for r in self.reports} - {None}
            if missing := [v for v in getattr(scope, attribute) if v not in have]:
                problems.append((field, missing, sorted(have, key=str)))
        return problems

    def infer(self, question: str) -> Scope | None:
        """The reports a question names by place and year (沈阳2022年…), when some but not all match.

        Among many cities' near-identical reports, the top passages of
        大连2023年建成了多少个便民服务站？ would otherwise be other cities' (and
        refused for naming another place). A named place matches a report whose
        issuer or title holds it, a named year the report's year. Nothing is
        narrowed when nothing or everything matches: the answerer then refuses
        a place or year no passage names, as with one report.
        """
        years, places = self._named(question)
        if not (years or places):
            return None
        key = (frozenset(years), frozenset(places))
        if key not in self._scopes:
            matching = [r for r in self.reports
                        if (not years or r.get("year") in years)
                        and (not places or any(p in f"{r.get('issuer') or ''} {r.get('title') or ''}" for p in places))]
            narrows = matching and len(matching) < len(self.reports)
            self._scopes[key] = Scope(sources=tuple(r["source"] for r in matching)) if narrows else None
        return self._scopes[key]

    def infer_in_conversation(self, question: str, earlier: list[str]) -> Scope | None:
        """``infer`` on the question, or, when it names no place or year, on the latest earlier question that does.

        After 鞍山建成了多少个便民服务站？, 有多少人获得行政执法资格？ is about 鞍山 too.
        """
        for text in [question, *reversed(earlier)]:
            if any(self._named(text)):
                return self.infer(text)
        return None

    def _named(self, text: str) -> tuple[set[int], set[str]]:
        """Years and places a text names; nothing with one report (there is nothing to choose)."""
        if len(self.reports) < 2:
            return set(), set()
        from ingest.text import place_names

        return {int(y) for y in _YEAR.findall(text)}, set(place_names(text))
