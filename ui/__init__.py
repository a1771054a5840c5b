"""The Gradio web UI for ReportQA (served by reportqa.server)."""
from .app import build_app

__all__ = ["build_app"]
