"""A real HTTP server on loopback speaking the OpenAI Chat Completions protocol, scripted per test.

POST /v1/chat/completions answers with a plain JSON ``chat.completion`` or,
when the request says ``"stream": true``, a ``text/event-stream`` of
``chat.completion.chunk`` objects (``choices[0].delta.content``) ending with
``data: [DONE]``: the shapes of ``openai.types.chat.ChatCompletion`` and
``ChatCompletionChunk``. Every request is recorded so a test can read the
prompt and the model name it was sent.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    """What the server answers to the next requests."""

    text: str = ""
    status: int = 200  # anything else: an OpenAI-style error body with this status
    delay_s: float = 0.0  # wait this long before the response headers (to outlast a client timeout)
    chunk_chars: int = 4  # characters of content per streamed chunk
    finish_reason: str = "stop"


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict

    @property
    def model(self) -> str:
        return self.body.get("model", "")

    @property
    def prompt(self) -> str:
        """Every message's content, joined: what the model was shown."""
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []))


@dataclass
class FakeOpenAI:
    """Start with ``with FakeOpenAI() as server:``; point a client at ``server.base_url``."""

    reply: Reply = field(default_factory=Reply)
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, reply: Reply) -> None:
        self.reply = reply

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()  # wakes a handler that is sleeping out a timeout
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(RecordedRequest(self.path, dict(self.headers), body))
                reply = fake.reply
                if reply.delay_s:
                    fake._stopping.wait(reply.delay_s)
                try:
                    if self.path.rstrip("/") != "/v1/chat/completions":
                        self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    elif reply.status != 200:
                        self._send_json(reply.status, {"error": {"message": "scripted failure", "type": "server_error"}})
                    elif body.get("stream"):
                        self._send_stream(body, reply)
                    else:
                        self._send_json(200, completion(body.get("model", ""), reply))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing left to answer

            def _send_json(self, status: int, payload: dict) -> None:
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _send_stream(self, body: dict, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()  # HTTP/1.0: the stream ends when the connection closes
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                for payload in stream_chunks(body.get("model", ""), reply, include_usage):
                    self.wfile.write(f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode("utf-8"))
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        return Handler


def completion(model: str, reply: Reply) -> dict:
    """A ``chat.completion`` object."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.text},
            "finish_reason": reply.finish_reason,
            "logprobs": None,
        }],
        "usage": {"prompt_tokens": 10, "completion_tokens": len(reply.text), "total_tokens": 10 + len(reply.text)},
    }


def stream_chunks(model: str, reply: Reply, include_usage: bool = False) -> list[dict]:
    """The ``chat.completion.chunk`` objects of a streamed reply: role, content pieces, finish."""

    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }

    step = max(1, reply.chunk_chars)
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": reply.text[i : i + step]}) for i in range(0, len(reply.text), step)]
    chunks.append(chunk({}, reply.finish_reason))
    if include_usage:
        chunks.append({**chunk({}), "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}})
    return chunks
