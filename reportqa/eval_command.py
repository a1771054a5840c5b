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

from .config import Settings
from .service import ReportQA

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
@click.pass_context
def eval_command(ctx: click.Context, set_path: Path | None, out_dir: Path | None, systems: list[str],
                 **thresholds) -> None:
    """Score answers, citations, refusals and retrieval on the evaluation set; compare with baselines."""
    settings = (ctx.obj or {}).get("settings") or Settings()
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

