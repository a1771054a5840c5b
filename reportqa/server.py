"""The web server: the REST API, the embeddable chat and the Gradio page on one FastAPI app, behind the
headers and limits a public site needs.

Routes, matched in this order: ``/api/v1/...`` (``reportqa.rest``), the
embeddable chat at ``/embed/`` (``ui.embed``) and the page at ``/``. All three
answer through one service whose answers share the answer slots
(``reportqa.capacity``: one per core), so however the questions arrive, no
more answers are computed at once than the machine has cores.

Why not ``Blocks.launch``: a public chat needs a say over every response and
route, which Gradio's own server does not give. Here, every response carries
a Content-Security-Policy (scripts, styles, images and connections from this
origin only, so the page fetches nothing elsewhere and cannot be framed by
another site) and ``X-Frame-Options``; only ``/embed/`` may be framed, by the
portals named in REPORTQA_EMBED_ORIGINS. Gradio's upload route is closed to all but a
logged-in staff session's page (``reportqa.uploads``: an HttpOnly cookie), since
citizens upload nothing; and Gradio's file cache is emptied hourly
(``ui.app.CACHE_CLEANUP``). docs/SECURITY.md lists what each route exposes.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from .runtime import prepare_process
from .uploads import cookie_value, install_upload_session_route

logger = logging.getLogger(__name__)

EMBED_PATH = "/embed"  # the embeddable chat (ui.embed), the one route other sites may frame

# Scripts and styles inline and eval'd: Gradio's page needs both. Everything else from this origin only.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "media-src 'self' data: blob:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "frame-ancestors 'self'",
    "base-uri 'self'",
    "form-action 'self'",
    "object-src 'none'",
])
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "SAMEORIGIN",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
# Gradio's routes that take a file from the browser: only the staff's report upload uses them.
UPLOAD_ROUTES = ("/gradio_api/upload", "/gradio_api/upload_progress")
UPLOADS_CLOSED = {"error": "此服务不接受上传文件（工作人员请先登录）。Uploads are not accepted: log in as staff first."}


def embed_headers(origins) -> dict[str, str]:
    """SECURITY_HEADERS for the embeddable chat: framed by this site and ``origins``. X-Frame-Options cannot
    name a list of sites, so it is left out; browsers that know frame-ancestors (all current ones) ignore it
    anyway when a Content-Security-Policy names the framers."""
    if not origins:
        return SECURITY_HEADERS
    policy = CONTENT_SECURITY_POLICY.replace("frame-ancestors 'self'", f"frame-ancestors 'self' {' '.join(origins)}")
    return {**{k: v for k, v in SECURITY_HEADERS.items() if k != "x-frame-options"},
            "content-security-policy": policy}


class SecurityMiddleware:
    """Pure ASGI (streamed responses pass through untouched): adds SECURITY_HEADERS to every HTTP response
    (``embed_headers`` under EMBED_PATH) and answers 403 to the upload routes unless ``upload_allowed``
    accepts the request's upload cookie (a live staff session's; ``reportqa.uploads``)."""

    def __init__(self, app, embed_origins=(), upload_allowed=lambda upload_token: False):
        self.app = app
        self.embed_headers = embed_headers(tuple(embed_origins))
        self.upload_allowed = upload_allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        headers = self.embed_headers if path == EMBED_PATH or path.startswith(EMBED_PATH + "/") else SECURITY_HEADERS
        if path.rstrip("/").endswith(UPLOAD_ROUTES) and not self.upload_allowed(cookie_value(scope)):
            return await _json_response(send, 403, UPLOADS_CLOSED, headers)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in headers.items() if k.encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _json_response(send, status: int, body: dict, security_headers: dict[str, str] = SECURITY_HEADERS) -> None:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(data)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in security_headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def create_app(qa, eval_set_path: Path | None = None, eval_out_dir: Path | None = None,
               feedback_path: Path | None = None, staff_credentials: tuple[str, str] | None = None,
               concurrency_limit: int | None = None, max_size: int | None = None, settings=None):
    """The FastAPI app for ``qa`` (a ReportQA): the REST API at /api/v1, the embeddable chat at /embed/, the page
    at "/".

    Paths, the staff login and the server's limits (answer workers and queue,
    rate limit, embedding origins) default to ``settings``, else ``qa.settings``
    (the data folder's evaluation set and evaluation output; feedback and the
    question log in REPORTQA_DATABASE_URL or the data folder's SQLite file;
    REPORTQA_STAFF_USER/PASSWORD; REPORTQA_ANSWER_WORKERS, …).
    ``concurrency_limit`` and ``max_size`` are the Gradio queue's.
    """
    prepare_process()
    import gradio as gr
    from fastapi import FastAPI

    from ui.app import build_app, open_records
    from ui.auth import StaffSessions
    from ui.embed import EMBED_CSS, build_embed_app
    from ui.page import CONCURRENCY_LIMIT, CSS, QUEUE_MAX_SIZE, SOURCE_JS, THEME

    from . import rest
    from .capacity import AnswerPool, AnswerSlots, RateLimiter, SlottedService
    from .examples import ExampleBook
    from .library import ReportLibrary

    settings = settings or qa.settings
    workers = settings.workers
    service = SlottedService(qa, AnswerSlots(workers))  # every door's answers share the cores
    pool = AnswerPool(workers, settings.answer_queue, settings.answer_queue_timeout_s)
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    # Feedback and the question log: one database, opened (schema upgraded, old questions purged) once for every door.
    records = open_records(feedback_path or settings.records_database, settings.question_retention_days)
    eval_set_path = Path(eval_set_path or settings.eval_set_path)
    sessions = StaffSessions(staff_credentials or settings.staff_credentials)
    examples = ExampleBook(qa, settings.examples_path,
                           lambda: [eval_set_path, *sorted((eval_set_path.parent / "corpus").glob("*.jsonl"))])
    demo = build_app(service, eval_set_path=eval_set_path,
                     eval_out_dir=eval_out_dir or settings.eval_out_path,
                     records=records,
                     staff_credentials=staff_credentials or settings.staff_credentials,
                     sessions=sessions, library=ReportLibrary(qa, examples), examples=examples)
    embed = build_embed_app(service, records=records)
    for blocks in (demo, embed):
        blocks.queue(default_concurrency_limit=concurrency_limit or CONCURRENCY_LIMIT,
                     max_size=max_size or QUEUE_MAX_SIZE)
    app = FastAPI(title=rest.API_TITLE, description=rest.API_DESCRIPTION, version=rest.app_version(),
                  docs_url=None, redoc_url=None, openapi_url=rest.OPENAPI_URL)
    rest.install(app, service, pool, limiter, settings.max_question_chars, records[1])  # first: before the mounts at /
    install_upload_session_route(app, sessions)
    # Outermost: on every response.
    app.add_middleware(SecurityMiddleware, embed_origins=settings.embed_origins, upload_allowed=sessions.upload_allowed)
    page = dict(
        footer_links=["api", "settings"],
        run_history=False,  # no run log in the browser, no "save to a Hugging Face bucket" page
        show_error=False,
        max_file_size=int(settings.max_report_mb * 2**20),  # only staff reach the upload route
        ssr_mode=False,  # no Node server
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        theme=THEME, js=SOURCE_JS,
    )
    gr.mount_gradio_app(app, embed, path=EMBED_PATH, css=CSS + EMBED_CSS, **{**page, "footer_links": []})
    gr.mount_gradio_app(app, demo, path="/", css=CSS, **page)
    app.state.demo, app.state.embed, app.state.pool, app.state.service = demo, embed, pool, service
    return app


class RunningServer:
    """A server started in a background thread: ``local_url``, ``app``, ``demo``; ``close()`` stops it.

    ``forwarded_allow_ips``: the addresses (a reverse proxy) whose X-Forwarded-For header names the client,
    which the rate limit and the login back-off count by.
    """

    def __init__(self, app, host: str, port: int, forwarded_allow_ips: str = "127.0.0.1"):
        import uvicorn

        self.app, self.demo = app, app.state.demo
        self.local_url = f"http://{host}:{port}/"
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                     timeout_graceful_shutdown=1, proxy_headers=True,
                                                     forwarded_allow_ips=forwarded_allow_ips))
        self._thread = threading.Thread(target=self._server.run, name="reportqa-server", daemon=True)

    def start(self, timeout_s: float = 60.0) -> "RunningServer":
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.local_url}")
            time.sleep(0.05)
        return self

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(3)
        if self._thread.is_alive():  # an event stream a client left open: stop waiting for it
            self._server.force_exit = True
            self._thread.join(10)
        self.app.state.pool.close()


def launch(qa, host: str = "127.0.0.1", port: int = 7860, eval_set_path=None, eval_out_dir=None,
           feedback_path=None, staff_credentials: tuple[str, str] | None = None, concurrency_limit: int | None = None,
           max_size: int | None = None, prevent_thread_lock: bool = False, settings=None,
           **_ignored: Any) -> RunningServer:
    """Serve the chat for ``qa`` on host:port: in a background thread (``prevent_thread_lock``, returns the
    running server), else until interrupted. See ``create_app`` for the rest."""
    app = create_app(qa, eval_set_path, eval_out_dir, feedback_path, staff_credentials, concurrency_limit, max_size,
                     settings)
    server = RunningServer(app, host, port, (settings or qa.settings).forwarded_allow_ips)
    if prevent_thread_lock:
        return server.start()
    print(f"ReportQA is serving on {server.local_url}", flush=True)
    server._server.run()
    return server
