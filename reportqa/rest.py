"""The REST API for portals and programs: ``/api/v1`` beside the page, on the same loaded index.

``POST /api/v1/ask`` answers with the ``reportqa ask --json`` object;
``POST /api/v1/ask/stream`` sends the same answer as server-sent events
(``partial`` while an LLM composes, then ``answer``); ``GET /api/v1/health``
says whether the index is loaded and which version; ``/api/v1/docs`` is the
OpenAPI documentation (Swagger UI served from here: nothing from a CDN).

Every question goes through the service the CLI and the page call
(``ReportQA``), inside the answer pool (``reportqa.capacity``). Bad input gets
a 4xx JSON error with a Chinese and an English message, never a traceback:
``{"code", "error" (Chinese), "error_en", "field"?}``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import IndexMismatch, IndexMissing, InvalidQuestion, ModelUnavailable, ReportQAError, UnknownScope
from core.text import clean_user_text, clip
from core.types import Scope
from ui.api import BAD_YEAR_ZH
from ui.page import BUSY_ZH, GENERIC_ERROR_ZH

from .capacity import AnswerPool, Busy, RateLimiter
from .cli import MAX_HISTORY_TURNS
from .service import validate_question

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
OPENAPI_URL = f"{API_PREFIX}/openapi.json"
DOCS_URL = f"{API_PREFIX}/docs"
DOCS_ASSETS = f"{DOCS_URL}/assets"
ASK_ROUTES = (f"{API_PREFIX}/ask", f"{API_PREFIX}/ask/stream")  # what the per-address rate limit counts
KNOWN_ROUTES = {*ASK_ROUTES, f"{API_PREFIX}/health", DOCS_URL, OPENAPI_URL}
MAX_BODY_BYTES = 64 * 1024  # a 500-character question with 20 turns of history is far below this
MAX_HISTORY_SENT = 100  # turns a request may carry; the last MAX_HISTORY_TURNS are used, as on the CLI
RATE_LIMITED_ZH = "提问太频繁，请稍后再试。"

API_TITLE = "ReportQA API"
API_DESCRIPTION = (
    "根据政府报告原文回答问题，每句回答都标注出处。Answers questions from the indexed government reports; every "
    "sentence of an answer is quoted from a report and cited.\n\n"
    "Errors are JSON: `{\"code\", \"error\" (中文), \"error_en\", \"field\"?}`. 400: the question or scope cannot be "
    "answered as sent; 413: body over 64 KB; 422: not in the API's shape; 429: too many questions from one address "
    "(Retry-After); 503: the server is full or the index is not loaded (Retry-After)."
)


def app_version() -> str:
    try:
        return metadata.version("reportqa")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


# ---------------------------------------------------------------- the API's shapes

class HistoryTurn(BaseModel):
    """One earlier exchange: the question and the answer shown (other keys are ignored)."""

    model_config = ConfigDict(extra="ignore")
    question: str = Field(max_length=2_000)
    answer: str = Field("", max_length=10_000)


class AskRequest(BaseModel):
    """A question, optionally a follow-up of earlier turns, optionally narrowed to one report, issuer or year."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "全市建成了多少个便民服务站？"},
        {"question": "它们一年演练了多少次？",
         "history": [{"question": "大连有几支市级应急救援队伍？", "answer": "…"}], "year": 2023},
    ]})
    question: str = Field(description="The question, up to 500 characters (REPORTQA_MAX_QUESTION_CHARS).")
    history: list[HistoryTurn] = Field(default_factory=list, max_length=MAX_HISTORY_SENT,
                                       description="Earlier turns, oldest first; the last 20 are used.")
    report: str | None = Field(None, max_length=500, description="Only this report (its file name, as in "
                                                                 "citations[].source).")
    issuer: str | None = Field(None, max_length=200, description="Only this issuing body (as in citations[].issuer).")
    year: int | None = Field(None, ge=1000, le=9999, description="Only reports of this year.")


class CitationOut(BaseModel):
    n: int
    chunk_id: str
    source: str
    title: str | None = None
    issuer: str | None = None
    year: int | None = None
    url: str | None = None
    page: int | None = None
    section: str
    text: str
    quote: str
    start: int
    end: int


class AnswerOut(BaseModel):
    """The ``reportqa ask --json`` object."""

    question: str
    answer: str
    reply: Literal["answer", "related", "refusal"]
    refused: bool
    confidence: float | None = None
    citations: list[CitationOut]
    timings_ms: dict[str, float]


class ErrorOut(BaseModel):
    code: str = Field(description="invalid_question, unknown_scope, invalid_request, too_large, rate_limited, "
                                  "busy, unavailable, not_found, method_not_allowed, internal")
    error: str = Field(description="中文说明")
    error_en: str
    field: str | None = None


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    index_loaded: bool
    index_version: str | None = Field(None, description="The live index version folder (v-<time>-<id>).")
    index_created_at: str | None = None
    reports: int = 0
    chunks: int = 0
    embedder: str | None = None
    stale: bool = Field(False, description="Serving the last good index: the reports changed and it could not "
                                           "be rebuilt.")
    version: str
    answers: dict[str, int] = Field(description="workers, running, waiting, capacity of the answer pool")


ERRORS = {status: {"model": ErrorOut} for status in (400, 413, 422, 429, 500, 503)}


# ---------------------------------------------------------------- errors

class ApiError(Exception):
    """An error the API answers with: status, code, Chinese and English message, the field it is about."""

    def __init__(self, status: int, code: str, zh: str, en: str, field: str | None = None,
                 retry_after_s: int | None = None):
        super().__init__(en)
        self.status, self.code, self.zh, self.en, self.field, self.retry_after_s = (
            status, code, zh, en, field, retry_after_s)

    def body(self) -> dict:
        body = {"code": self.code, "error": self.zh, "error_en": self.en}
        return body | ({"field": self.field} if self.field else {})

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after_s)} if self.retry_after_s else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def busy_error(retry_after_s: int) -> ApiError:
    return ApiError(503, "busy", BUSY_ZH, "Too many questions are waiting; try again shortly.",
                    retry_after_s=retry_after_s)


def domain_error(exc: ReportQAError) -> ApiError:
    """A service error as the API answers it (InvalidQuestion and UnknownScope are the asker's to fix)."""
    if isinstance(exc, InvalidQuestion):
        return ApiError(400, "invalid_question", exc.message_zh, exc.message, "question")
    if isinstance(exc, UnknownScope):
        field = {"source": "report"}.get(exc.field, exc.field)
        return ApiError(400, "unknown_scope", exc.message_zh, exc.message, field)
    if isinstance(exc, (IndexMissing, IndexMismatch, ModelUnavailable)):
        logger.error("the index cannot answer: %s", exc.message)
        return ApiError(503, "unavailable", "服务暂时不可用，请稍后再试。", "The index is not available.",
                        retry_after_s=30)
    logger.error("could not answer: %s", exc.message)
    return ApiError(500, "internal", exc.message_zh, "The question could not be answered.")


FIELD_ZH = {"question": "问题（question）", "history": "对话历史（history）", "report": "报告（report）",
            "issuer": "发布机关（issuer）", "year": "年份（year）"}
HISTORY_ZH = (f'对话历史（history）应为 [{{"question": "…", "answer": "…"}}] 这样的列表（文字），最多 {MAX_HISTORY_SENT} 轮，'
              "每个问题 2000 字、每个回答 10000 字以内。")
EXAMPLE_BODY = '{"question": "全市建成了多少个便民服务站？"}'


def validation_error(errors: list[dict]) -> ApiError:
    """The first problem pydantic found, said for a person; never the input itself (it may be huge)."""
    error = errors[0] if errors else {"type": "", "loc": ("body",), "msg": "invalid"}
    kind, loc = error.get("type", ""), [str(part) for part in error.get("loc", ()) if part != "body"]
    field = loc[0] if loc else None
    en = clip(f"{'.'.join(loc) or 'body'}: {error.get('msg', 'invalid')}", 300)
    if kind == "json_invalid":
        return ApiError(422, "invalid_request", "请求体不是有效的 JSON。", "The request body is not valid JSON.")
    if not loc or field not in FIELD_ZH and kind != "extra_forbidden":
        return ApiError(422, "invalid_request", f"请求体应为 JSON 对象，例如 {EXAMPLE_BODY}。",
                        'The request body must be a JSON object with a "question" field.')
    if kind == "extra_forbidden":
        name = clip(field, 60)
        return ApiError(422, "invalid_request", f"不认识的字段：{name}。可用的字段：{'、'.join(FIELD_ZH)}。",
                        f"Unknown field {name!r}; the fields are {', '.join(FIELD_ZH)}.", name)
    if field == "year":
        return ApiError(422, "invalid_request", BAD_YEAR_ZH, "year must be a four-digit number such as 2023.", field)
    if field == "history":
        return ApiError(422, "invalid_request", HISTORY_ZH, en, field)
    if kind == "missing":
        return ApiError(422, "invalid_request", f"缺少{FIELD_ZH[field]}。请求体例如 {EXAMPLE_BODY}。", en, field)
    if kind == "string_too_long":
        return ApiError(422, "invalid_request", f"{FIELD_ZH[field]}太长。", en, field)
    return ApiError(422, "invalid_request", f"{FIELD_ZH[field]}应为文字。", en, field)


HTTP_ERRORS = {
    404: ("not_found", "没有这个接口。可用的接口见 /api/v1/docs。", "No such endpoint; see /api/v1/docs."),
    405: ("method_not_allowed", "请求方法不对：提问请用 POST，健康检查请用 GET。",
          "Method not allowed: POST to ask, GET for health."),
    413: ("too_large", f"请求太大（上限 {MAX_BODY_BYTES // 1024} KB）。",
          f"The request body is over {MAX_BODY_BYTES // 1024} KB."),
}


def http_error(status: int) -> ApiError:
    if status == 400:  # FastAPI's only 400: a body it could not decode (not UTF-8), which is not valid JSON either
        return ApiError(422, "invalid_request", "请求体不是有效的 JSON（应为 UTF-8 编码）。",
                        "The request body is not valid JSON (it must be UTF-8).")
    code, zh, en = HTTP_ERRORS.get(status, ("invalid_request", "请求无效。", "Bad request."))
    return ApiError(status, code, zh, en)


class BodyTooLarge(StarletteHTTPException):
    """Raised while a request body is read past MAX_BODY_BYTES (one sent without Content-Length)."""

    def __init__(self):
        super().__init__(413)


# ---------------------------------------------------------------- the guard in front of /api

class ApiGuard:
    """Pure ASGI, in front of /api only: refuses bodies over MAX_BODY_BYTES (413) and questions over the
    per-address rate limit (429 with Retry-After) before anything is read or parsed."""

    def __init__(self, app, limiter: RateLimiter):
        self.app, self.limiter = app, limiter

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            return await self.app(scope, receive, send)
        length = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return await _send(send, http_error(413))
        if scope["method"] == "POST" and scope["path"].rstrip("/") in ASK_ROUTES:
            client = (scope.get("client") or ("unknown", 0))[0]
            wait_s = self.limiter.take(client)
            if wait_s > 0:
                return await _send(send, ApiError(429, "rate_limited", RATE_LIMITED_ZH,
                                                  "Too many questions from this address; slow down.",
                                                  retry_after_s=max(1, math.ceil(wait_s))))
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited_receive, send)


async def _send(send, error: ApiError) -> None:
    response = error.response()
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


# ---------------------------------------------------------------- the routes

def _sse(event: str, data: dict) -> bytes:
    """One server-sent event; the JSON is one line (json.dumps escapes newlines inside strings)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


def make_router(service, pool: AnswerPool, max_question_chars: int, log=None) -> APIRouter:
    """The /api/v1 routes over ``service`` (a ReportQA, or one wrapped in capacity.SlottedService)."""
    router = APIRouter(prefix=API_PREFIX)

    def logged(answer, scope: Scope | None):
        """``answer``, written to the question log (问答记录) as asked over REST, when there is one (by the
        log's writer thread: the answer thread goes on to the next question)."""
        if log is not None:
            log.record_later(answer, sum(answer.timings_ms.values()), channel="rest", scope=scope)
        return answer

    def prepared(body: AskRequest) -> tuple[str, list[dict], Scope | None]:
        """The cleaned question, history and scope; ApiError for what cannot be answered as sent."""
        try:
            question = validate_question(body.question, max_question_chars)
            history = [{"question": clean_user_text(t.question), "answer": clean_user_text(t.answer)}
                       for t in body.history[-MAX_HISTORY_TURNS:]]
            report, issuer = clean_user_text(body.report).strip(), clean_user_text(body.issuer).strip()
            scope = Scope(sources=(report,) if report else (), issuers=(issuer,) if issuer else (),
                          years=(body.year,) if body.year else ()) or None
            service.check_scope(scope)
        except ReportQAError as exc:
            raise domain_error(exc) from None
        return question, history, scope

    @router.post("/ask", response_model=AnswerOut, responses=ERRORS, summary="Ask a question (提问)")
    async def ask(body: AskRequest) -> JSONResponse:
        """Answer a question from the reports: the `reportqa ask --json` object."""
        question, history, scope = prepared(body)
        try:
            answer = await pool.run(lambda: logged(service.ask(question, history, scope), scope))
        except Busy as exc:
            raise busy_error(exc.retry_after_s) from None
        except ReportQAError as exc:
            raise domain_error(exc) from None
        except Exception:
            logger.exception("unexpected error in /api/v1/ask for %r", clip(question))
            raise ApiError(500, "internal", GENERIC_ERROR_ZH, "Internal error; the question was not answered.") from None
        return JSONResponse(answer.to_dict())

    @router.post("/ask/stream", responses={200: {"content": {"text/event-stream": {}}, "description": (
        "Server-sent events: `partial` ({\"text\"}) while an LLM composes, then `answer` (the ask --json object); "
        "`error` ({\"code\", \"error\", \"error_en\"}) if it fails after the first event.")}, **ERRORS},
        summary="Ask, streamed as server-sent events (流式提问)")
    async def ask_stream(body: AskRequest):
        """The answer as it is composed. Errors before the first event are JSON responses with their status."""
        question, history, scope = prepared(body)
        try:
            pool.admit()
        except Busy as exc:
            raise busy_error(exc.retry_after_s) from None
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()  # the reader went away: stop composing

        def put(item) -> None:
            loop.call_soon_threadsafe(events.put_nowait, item)

        def compose() -> None:
            try:
                for event in service.ask_stream(question, history, scope):
                    if stop.is_set():
                        return
                    put(("answer", logged(event.answer, scope).to_dict()) if event.final
                        else ("partial", {"text": event.text}))
            except ReportQAError as exc:
                put(domain_error(exc))
            except Exception:
                logger.exception("unexpected error in /api/v1/ask/stream for %r", clip(question))
                put(ApiError(500, "internal", GENERIC_ERROR_ZH, "Internal error; the question was not answered."))
            finally:
                put(None)

        task = asyncio.ensure_future(pool.run(compose, admitted=True))
        task.add_done_callback(lambda _: pool.release())
        first = await _first(events, task)
        if isinstance(first, ApiError):
            raise first

        async def stream() -> AsyncIterator[bytes]:
            item = first
            try:
                while item is not None:
                    yield _sse("error", item.body()) if isinstance(item, ApiError) else _sse(*item)
                    item = await events.get()
            finally:
                stop.set()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}},
                summary="Is the index loaded, and which version (健康检查)")
    async def health() -> JSONResponse:
        index = service.loaded_index
        body: dict[str, Any] = {
            "status": "ok" if index is not None else "unavailable", "index_loaded": index is not None,
            "index_version": None, "index_created_at": None, "reports": 0, "chunks": 0, "embedder": None,
            "stale": bool(service.stale_reasons), "version": app_version(),
            "answers": {"workers": pool.workers, "running": pool.running, "waiting": pool.waiting,
                        "capacity": pool.capacity},
        }
        if index is not None:
            body |= {"index_version": index.path.name, "index_created_at": index.manifest.created_at,
                     "reports": len(index.manifest.indexed()), "chunks": index.manifest.chunk_count,
                     "embedder": index.manifest.embedder.get("name")}
        return JSONResponse(body, status_code=200 if index is not None else 503)

    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                      include_in_schema=False)
    async def unknown(path: str):
        raise http_error(405 if f"{API_PREFIX}/{path}".rstrip("/") in KNOWN_ROUTES else 404)

    return router


async def _first(events: asyncio.Queue, task: asyncio.Future):
    """The first event of a stream, or the error (Busy from the pool) that came before any."""
    getter = asyncio.ensure_future(events.get())
    await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
    if getter.done() or task.exception() is None:  # composing put its events (and the end) before it returned
        return await getter
    getter.cancel()
    exc = task.exception()
    if isinstance(exc, Busy):
        return busy_error(exc.retry_after_s)
    logger.error("the answer pool failed: %r", exc)
    return ApiError(500, "internal", GENERIC_ERROR_ZH, "Internal error; the question was not answered.")


# ---------------------------------------------------------------- wiring into the app

def _docs_assets() -> Path:
    """Swagger UI's script and style, from the fastapi-offline wheel (so the docs page loads nothing elsewhere)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install(app: FastAPI, service, pool: AnswerPool, limiter: RateLimiter, max_question_chars: int,
            log=None) -> None:
    """Add the /api/v1 routes, their error handlers, the docs and the ApiGuard to ``app`` (before any mount at /)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    async def on_api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(list(exc.errors())).response()

    async def on_http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_error(exc.status_code).response()

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(StarletteHTTPException, on_http_error)

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{API_TITLE} · 接口文档",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": True})

    app.mount(DOCS_ASSETS, StaticFiles(directory=_docs_assets()), name="api-docs-assets")
    app.include_router(make_router(service, pool, max_question_chars, log))
    app.add_middleware(ApiGuard, limiter=limiter)


__all__ = ["API_PREFIX", "ApiGuard", "AskRequest", "install", "make_router"]
