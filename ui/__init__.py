"""The Gradio web UI for ReportQA."""
from .app import build_app, launch

__all__ = ["build_app", "launch"]
