"""What every part of the page shares: the theme (system fonts only), the CSS and the page script (asset
files), how a notice is shown, and the queue's limits."""
from __future__ import annotations

import html
import json
from pathlib import Path

import gradio as gr

ASSETS = Path(__file__).resolve().parent / "assets"
APP_TITLE = "报告问答"
GENERIC_ERROR_ZH = "抱歉，系统出了点问题，暂时无法回答。请稍后再试。"
BUSY_ZH = "当前提问的人较多，请稍后再试。"
CACHE_CLEANUP = (3600, 3600)  # Gradio's delete_cache: every hour, files older than an hour

# Answers take ~25 ms of CPU on 2 cores: two at a time keep both busy. Past QUEUE_MAX_SIZE waiting
# events a new one is turned away at once (HTTP 503) instead of hanging; the page's script
# turns Gradio's English notice into BUSY_ZH. reportqa.server serves the app.
CONCURRENCY_LIMIT = 2
QUEUE_MAX_SIZE = 64

# System font stacks only: no GoogleFont, so the page loads nothing from the internet.
_SANS = ["PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC",
         "Source Han Sans SC", "WenQuanYi Micro Hei"]

_MONO = ["SFMono-Regular", "Menlo", "Consolas", "Noto Sans Mono CJK SC"]

THEME = gr.themes.Default(
    font=[gr.themes.Font(name) for name in _SANS] + ["system-ui", "sans-serif"],
    font_mono=[gr.themes.Font(name) for name in _MONO] + ["ui-monospace", "monospace"],
)


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


CSS = _asset("page.css") + _asset("staff.css")
# One page-wide script: a click on a card's 查看原文 opens the 报告原文 tab, marks the quote by its
# offsets (<mark id="rqa-hl">) and scrolls to it; the queue-full notice is said in Chinese.
SOURCE_JS = _asset("page.js").replace("BUSY_ZH", json.dumps(BUSY_ZH, ensure_ascii=False))
COPY_JS = _asset("copy.js")


def esc(text) -> str:
    """Any text made safe to put into HTML."""
    return html.escape(str(text or ""), quote=True)


def warn(message_zh: str) -> None:
    """A notice at the top of the page, titled 提示; the message is escaped like all text."""
    gr.Warning(esc(message_zh), title="提示")


def skip(n: int) -> tuple:
    """``n`` outputs left as they are."""
    return tuple(gr.skip() for _ in range(n))
