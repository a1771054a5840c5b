"""The 报告原文 tab: one report in full at a time, with a quote marked when a source card sends a reader here."""
from __future__ import annotations

import logging

import gradio as gr

from core.errors import ReportQAError

from .render import render_report_html

logger = logging.getLogger(__name__)


def build_report_tab(qa, request: gr.Textbox) -> tuple[gr.Dropdown, gr.HTML]:
    """One report in full at a time (a portal may hold thousands), chosen from a list.

    查看原文 on a source card asks for the cited report through a hidden box
    (``request``: SOURCE_JS writes the file name into it) when another one is shown.
    """
    reports = indexed_reports(qa)
    first = reports[0].source if reports else None

    def render(source: str | None) -> str:
        return render_report_html(_source_text(qa, source), _titles(indexed_reports(qa)))

    pick = gr.Dropdown(choices=[(f"《{r.display_title}》", r.source) for r in reports],
                       value=first, label="选择报告", elem_id="rqa-report-pick", visible=len(reports) > 1,
                       filterable=True)
    shown = gr.HTML(render(first), elem_id="rqa-report", padding=False)
    pick.input(render, inputs=[pick], outputs=[shown], api_visibility="private", show_progress="hidden")

    def show(request_value: str):
        source = (request_value or "").split("\n")[0]
        return (source, render(source)) if source else (gr.skip(), gr.skip())

    request.change(show, inputs=[request], outputs=[pick, shown], api_visibility="private", show_progress="hidden")
    return pick, shown


def report_pick_update(qa, reports: list) -> tuple:
    """The report list and the first report's text, as a page load refreshes them (the index may have
    changed since the page was built)."""
    first = reports[0].source if reports else None
    return (gr.update(choices=[(f"《{r.display_title}》", r.source) for r in reports], value=first,
                      visible=len(reports) > 1), render_report_html(_source_text(qa, first), _titles(reports)))


def _titles(reports: list) -> dict[str, str]:
    """File name -> title: the tab is headed by the report's title, not its file name (read each time: staff
    may have swapped in reports since the page was built)."""
    return {r.source: r.title for r in reports if r.title}


def _source_text(qa, source: str | None) -> dict[str, str]:
    """{source: its text} for the report tab; {} when it cannot be read (logged)."""
    if not source:
        return {}
    try:
        return {source: qa.report_text(source)}
    except ReportQAError as exc:
        logger.warning("could not show report %r: %s", source, exc)
        return {}


def indexed_reports(qa) -> list:
    """The service's indexed reports (ReportInfo), or none when the index cannot be read."""
    try:
        return qa.reports()
    except ReportQAError:
        return []  # the header already says what is wrong
