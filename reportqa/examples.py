"""Example questions come from the data: staff choose them per report on the page (``data/examples.json``);
by default they are the evaluation items of that report that the service answers correctly now.

A default example is an answerable item without earlier turns, of the report (``report`` names it, or
an item naming no report whose evidence is in its text), asked of that report alone and answered
directly with every required fact, the test ``reportqa eval`` applies. They are grouped by the report
section the answer cites. Defaults are worked out when first shown and kept until a new index version
is loaded. Unanswerable items are never shown: the evaluation set stays staff data, and only questions
the report answers reach the page.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import ReportQAError
from core.files import replace_atomically
from core.text import clean_user_text, match_form
from core.types import Chunk, ReportInfo, Scope
from evals.dataset import load_eval_set
from evals.metrics import missing_facts

from .service import validate_question

logger = logging.getLogger(__name__)

MAX_GROUPS = 6  # groups the chat shows (its example slots)
MAX_QUESTIONS = 12  # questions staff may choose for one report
MAX_GROUP_CHARS = 20
DEFAULT_QUESTIONS = 8  # passing evaluation items shown by default
MAX_TRIES = 30  # evaluation items asked to find them
REPORTS_IN_ALL = 3  # reports whose examples the chat shows when it asks all of several reports
PER_REPORT_IN_ALL = 3
DEFAULT_GROUP = "示例问题"
CATEGORY_ORDER = {"fact": 0, "paraphrase": 1, "colloquial": 2, "multi": 3}
_NUMBERING = re.compile(r"^\s*(?:[一二三四五六七八九十]+、|[(（][一二三四五六七八九十]+[)）]|\d+[.、．])\s*")

Groups = dict[str, list[str]]


class ExamplesRejected(ReportQAError):
    """Examples staff typed that cannot be saved (the Chinese message names the line)."""

    def __init__(self, message_zh: str):
        super().__init__(message_zh, message_zh)


def parse_examples(text: str) -> Groups:
    """The editor's text as groups: a line starting with # names a group, every other line is a question.

    Raises ExamplesRejected naming the first bad line (too long, not a question, too many).
    """
    groups: Groups = {}
    group = DEFAULT_GROUP
    count = 0
    for number, line in enumerate(clean_user_text(text or "").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            group = line.lstrip("#").strip() or DEFAULT_GROUP
            if len(group) > MAX_GROUP_CHARS:
                raise ExamplesRejected(f"第 {number} 行：分组名太长（最多 {MAX_GROUP_CHARS} 字）。")
            continue
        try:
            question = validate_question(line, 200)
        except ReportQAError as exc:
            raise ExamplesRejected(f"第 {number} 行：{exc.message_zh}") from None
        count += 1
        if count > MAX_QUESTIONS:
            raise ExamplesRejected(f"示例问题最多 {MAX_QUESTIONS} 个（第 {number} 行超出）。")
        groups.setdefault(group, [])
        if question not in groups[group]:
            groups[group].append(question)
    if len(groups) > MAX_GROUPS:
        raise ExamplesRejected(f"分组最多 {MAX_GROUPS} 个。")
    return groups


def format_examples(groups: Groups) -> str:
    """Groups as the editor shows them (``parse_examples`` reads it back)."""
    return "\n".join(f"# {group}\n" + "\n".join(questions) for group, questions in groups.items())


def topic_of(chunk: Chunk) -> str:
    """A group name for an example: the top section its answer is cited from, without its number."""
    if not chunk.section_path:
        return DEFAULT_GROUP
    name = _NUMBERING.sub("", chunk.section_path[0]).strip() or DEFAULT_GROUP
    return name if len(name) <= 12 else name[:11] + "…"


class ExampleBook:
    """The example questions of each report: staff's choice (a JSON file), else passing evaluation items."""

    def __init__(self, qa, path: Path, eval_sets: Callable[[], Sequence[Path]]):
        self.qa = qa
        self.path = Path(path)
        self.eval_sets = eval_sets  # the evaluation set files, read when defaults are worked out
        self._lock = threading.Lock()  # the file, and the defaults cache
        self._defaults: dict[tuple[str, str], Groups] = {}

    # ------------------------------------------------------------ staff's choices

    def chosen(self) -> dict[str, Groups]:
        """Every report's chosen examples, as stored; {} when there is no file or it cannot be read."""
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("ignoring the examples file %s: %s", self.path, exc)
            return {}
        reports = stored.get("reports", {}) if isinstance(stored, dict) else {}
        return {source: {str(g): [str(q) for q in qs if isinstance(q, str)] for g, qs in groups.items()
                         if isinstance(qs, list)}
                for source, groups in reports.items() if isinstance(groups, dict)}

    def _write(self, reports: dict[str, Groups]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(self.path, json.dumps({"reports": reports}, ensure_ascii=False, indent=1) + "\n")

    def save(self, source: str, text: str) -> tuple[Groups, list[str]]:
        """Keep ``text`` (``parse_examples``) as the report's examples; returns them and the questions the
        report does not answer now (saved too: staff may want one refusal among them)."""
        groups = parse_examples(text)
        if not groups:
            raise ExamplesRejected("请至少填写一个示例问题；要改回默认示例，请点“恢复默认”。")
        with self._lock:
            reports = self.chosen()
            reports[source] = groups
            self._write(reports)
        refused = [q for qs in groups.values() for q in qs
                   if self.qa.ask(q, scope=Scope(sources=(source,))).refused]
        return groups, refused

    def reset(self, source: str) -> None:
        """Back to the defaults (forget staff's choice for ``source``)."""
        with self._lock:
            reports = self.chosen()
            if reports.pop(source, None) is not None:
                self._write(reports)

    def is_chosen(self, source: str) -> bool:
        return source in self.chosen()

    # ------------------------------------------------------------ what the chat shows

    def groups(self, source: str) -> Groups:
        """The report's examples: staff's choice, else the defaults."""
        return self.chosen().get(source) or self.defaults(source)

    def for_scope(self, reports: Sequence[ReportInfo], scope: Scope | None) -> Groups:
        """The examples of the reports a chat scope covers: one report's own groups, or for several the
        first few questions of a few reports, each under its title."""
        inside = [r for r in reports if _in_scope(r, scope)] if scope else list(reports)
        if len(inside) == 1:
            return dict(list(self.groups(inside[0].source).items())[:MAX_GROUPS])
        shown: Groups = {}
        for report in sorted(inside, key=lambda r: -(r.year or 0))[:REPORTS_IN_ALL]:
            questions = [q for qs in self.groups(report.source).values() for q in qs][:PER_REPORT_IN_ALL]
            if questions:
                title = report.display_title
                shown[f"《{title if len(title) <= 19 else title[:18] + '…'}》"] = questions
        return shown

    # ------------------------------------------------------------ defaults from the evaluation set

    def defaults(self, source: str) -> Groups:
        """The passing evaluation items of ``source``, by topic; worked out once per index version."""
        try:
            version = str(self.qa.index.path)
        except ReportQAError:
            return {}
        key = (version, source)
        with self._lock:
            if key not in self._defaults:
                if len(self._defaults) > 1000:
                    self._defaults.clear()
                self._defaults[key] = self._passing(source)
            return self._defaults[key]

    def _items(self) -> list:
        items = []
        for path in self.eval_sets():
            try:
                items += load_eval_set(path).items
            except OSError as exc:
                logger.warning("cannot read the evaluation set %s for examples: %s", path, exc)
        return [i for i in items if i.answerable and not i.history]

    def _passing(self, source: str) -> Groups:
        try:
            text = match_form(self.qa.report_text(source))
        except ReportQAError:
            return {}
        mine = [i for i in self._items() if i.report == source or (
            i.report is None and i.evidence and all(match_form(e) in text for e in i.evidence))]
        mine.sort(key=lambda i: CATEGORY_ORDER.get(i.category, 9))
        groups: Groups = {}
        found = 0
        for item in mine[:MAX_TRIES]:
            try:
                answer = self.qa.ask(item.question, scope=Scope(sources=(source,)))
            except ReportQAError:
                continue
            if answer.reply != "answer" or not answer.citations or missing_facts(answer.text, False,
                                                                                 item.required_facts):
                continue
            groups.setdefault(topic_of(answer.citations[0].chunk), []).append(item.question)
            found += 1
            if found >= DEFAULT_QUESTIONS:
                break
        return dict(list(groups.items())[:MAX_GROUPS])


def _in_scope(report: ReportInfo, scope: Scope) -> bool:
    return ((not scope.sources or report.source in scope.sources)
            and (not scope.issuers or report.issuer in scope.issuers)
            and (not scope.years or report.year in scope.years))

