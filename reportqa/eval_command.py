"""`reportqa eval`: run the evaluation set through the systems, write the report, gate on thresholds."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from core.errors import ReportQAError
from evals.dataset import load_eval_set
from evals.report import PRIMARY, systems_table, write_outputs
from evals.runner import run_eval
from evals.systems import SYSTEM_NAMES, build_systems, read_sources

from .config import PROJECT_ROOT, Settings
from .service import ReportQA

DEFAULT_CORPUS = PROJECT_ROOT.parent / "shared" / "corpus"

# option name -> (summary key, what a reader calls it)
GATES = {
    "min_fact_accuracy": ("fact_accuracy", "fact accuracy"),
    "min_refusal_f1": ("refusal_f1", "refusal F1"),
    "min_groundedness": ("groundedness", "groundedness"),
    "min_citation_precision": ("citation_precision", "citation precision"),
    "min_recall_at_5": ("recall@5", "recall@5"),
}


def _parse_systems(ctx, param, value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in SYSTEM_NAMES]
    if unknown or not names:
        raise click.BadParameter(f"got {value!r}; use a comma-separated subset of {','.join(SYSTEM_NAMES)}")
    return list(dict.fromkeys(names))


def missed_thresholds(overall: dict, thresholds: dict[str, float | None]) -> list[str]:
    """One message per threshold the overall metrics of ours fall short of."""
    missed = []
    for option, minimum in thresholds.items():
        if minimum is None:
            continue
        key, label = GATES[option]
        value = overall.get(key)
        flag = "--" + option.replace("_", "-")
        if value is None:
            missed.append(f"{label} is n/a on this set, so {flag} {minimum} cannot be met")
        elif value < minimum:
            missed.append(f"{label} {value:.3f} is below {flag} {minimum}")
    return missed


@click.command("eval")
@click.option("--set", "set_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Evaluation set (JSONL; default DATA_DIR/evals/qa.jsonl).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for results.jsonl, summary.json, report.md, chart.png (default DATA_DIR/eval).")
@click.option("--systems", default=",".join(SYSTEM_NAMES), show_default=True, callback=_parse_systems,
              help="Comma-separated systems to compare.")
@click.option("--min-fact-accuracy", type=float, help="Fail unless ours reaches this fact accuracy.")
@click.option("--min-refusal-f1", type=float, help="Fail unless ours reaches this refusal F1.")
@click.option("--min-groundedness", type=float, help="Fail unless ours reaches this groundedness.")
@click.option("--min-citation-precision", type=float, help="Fail unless ours reaches this citation precision.")
@click.option("--min-recall-at-5", type=float, help="Fail unless ours reaches this recall@5.")
@click.option("--cross-validate", is_flag=True,
              help="The development set over real reports instead: each report indexed and asked alone, the reply "
                   "policy fitted on the others (leave-one-report-out); tables per report, category and stage.")
@click.option("--corpus", "corpus_dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --cross-validate: the folder of the corpus reports (default ../shared/corpus).")
@click.option("--reports", "only_reports", help="With --cross-validate: a comma-separated subset of report file names.")
@click.pass_context
def eval_command(ctx: click.Context, set_path: Path | None, out_dir: Path | None, systems: list[str],
                 cross_validate: bool, corpus_dir: Path | None, only_reports: str | None, **thresholds) -> None:
    """Score answers, citations, refusals and retrieval on the evaluation set; compare with baselines."""
    settings = (ctx.obj or {}).get("settings") or Settings()
    if cross_validate:
        return _cross_validate(settings, out_dir or settings.eval_out_path / "dev", corpus_dir or DEFAULT_CORPUS,
                               [n.strip() for n in (only_reports or "").split(",") if n.strip()])
    set_path = set_path or settings.eval_set_path
    out_dir = out_dir or settings.eval_out_path
    if not set_path.is_file():
        raise click.BadParameter(f"no evaluation set at {set_path}", param_hint="--set")
    if any(v is not None for v in thresholds.values()) and PRIMARY not in systems:
        raise click.BadParameter(f"thresholds apply to {PRIMARY!r}; add it to --systems", param_hint="--systems")
    loaded = load_eval_set(set_path)
    for error in loaded.errors:
        click.secho(f"warning: {set_path.name} {error} (item skipped)", fg="yellow", err=True)
    if not loaded.items:
        raise click.ClickException(f"{set_path} has no valid items to evaluate")

    try:
        qa = ReportQA(settings)
        qa.ensure_index(progress=lambda msg: click.echo(msg, err=True))
        built = build_systems(systems, qa)
        with click.progressbar(length=len(loaded.items) * len(built), label="Evaluating",
                               file=sys.stderr) as bar:
            run = run_eval(loaded.items, built, progress=lambda _: bar.update(1), sources=read_sources(qa))
    except ReportQAError as exc:
        raise click.ClickException(exc.message) from None

    try:
        write_outputs(run, out_dir)
    except OSError as exc:
        raise click.ClickException(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    summary = run.summary()
    click.echo(systems_table(summary))
    click.echo(f"\n{len(loaded.items)} items in {run.duration_s:.0f} s; report: {out_dir / 'report.md'}")
    if PRIMARY in systems:
        missed = missed_thresholds(summary["systems"][PRIMARY]["overall"], thresholds)
        if missed:
            raise click.ClickException(f"{PRIMARY} missed {len(missed)} threshold(s): " + "; ".join(missed))



def _dev_reports(settings: Settings, corpus_dir: Path, only: list[str]):
    from evals.dev import load_dev_reports

    sets = [settings.eval_set_path, *sorted((settings.eval_set_path.parent / "corpus").glob("*.jsonl"))]
    shipped = sorted(p.name for p in settings.raw_path.iterdir() if p.is_file())[:1]
    try:
        reports = load_dev_reports(sets, [corpus_dir, settings.raw_path], shipped[0] if shipped else "")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    unknown = sorted(set(only) - {r.name for r in reports})
    if unknown:
        raise click.ClickException(f"no evaluation set names {', '.join(unknown)}; reports with one: "
                                   + ", ".join(r.name for r in reports))
    return [r for r in reports if not only or r.name in only]


def _cross_validate(settings: Settings, out_dir: Path, corpus_dir: Path, only: list[str]) -> None:
    """`reportqa eval --cross-validate`: the development set, each report alone, its model fitted on the others."""
    import json

    from evals.crossval import calibration, cross_validate
    from evals.dev import markdown, missed_targets, write_run

    reports = _dev_reports(settings, corpus_dir, only)
    total = sum(len(r.items) for r in reports)
    with click.progressbar(length=total, label="Cross-validating", file=sys.stderr) as bar:
        try:
            results = cross_validate(reports, lambda report: report_service(settings, report.path),
                                     progress=lambda msg: click.echo(f"\n{msg}", err=True),
                                     on_result=lambda _: bar.update(1))
        except ReportQAError as exc:
            raise click.ClickException(exc.message) from None
    run = write_run(results, out_dir)
    reliability = calibration(results)
    (out_dir / "calibration.json").write_text(json.dumps(reliability, ensure_ascii=False, indent=1), encoding="utf-8")
    click.echo(markdown(run))
    click.echo("confidence of direct answers (leave-one-report-out): "
               + "; ".join(f"{b['bin']}: {b['n']} answers, {b['right']:.0%} right" for b in reliability))
    click.echo(f"{total} items of {len(reports)} reports; report: {out_dir / 'report.md'}")
    for miss in missed_targets(run["overall"]):
        click.echo(f"target missed: {miss}", err=True)


@click.command("train")
@click.option("--corpus", "corpus_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The folder of the corpus reports (default ../shared/corpus).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the model (default DATA_DIR/models/answer-model.json).")
@click.option("--reports", "only", default="", help="A comma-separated subset of report file names (default: all).")
@click.pass_context
def train_command(ctx: click.Context, corpus_dir: Path | None, out_path: Path | None, only: str) -> None:
    """Refit the answer model (sentence choice, confidence, reply kind) on every evaluation set."""
    from core.files import replace_atomically
    from evals.crossval import fit_model, trace_items

    settings = (ctx.obj or {}).get("settings") or Settings()
    reports = _dev_reports(settings, corpus_dir or DEFAULT_CORPUS, [name for name in only.split(",") if name])
    traced = []
    with click.progressbar(reports, label="Tracing the evaluation items", file=sys.stderr) as bar:
        for report in bar:
            try:
                traced += trace_items(report_service(settings, report.path), report.name, report.items)
            except ReportQAError as exc:
                click.secho(f"\nwarning: {report.name} skipped: {exc.message}", fg="yellow", err=True)
    if not traced:
        raise click.ClickException("no evaluation item could be traced: nothing to fit the model on")
    model = fit_model(traced)
    out_path = out_path or settings.trained_model_path
    out_path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(out_path, model.to_json() + "\n")
    click.echo(f"Fitted on {len(traced)} items of {len(model.trained_on)} reports -> {out_path} "
               f"(direct threshold {model.direct_threshold}, covered threshold {model.covered_threshold})")


def report_service(settings: Settings, report: Path) -> ReportQA:
    """A service over ``report`` alone, its index kept in a cache outside the project (reused next time)."""
    import shutil
    import tempfile

    folder = Path(tempfile.gettempdir()) / "reportqa-dev-cache" / report.name
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    copy = raw / report.name
    if not copy.is_file() or copy.read_bytes() != report.read_bytes():
        shutil.copyfile(report, copy)
    qa = ReportQA(settings.model_copy(update={"data_dir": folder, "raw_dir": None, "index_dir": None,
                                              "answer_model": settings.answer_model_path}))
    qa.ensure_index()
    return qa
