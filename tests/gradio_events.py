"""Calling a served Gradio app's events the way any browser (or attacker) can: the queue protocol over HTTP.

``POST {prefix}/queue/join`` with the event's ``fn_index`` and data, then read
``{prefix}/queue/data`` (server-sent events) until the event completes. Nothing
here knows our app; it is what a stranger with curl would do.
"""
from __future__ import annotations

import json
import secrets

import httpx

PREFIX = "/gradio_api"


def new_session() -> str:
    return secrets.token_hex(6)


def config(base: str) -> dict:
    return httpx.get(base.rstrip("/") + "/config", timeout=30).json()


def call_event(base: str, fn_index: int, data: list, session_hash: str, trigger_id: int | None = None,
               event_data=None, timeout: float = 60.0) -> dict:
    """Run one event; returns {"status": http status of the join, "messages": [...], "output": data or None,
    "success": bool or None}."""
    base = base.rstrip("/")
    body = {"data": data, "fn_index": fn_index, "session_hash": session_hash, "trigger_id": trigger_id,
            "event_data": event_data}
    # Escaped as a browser's JSON.stringify does, so a lone surrogate travels as "\\ud800".
    joined = httpx.post(base + PREFIX + "/queue/join", content=json.dumps(body, ensure_ascii=True),
                        headers={"content-type": "application/json"}, timeout=timeout)
    result = {"status": joined.status_code, "messages": [], "output": None, "success": None, "join": joined.text}
    if joined.status_code != 200:
        return result
    event_id = joined.json().get("event_id")
    with httpx.stream("GET", base + PREFIX + "/queue/data", params={"session_hash": session_hash},
                      timeout=timeout) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("event_id") not in (None, event_id):
                continue
            result["messages"].append(message)
            if message.get("msg") == "process_completed":
                result["success"] = message.get("success")
                result["output"] = (message.get("output") or {}).get("data")
                break
            if message.get("msg") == "close_stream":
                break
    return result


def sample_value(component: dict, text: str):
    """A value of the right shape for an input component, with ``text`` wherever text goes."""
    kind, props = component["type"], component.get("props", {})
    if kind in ("textbox", "markdown", "html"):
        return text
    if kind == "checkbox":
        return True
    if kind == "number":
        return 1
    if kind == "dropdown":
        return props.get("value")
    if kind == "chatbot":
        return [{"role": "user", "content": text}]
    if kind == "dataframe":
        return props.get("value")
    if kind == "dataset":
        return 0
    return None  # state, api and anything else: the server ignores or fills it


def call_api(base: str, api_name: str, data: list, timeout: float = 60.0) -> tuple[str, object]:
    """A named endpoint through Gradio's plain HTTP API (``/call/<name>``): (the last event's name, its data)."""
    base = base.rstrip("/")
    posted = httpx.post(f"{base}{PREFIX}/call/{api_name}", content=json.dumps({"data": data}, ensure_ascii=True),
                        headers={"content-type": "application/json"}, timeout=timeout)
    if posted.status_code != 200:
        return f"http {posted.status_code}", posted.text
    event_id = posted.json()["event_id"]
    event, payload = "", None
    with httpx.stream("GET", f"{base}{PREFIX}/call/{api_name}/{event_id}", timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                payload = json.loads(line[5:]) if line[5:].strip() not in ("", "null") else None
                if event in ("complete", "error"):
                    break
    return event, payload
