"""Ingest benchmark (not a test): every report of the shared corpus, parsed and chunked.

Prints, per file: title, issuer, year, sections, paragraphs, chunks and parse time
(load_report + chunk_document in this process, the median of --repeat runs), as a
Markdown table for the README. The corpus is third-party text read where it lies
(../shared/corpus by default); nothing is written.

Run: .venv/bin/python bench/corpus_ingest.py [--corpus ../shared/corpus] [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.chunker import chunk_document  # noqa: E402
from ingest.loader import find_reports, load_report  # noqa: E402
from reportqa.errors import ReportFileError  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"


def measure(path: Path, repeat: int) -> dict:
    """One report's metadata and counts, and its median parse time in milliseconds."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        doc = load_report(path)
        chunks = chunk_document(doc)
        timings.append((time.perf_counter() - started) * 1000)
    return {"file": path.name, "title": doc.title, "issuer": doc.issuer or "—", "year": doc.year or "—",
            "sections": len(doc.headings), "paragraphs": len(doc.paragraphs), "chunks": len(chunks),
            "table rows": sum(1 for c in chunks if c.context), "ms": statistics.median(timings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of reports (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per file; the median time is shown")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        parser.error(f"no corpus folder at {args.corpus}; pass --corpus")
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")

    columns = ["file", "title", "issuer", "year", "sections", "paragraphs", "chunks", "table rows", "ms"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    total = 0.0
    for path in (p for p in find_reports([args.corpus]) if p.name != "SOURCES.md"):  # the folder's own notes
        try:
            row = measure(path, args.repeat)
        except ReportFileError as exc:
            print(f"| {path.name} | skipped: {exc.message} |" + " |" * (len(columns) - 2))
            continue
        total += row["ms"]
        cells = [str(row[c]) if c != "ms" else f"{row[c]:.0f}" for c in columns]
        print("| " + " | ".join(cells) + " |")
    print(f"\nTotal parse time {total:.0f} ms (median of {args.repeat} run(s) per file, in-process converters).")


if __name__ == "__main__":
    main()
