"""The web server: the Gradio page mounted on a FastAPI app, behind the headers and limits a public site needs.

Why not ``Blocks.launch``: a public chat needs a say over every response and
route, which Gradio's own server does not give. Here, every response carries
a Content-Security-Policy (scripts, styles, images and connections from this
origin only, so the page fetches nothing elsewhere and cannot be framed by
another site) and ``X-Frame-Options``; Gradio's upload route is closed to all but a
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


class SecurityMiddleware:
    """Pure ASGI (streamed responses pass through untouched): adds SECURITY_HEADERS to every HTTP response
    and answers 403 to the upload routes unless ``upload_allowed`` accepts the request's upload cookie
    (a live staff session's; ``reportqa.uploads``)."""

    def __init__(self, app, upload_allowed=lambda upload_token: False):
        self.app = app
        self.upload_allowed = upload_allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"].rstrip("/").endswith(UPLOAD_ROUTES) and not self.upload_allowed(cookie_value(scope)):
            return await _json_response(send, 403, UPLOADS_CLOSED)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _json_response(send, status: int, body: dict) -> None:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(data)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def create_app(qa, eval_set_path: Path | None = None, eval_out_dir: Path | None = None,
               feedback_path: Path | None = None, staff_credentials: tuple[str, str] | None = None,
               concurrency_limit: int | None = None, max_size: int | None = None):
    """The FastAPI app serving the chat for ``qa`` (a ReportQA) at "/".

    Paths and the staff login default to ``qa.settings``'s (the data folder's evaluation set,
    evaluation output and feedback database; REPORTQA_STAFF_USER/PASSWORD).
    """
    prepare_process()
    import gradio as gr
    from fastapi import FastAPI

    from ui.app import build_app
    from ui.auth import StaffSessions
    from ui.page import CONCURRENCY_LIMIT, CSS, QUEUE_MAX_SIZE, SOURCE_JS, THEME

    from .examples import ExampleBook
    from .library import ReportLibrary

    settings = qa.settings
    eval_set_path = Path(eval_set_path or settings.eval_set_path)
    sessions = StaffSessions(staff_credentials or settings.staff_credentials)
    examples = ExampleBook(qa, settings.examples_path,
                           lambda: [eval_set_path, *sorted((eval_set_path.parent / "corpus").glob("*.jsonl"))])
    demo = build_app(qa, eval_set_path=eval_set_path,
                     eval_out_dir=eval_out_dir or settings.eval_out_path,
                     feedback_path=feedback_path or settings.feedback_path,
                     staff_credentials=staff_credentials or settings.staff_credentials,
                     sessions=sessions, library=ReportLibrary(qa, examples), examples=examples)
    demo.queue(default_concurrency_limit=concurrency_limit or CONCURRENCY_LIMIT, max_size=max_size or QUEUE_MAX_SIZE)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityMiddleware, upload_allowed=sessions.upload_allowed)
    install_upload_session_route(app, sessions)
    gr.mount_gradio_app(
        app, demo, path="/",
        footer_links=["api", "settings"],
        run_history=False,  # no run log in the browser, no "save to a Hugging Face bucket" page
        show_error=False,
        max_file_size=int(settings.max_report_mb * 2**20),  # only staff reach the upload route
        ssr_mode=False,  # no Node server
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        theme=THEME, css=CSS, js=SOURCE_JS,
    )
    app.state.demo = demo
    return app


class RunningServer:
    """A server started in a background thread: ``local_url``, ``app``, ``demo``; ``close()`` stops it."""

    def __init__(self, app, host: str, port: int):
        import uvicorn

        self.app, self.demo = app, app.state.demo
        self.local_url = f"http://{host}:{port}/"
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                     timeout_graceful_shutdown=1))
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


def launch(qa, host: str = "127.0.0.1", port: int = 7860, eval_set_path=None, eval_out_dir=None,
           feedback_path=None, staff_credentials: tuple[str, str] | None = None, concurrency_limit: int | None = None,
           max_size: int | None = None, prevent_thread_lock: bool = False, **_ignored: Any) -> RunningServer:
    """Serve the chat for ``qa`` on host:port: in a background thread (``prevent_thread_lock``, returns the
    running server), else until interrupted. See ``create_app`` for the rest."""
    app = create_app(qa, eval_set_path, eval_out_dir, feedback_path, staff_credentials, concurrency_limit, max_size)
    server = RunningServer(app, host, port)
    if prevent_thread_lock:
        return server.start()
    print(f"ReportQA is serving on {server.local_url}", flush=True)
    server._server.run()
    return server
