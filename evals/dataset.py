"""The evaluation set on disk: one JSON object per line, checked line by line."""
from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, ValidationInfo, field_validator

from core.files import replace_atomically
from core.text import match_form
from core.types import Turn

Category = Literal["fact", "paraphrase", "colloquial", "multi", "unanswerable", "near_miss", "followup"]
CATEGORIES: tuple[str, ...] = ("fact", "paraphrase", "colloquial", "multi", "unanswerable", "near_miss", "followup")
UNANSWERABLE_CATEGORIES = ("unanswerable", "near_miss")
# What a near miss gets wrong: another year or place, another item of the same kind, an amount
# the report does not give, or a unit it does not state.
Miss = Literal["year", "place", "item", "amount", "unit"]


# Caps far above any real item (the shipped set's longest question is 40 characters, its longest quote 115):
# an item is written by staff through the page, so a pasted novel must not reach the file.
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 5000
MAX_QUOTE_CHARS = 2000
MAX_LIST_ITEMS = 30
MAX_HISTORY_TURNS = 10
Quote = Annotated[str, StringConstraints(max_length=MAX_QUOTE_CHARS)]


class TurnRow(BaseModel):
    """How a ``core.types.Turn`` of an item's history is written in the set: checked, then made a Turn."""

    model_config = ConfigDict(strict=True, extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    answer: str = Field(max_length=MAX_ANSWER_CHARS)


def _check_against_answerable(values: list[str], answerable: bool | None, one: str, many: str) -> None:
    """An answerable item needs at least one of ``values``, an unanswerable one none; none may be blank."""
    if answerable is True and not values:
        raise ValueError(f"an answerable item needs at least one {one}")
    if answerable is False and values:
        raise ValueError(f"an unanswerable item has no {many}; use []")
    if any(not value.strip() for value in values):
        raise ValueError(f"a {one} is empty")


class EvalItem(BaseModel):
    """One question of the evaluation set with what a correct answer must show."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=80)
    report: str | None = Field(None, min_length=1, max_length=300)  # the report's file name; None: the set's own
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    history: list[Turn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    answerable: bool
    category: Category
    miss: Miss | None = None  # near_miss only
    reference_answer: str = Field(max_length=MAX_ANSWER_CHARS)
    required_facts: list[Quote] = Field(max_length=MAX_LIST_ITEMS)  # strings a correct answer contains verbatim
    evidence: list[Quote] = Field(max_length=MAX_LIST_ITEMS)  # verbatim quotes from the report that support the answer

    @field_validator("history", mode="before")
    @classmethod
    def _turns(cls, history: object) -> object:
        """Rows of the file (or Turns) as checked Turns: one Turn type across the code, a strict schema on disk."""
        if not isinstance(history, list):
            return history  # the list type check below says what is wrong
        rows = [TurnRow.model_validate(t.to_dict() if isinstance(t, Turn) else t) for t in history]
        return [Turn(row.question, row.answer) for row in rows]

    # Fields are validated in order, so each check sees the fields declared before it.
    @field_validator("category")
    @classmethod
    def _unanswerable_category(cls, category: str, info: ValidationInfo) -> str:
        if category in UNANSWERABLE_CATEGORIES and info.data.get("answerable") is True:
            raise ValueError(f"category {category!r} needs answerable false")
        return category

    @field_validator("miss")
    @classmethod
    def _miss_with_near_miss(cls, miss: str | None, info: ValidationInfo) -> str | None:
        if (miss is None) != (info.data.get("category") != "near_miss"):
            raise ValueError("a near_miss item says what it misses (year, place, item, amount or unit); "
                             "other categories have no miss")
        return miss

    @field_validator("required_facts")
    @classmethod
    def _facts_match_answerable(cls, facts: list[str], info: ValidationInfo) -> list[str]:
        _check_against_answerable(facts, info.data.get("answerable"), "required fact", "required facts")
        return facts

    @field_validator("evidence")
    @classmethod
    def _evidence_supports_facts(cls, evidence: list[str], info: ValidationInfo) -> list[str]:
        _check_against_answerable(evidence, info.data.get("answerable"), "evidence quote", "evidence")
        quotes = [match_form(q) for q in evidence]
        for fact in info.data.get("required_facts") or []:
            if not any(match_form(fact) in q for q in quotes):
                raise ValueError(f"required fact {fact!r} is in none of the evidence quotes")
        return evidence

    def to_json_line(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), ensure_ascii=False)


@dataclass(frozen=True)
class LoadError:
    """A line of the evaluation set that was left out, and why."""

    line: int
    message: str
    field: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: field '{self.field}'" if self.field else f"line {self.line}"
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    items: list[EvalItem] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)


def _validation_errors(exc: ValidationError, line: int) -> list[LoadError]:
    errors = []
    for err in exc.errors():
        name = ".".join(str(part) for part in err["loc"]) or None
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] not in {"missing", "extra_forbidden"} and "input" in err:
            message += f" (got {err['input']!r})"[:200]
        errors.append(LoadError(line, message, name))
    return errors


def parse_line(text: str, line: int) -> tuple[EvalItem | None, list[LoadError]]:
    """One line of the set as an item, or the reasons it is not one."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [LoadError(line, f"not valid JSON ({exc.msg} at column {exc.colno})")]
    if not isinstance(row, dict):
        return None, [LoadError(line, f"expected a JSON object, got {type(row).__name__}")]
    try:
        return EvalItem.model_validate(row), []
    except ValidationError as exc:
        return None, _validation_errors(exc, line)


def load_eval_set(path: Path | str) -> LoadResult:
    """Every valid item of a JSONL set; bad lines are reported by number and skipped.

    Blank lines are ignored. A repeated id is an error on the later line.
    """
    result = LoadResult()
    first_line_of: dict[str, int] = {}
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                result.errors.append(LoadError(number, f"not valid UTF-8 (byte {raw[exc.start]:#04x}); save the file as UTF-8"))
                continue
            if not text.strip():
                continue
            item, errors = parse_line(text, number)
            result.errors.extend(errors)
            if item is None:
                continue
            if item.id in first_line_of:
                result.errors.append(LoadError(number, f"duplicate id {item.id!r} (first on line {first_line_of[item.id]})", "id"))
                continue
            first_line_of[item.id] = number
            result.items.append(item)
    return result


def _existing_ids(text: str) -> set[str]:
    ids = set()
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("id"), str):
            ids.add(row["id"])
    return ids


def append_item(path: Path | str, item: EvalItem | dict) -> EvalItem:
    """Validate ``item`` and add it as the last line of the set, atomically.

    The new file is written next to the old one and renamed over it, so a
    crash leaves either the old file or the new one, never half a line. An
    exclusive lock on the folder keeps two writers from losing each other's line.

    Raises:
        ValueError: the item is invalid or its id is already in the set.
    """
    path = Path(path)
    if not isinstance(item, EvalItem):
        try:
            item = EvalItem.model_validate(item)
        except ValidationError as exc:
            raise ValueError("; ".join(e.message if not e.field else f"field '{e.field}': {e.message}"
                                       for e in _validation_errors(exc, 0))) from None
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    folder_fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(folder_fd, fcntl.LOCK_EX)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if item.id in _existing_ids(old):
            raise ValueError(f"id {item.id!r} is already in {path}; choose another id")
        if old and not old.endswith("\n"):
            old += "\n"
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        replace_atomically(path, old + item.to_json_line() + "\n", mode)
    finally:
        os.close(folder_fd)  # also releases the lock
    return item
