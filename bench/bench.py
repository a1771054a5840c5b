"""Benchmark (not a test): ingest time, cold start and query latency on this machine.

Writes reports/bench.json and prints a Markdown table for the README.
Run: .venv/bin/python bench/bench.py
"""
from __future__ import annotations

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

from reportqa.config import Settings  # noqa: E402
from reportqa.service import ReportQA  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
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
    out = ROOT / "reports"
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")
    print("| measure | value |\n|---|---|")
    for key, value in numbers.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
