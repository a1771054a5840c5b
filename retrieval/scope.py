"""Which reports a question means: read off its place and year, or checked when a caller names them."""
from __future__ import annotations

from core.text import place_names, years_in
from core.types import ReportInfo, Scope

SCOPE_FIELDS = (("sources", "source"), ("issuers", "issuer"), ("years", "year"))


class ReportCatalogue:
    """The indexed reports' metadata, for reading a scope off a question."""

    def __init__(self, reports: tuple[ReportInfo, ...]):
        self.reports = reports
        self._scopes: dict[tuple[frozenset, frozenset], Scope | None] = {}  # questions repeat their places

    def unknown(self, scope: Scope) -> list[tuple[str, list, list]]:
        """(report field, values of ``scope`` no report has, the values reports do have) for each field
        of ``scope`` that names something not indexed; empty when every value is known."""
        problems = []
        for attribute, field in SCOPE_FIELDS:
            have = {getattr(r, field) for r in self.reports} - {None}
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
                        if (not years or r.year in years)
                        and (not places or any(p in f"{r.issuer or ''} {r.title or ''}" for p in places))]
            narrows = matching and len(matching) < len(self.reports)
            self._scopes[key] = Scope(sources=tuple(r.source for r in matching)) if narrows else None
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
        return years_in(text), set(place_names(text))
