"""Scanned PDFs: the real report rendered to image-only PDFs (plain, skewed, low resolution) is read by OCR
with the accuracy README states, ingested, answered from, and its citations say the passage was OCR'd."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, REPORT
from scans import char_accuracy, numbers_found, write_scan
from test_formats import write_pdf

from core.errors import ReportFileError
from core.types import Chunk
from ingest.formats import ParseLimits, _page_lines, pdf_to_text
from ingest.loader import load_report
from ingest.ocr import OcrSettings, file_digest, normalise, page_summary, passage_confidence
from ingest.sandbox import ConverterProcess
from reportqa.config import Settings
from reportqa.service import ReportQA

pytestmark = pytest.mark.slow
STATIONS = "全市建成了多少个便民服务站？"


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> dict[str, Path]:
    """The report as a text PDF (3 A4 pages, 12 pt) and its scans; one OCR cache for the module."""
    folder = tmp_path_factory.mktemp("scans")
    text_pdf = write_pdf(REPORT.read_text(encoding="utf-8"), folder / "text.pdf")
    made = {"text": text_pdf, "cache": folder / "ocr-cache"}
    made["plain"] = write_scan(text_pdf, folder / "scan-plain.pdf", "plain")
    for variant in ("skew", "low"):  # one page each: OCR costs 5-25 s a page on this machine
        made[variant] = write_scan(text_pdf, folder / f"scan-{variant}-p1.pdf", variant, pages=[1])
    return made


def _limits(scans, **ocr) -> ParseLimits:
    return ParseLimits(ocr=OcrSettings(cache_dir=str(scans["cache"]), **ocr))


def _page_text(pdf: Path, number: int) -> str:
    import pypdf

    return "\n".join(line.text for line in _page_lines(pypdf.PdfReader(str(pdf)).pages[number - 1]))


def test_ocr_text_is_normalised_the_way_the_parser_reads_text():
    assert normalise("《法治政府建设实施纲要（2021一2025年）》") == "《法治政府建设实施纲要(2021—2025年)》"
    assert normalise("全市建成便民服务站１７２６个， 300个") == "全市建成便民服务站1726个,300个"
    assert normalise("一、主要工作") == "一、主要工作"  # 一 between non-digits stays
    spans = [(0, 10, 0.99), (10, 20, 0.71), (30, 40, 0.95)]
    assert passage_confidence(spans, 5, 12) == 0.71 and passage_confidence(spans, 20, 30) is None
    assert page_summary([(0, 1), (25, 2)], spans) == [(1, 2, 0.85, 0.71), (2, 1, 0.95, 0.95)]


def test_the_time_cap_of_an_ocr_file_grows_with_its_pages_and_still_stops_it(scans):
    """A 10 s cap per file would kill the OCR of 3 pages; each page to read adds its budget to the cap."""
    events = []
    generous = ParseLimits(max_seconds=10, ocr=OcrSettings(seconds_per_page=600, cache_dir=str(scans["cache"])))
    started = time.perf_counter()
    with ConverterProcess(generous, lambda name, event: events.append(event)) as converter:
        assert "大连市2023年法治政府建设情况报告" in converter.convert(scans["plain"], "plain.pdf").text
    seconds = time.perf_counter() - started
    print(f"\nOCR of the 3-page scan in the converter process: {seconds:.1f} s ({seconds / 3:.1f} s a page)")
    assert seconds > 10 and events == [("ocr", 0, 3), ("ocr", 1, 3), ("ocr", 2, 3), ("ocr", 3, 3)]
    events.clear()
    tight = ParseLimits(max_seconds=10, ocr=OcrSettings(seconds_per_page=0.5))  # no cache: every page is read
    with ConverterProcess(tight, lambda name, event: events.append(event)) as converter:
        with pytest.raises(ReportFileError, match=r"took longer than 11.5 s"):
            converter.convert(scans["plain"], "plain.pdf")
    assert events[0] == ("ocr", 0, 3)


def test_scans_are_read_with_the_measured_accuracy(scans):
    """Character accuracy and numbers per variant (page 1: ~1,000 characters, 22 numbers); README quotes these.
    (The plain scan's pages were read by the test before; seconds are for the skewed and low ones.)"""
    reference = _page_text(scans["text"], 1)
    measured = {}
    for variant in ("plain", "skew", "low"):
        started = time.perf_counter()
        converted = pdf_to_text(scans[variant], f"{variant}.pdf", _limits(scans))
        seconds = time.perf_counter() - started
        page_one = converted.text[: next((s for s, page in converted.pages if page == 2), None)]
        found, total = numbers_found(reference, page_one)
        measured[variant] = (round(char_accuracy(reference, page_one), 4), found, total, round(seconds, 1))
        assert converted.ocr and all(0 < c <= 1 for *_, c in converted.ocr)
    print("\nOCR of page 1 (accuracy, numbers found, numbers, seconds):", measured)
    assert measured["plain"][0] >= 0.99 and measured["plain"][1] == measured["plain"][2]
    assert measured["skew"][0] >= 0.99 and measured["skew"][1] == measured["skew"][2]
    assert measured["low"][0] >= 0.98 and measured["low"][1] >= measured["low"][2] - 2  # 100 dpi, 12 pt, blurred


def test_a_scan_parses_to_the_same_sections_as_the_text_pdf(scans):
    scanned = load_report(scans["plain"], limits=_limits(scans))
    text = load_report(scans["text"])
    assert scanned.title == text.title == "大连市2023年法治政府建设情况报告"
    # The same sections and paragraphs; a heading may differ by a misread character (引[领), so count them.
    assert [h for h in scanned.headings if len(h) == 1] == [h for h in text.headings if len(h) == 1]
    assert [h[1][:3] for h in scanned.headings if len(h) == 2] == [h[1][:3] for h in text.headings if len(h) == 2]
    assert len(scanned.paragraphs) == len(text.paragraphs)
    assert all(char_accuracy(b.text, a.text) > 0.97 for a, b in zip(scanned.paragraphs, text.paragraphs))
    assert (scanned.issuer, scanned.year) == ("大连市", 2023)
    assert [p for p, *_ in page_summary(scanned.pages, scanned.ocr)] == [1, 2, 3]
    assert all(0.9 < mean <= 1 for _, _, mean, _ in page_summary(scanned.pages, scanned.ocr))
    for start, end, _ in scanned.ocr:
        assert scanned.text[start:end].strip()


def test_a_scanned_report_is_ingested_answered_and_its_citations_say_ocr(scans, tmp_path):
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    shutil.copy(scans["plain"], data / "raw" / "dalian-scan.pdf")
    if scans["cache"].is_dir():  # the pages read by the tests above: not read again
        shutil.copytree(scans["cache"], data / "ocr-cache")
    settings = Settings(data_dir=data)
    qa = ReportQA(settings)
    result = qa.ingest()
    assert result.parsed == ["dalian-scan.pdf"], result.skipped
    answer = qa.ask(STATIONS)
    assert "1726" in answer.text and not answer.refused
    cited = answer.citations[0].to_dict()
    assert cited["page"] == 1 and 0.9 < cited["ocr"] <= 1
    assert qa.report_text("dalian-scan.pdf")[cited["start"]:cited["end"]] == cited["quote"]
    assert all(c.ocr is not None for c in qa.index.chunks)
    # The cache (the module's other scans copied in with it) holds the 3 pages of this one, by its sha256.
    cached = data / "ocr-cache" / f"{file_digest(data / 'raw' / 'dalian-scan.pdf')}.json"
    assert len(json.loads(cached.read_text(encoding="utf-8"))["pages"]) == 3

    # Read again (a sidecar changes the file's fingerprint): the cached pages are used, no page is OCR'd.
    (data / "raw" / "dalian-scan.pdf.meta.json").write_text('{"url": "https://www.dl.gov.cn/r.html"}')
    events = []
    with ConverterProcess(settings.parse_limits, lambda name, event: events.append(event)) as converter:
        converter.convert(data / "raw" / "dalian-scan.pdf", "dalian-scan.pdf")
    assert events == [("ocr", 0, 0)]


def test_with_ocr_off_a_scan_is_skipped_with_the_reason(scans):
    with pytest.raises(ReportFileError, match="REPORTQA_OCR=false") as info:
        load_report(scans["skew"], limits=ParseLimits(ocr=OcrSettings(enabled=False)))
    assert "扫描" in info.value.message_zh
    with pytest.raises(ReportFileError, match="pages to read by OCR 3 is over the limit of 2"):
        load_report(scans["plain"], limits=_limits(scans, max_pages=2))


def test_chunks_of_an_index_built_before_ocr_load_as_text_layer_chunks():
    row = {"chunk_id": "x", "source": "r.txt", "doc_title": "t", "section_path": [], "paragraph": 1, "start": 0,
           "end": 2, "text": "文字"}
    assert Chunk.from_dict(row).ocr is None


def test_the_engine_loads_and_reads_with_no_network(scans, tmp_path):
    """RapidOCR's models ship inside its wheel: in a process with no network interface it still reads a page."""
    script = ("import sys; from pathlib import Path; from ingest.formats import pdf_to_text;"
              "print(pdf_to_text(Path(sys.argv[1]), 'p.pdf').text[:40])")
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", script, str(scans["skew"])], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"cannot drop the network here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr[-800:]
    assert "大连市2023年法治政府建设情况报告" in done.stdout
