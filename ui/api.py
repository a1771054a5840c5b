"""The ``/ask`` API of the page: what programs call (``Client(url).predict(question, api_name="/ask")``)."""
from __future__ import annotations

import logging
import time

from core.errors import ReportQAError
from core.text import clean_user_text, clip
from core.types import Scope
from records import QuestionLog

from .page import GENERIC_ERROR_ZH

logger = logging.getLogger(__name__)


BAD_YEAR_ZH = "年份应为四位数字，例如 2023。"


def _year(value) -> int | None:
    """A year as the API may send it (2023, "2023", "", None); ValueError for anything else."""
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    text = str(value).strip()
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else text
    if not (text.isascii() and text.isdigit() and len(text) == 4):
        raise ValueError(value)
    return int(text)


def _text_arg(value) -> str:
    return clean_user_text(value).strip() if isinstance(value, str) else ""


def make_ask_api(qa, log: QuestionLog | None = None):
    """The ``/ask`` endpoint: Answer.to_dict(), or {"error": message_zh}; each answer goes into the question
    ``log`` (channel "api") when given."""

    # The hints document the API; Gradio passes values as sent (no preprocessing), so each is checked here.
    def ask(question: str, report: str = "", issuer: str = "", year: int | str | None = None) -> dict:
        """Answer a question from the reports, optionally only one report (file name), issuing body or year.

        Returns the answer with citations, or {"error": ...}.
        """
        try:
            wanted_year = _year(year)
        except ValueError:
            return {"error": BAD_YEAR_ZH}
        report, issuer = _text_arg(report), _text_arg(issuer)
        scope = Scope(sources=(report,) if report else (), issuers=(issuer,) if issuer else (),
                      years=(wanted_year,) if wanted_year else ()) or None
        try:
            qa.check_scope(scope)
            started = time.perf_counter()
            answer = qa.ask(question if isinstance(question, str) else "", scope=scope)
            if log is not None:
                log.record(answer, (time.perf_counter() - started) * 1000, "api", scope)
            return answer.to_dict()
        except ReportQAError as exc:
            return {"error": exc.message_zh}
        except Exception:
            logger.exception("unexpected error in /ask for %r", clip(question))
            return {"error": GENERIC_ERROR_ZH}

    return ask
