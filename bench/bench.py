"""Benchmark (not a test): ingest time, cold start and query latency on this machine.

The single real report in this process, then the scale benchmark
(bench/scale.py: 1, 1,000 and 10,000 reports, ours beside the LangChain recipe;
about 30 minutes). Writes reports/bench.json (the scale numbers under "scale")
and prints Markdown tables for the README.
Run: .venv/bin/python bench/bench.py [--quick | --sizes 1,1000,10000 | --no-scale]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import scale  # noqa: E402

from core.stats import percentile  # noqa: E402
from reportqa.config import Settings  # noqa: E402
from reportqa.runtime import settle_loaded_index  # noqa: E402
from reportqa.service import ReportQA  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,1000,10000", help="report counts of the scale benchmark")
    parser.add_argument("--quick", action="store_true",
                        help="scale at 1 and 100 reports, 3 really embedded, one pass (a few minutes)")
    parser.add_argument("--no-scale", action="store_true", help="the single report only")
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in (ROOT / "data/evals/qa.jsonl").open(encoding="utf-8")]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(ROOT / "data" / "raw", data / "raw")
        settings = Settings(data_dir=data)

        t0 = time.perf_counter()
        result = ReportQA(settings).ingest()
        ingest_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        first = subprocess.run([sys.executable, "-m", "reportqa.cli", "--data-dir", str(data), "ask", "--json",
                                "全市建成了多少个便民服务站？"], capture_output=True, text=True, check=True)
        cold_s = time.perf_counter() - t0
        assert "1726" in json.loads(first.stdout)["answer"]

        qa = ReportQA(settings)
        qa.load()
        settle_loaded_index()  # as `serve` does
        retrieve, total = [], []
        for _ in range(3):
            for question in questions:
                t0 = time.perf_counter()
                answer = qa.ask(question)
                total.append((time.perf_counter() - t0) * 1000)
                retrieve.append(answer.timings_ms["retrieve"])

    numbers = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "chunks": result.manifest.chunk_count,
        "sentences": result.manifest.sentence_count,
        "ingest_single_report_s": round(ingest_s, 2),
        "ingest_chunks_per_s": round(result.manifest.chunk_count / ingest_s, 1),
        "cold_start_first_answer_s": round(cold_s, 2),
        "queries": len(total),
        "retrieve_ms_p50": round(statistics.median(retrieve), 1),
        "retrieve_ms_p95": round(percentile(retrieve, 95), 1),
        "answer_ms_p50": round(statistics.median(total), 1),
        "answer_ms_p95": round(percentile(total, 95), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
    }
    print("| measure | value |\n|---|---|")
    for key, value in numbers.items():
        print(f"| {key} | {value} |")
    out = ROOT / "reports"
    out.mkdir(exist_ok=True)
    if not args.no_scale:
        if args.quick:
            numbers["scale"] = scale.run([1, 100], passes=1, cold_runs=1, small_folder=3)
        else:
            numbers["scale"] = scale.run([int(n) for n in args.sizes.split(",")])
        print(scale.markdown(numbers["scale"]))
    (out / "bench.json").write_text(json.dumps(numbers, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
