"""CI's quality gate: `reportqa eval` on the full evaluation set, as staff run it.

Thresholds sit just under today's numbers (README, "Measured"): a change that
loses more than two or three items on any headline metric fails CI, and the
groundedness check may never slip.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EVAL_SET = PROJECT_ROOT / "data" / "evals" / "qa.jsonl"
GATES = {
    "--min-fact-accuracy": "0.75",
    "--min-refusal-f1": "0.67",
    "--min-groundedness": "1.0",
    "--min-citation-precision": "0.84",
    "--min-recall-at-5": "0.93",
}


@pytest.mark.slow
def test_full_evaluation_passes_the_quality_gates(built_settings, tmp_path):
    out = tmp_path / "eval"
    args = [arg for pair in GATES.items() for arg in pair]
    result = subprocess.run(
        [sys.executable, "-m", "reportqa.cli", "--data-dir", str(built_settings.data_dir), "eval",
         "--set", str(EVAL_SET), "--out", str(out), *args],
        capture_output=True, text=True, timeout=900,
    )
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["systems"]) == {"ours", "bm25", "dense", "langchain"}
    assert summary["n_items"] == sum(1 for line in EVAL_SET.read_text(encoding="utf-8").splitlines() if line.strip())
    for name in ("results.jsonl", "report.md", "chart.png"):
        assert (out / name).stat().st_size > 0
    items = sum(1 for line in EVAL_SET.read_text(encoding="utf-8").splitlines() if line.strip())
    rows = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 4 * items  # every item through every system
