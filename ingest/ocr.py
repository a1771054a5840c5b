"""Text for PDF pages that have none: scanned pages read by RapidOCR (PP-OCR Chinese models inside its wheel).

Chosen over Tesseract by measurement (README "Scanned PDFs"): on pages of the shipped report rendered as
plain, skewed and low-resolution scans it reads 0.994-0.997 of the characters and every number, where
Tesseract loses numbers on skewed and 72-dpi pages. Configured as measured: no angle classifier (it
flips good lines into garbage), recognition one line at a time (batches are padded and twice as slow
on this CPU), one onnxruntime thread (a second one only helps on an idle machine).

Runs inside the converter child process (``ingest.sandbox``) with its memory cap and a time budget
that grows with the pages to read (``OcrSettings.seconds_per_page``). Results are cached per file
and page (``cache_dir``), so a report parsed when it is uploaded is not read again when it is indexed.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import statistics
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import ReportFileError

ENGINE = "rapidocr-onnxruntime 1.4.4, use_cls=False, rec_batch_num=1"
# Lines below this confidence are counted as doubtful in the parse result (a misread line scores ~0.5).
LOW_CONFIDENCE = 0.8
# An em dash between digits is read as 一 or - (2021—2025年 → 2021一2025年): put it back.
_DASH_BETWEEN_DIGITS = re.compile(r"(?<=\d)[一\-－](?=\d)")
# Spaces OCR puts into Chinese text; only a space between two Latin words or numbers is kept (Page 1 of 9).
_STRAY_SPACE = re.compile(r"(?<![A-Za-z0-9])\s+|\s+(?![A-Za-z0-9])")


@dataclass(frozen=True)
class OcrSettings:
    """Whether and how pages without a text layer are read; part of ``ingest.formats.ParseLimits``."""

    enabled: bool = True
    seconds_per_page: float = 60.0  # added to the file's time cap for each page to read (~5-15 s on 2 cores)
    max_pages: int = 300  # a scan with more pages to read is skipped with the reason
    dpi: int = 200  # pages are rasterised at this resolution (what was measured)
    cache_dir: str | None = None  # where read pages are kept (per file hash); None: not kept

    def __post_init__(self) -> None:
        for name in ("seconds_per_page", "max_pages", "dpi"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class OcrLine:
    """One line as read: its text and confidence, and its box in PDF points (x left to right, y top down)."""

    text: str
    confidence: float
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class OcrPage:
    """One page read by OCR (1-based ``number``), its size in points and its lines in reading order."""

    number: int
    width: float
    height: float
    lines: tuple[OcrLine, ...]


Progress = Callable[[tuple], None]  # ("ocr", pages done, pages to read)


class OcrUnavailable(ReportFileError):
    """The OCR engine is not installed (or does not load)."""


def normalise(text: str) -> str:
    """An OCR'd line as the parser reads text: NFKC (full-width digits and marks folded, as RapidOCR
    mixes both), the em dash between digits put back, no spaces but between Latin words or numbers."""
    text = unicodedata.normalize("NFKC", text)
    text = _DASH_BETWEEN_DIGITS.sub("—", text)
    return _STRAY_SPACE.sub("", text.strip())


@functools.lru_cache(maxsize=1)
def _engine():
    """One RapidOCR per process (0.3 s; the models are read from the wheel, nothing is downloaded)."""
    try:
        import cv2
        from rapidocr_onnxruntime import RapidOCR
    except Exception as exc:  # noqa: BLE001 - ImportError, or a missing system library (libGL) under cv2
        raise OcrUnavailable(
            f"the OCR engine cannot be loaded ({type(exc).__name__}: {exc}); "
            "install it with `pip install rapidocr-onnxruntime==1.4.4 pypdfium2`",
            "文字识别（OCR）组件未安装或无法加载，请联系管理员") from None
    cv2.setNumThreads(1)
    return RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1, use_cls=False, rec_batch_num=1)


def _boxes(image) -> list[tuple[str, float, list[list[float]]]]:
    """RapidOCR's lines of one page image (a 2-D grey array): (text, score, 4-point box in pixels)."""
    result, _ = _engine()(image, use_cls=False)
    return [(text, float(score), box) for box, text, score in (result or [])]


def _skew(boxes: list[tuple[str, float, list[list[float]]]]) -> float:
    """The page's skew in radians: the median slope of the top edges of its longer boxes (0 when level)."""
    slopes = []
    for text, _, box in boxes:
        (x0, y0), (x1, y1) = box[0], box[1]
        if len(text) >= 5 and x1 - x0 > 0:
            slopes.append(math.atan2(y1 - y0, x1 - x0))
    return statistics.median(slopes) if slopes else 0.0


def _page_lines(boxes: list[tuple[str, float, list[list[float]]]], scale: float, size: tuple[float, float]
                ) -> list[OcrLine]:
    """Boxes turned level (a skewed scan's lines then start at one left edge), in points, pieces of one
    visual line joined left to right, lines top to bottom."""
    angle = _skew(boxes)
    cos, sin = math.cos(-angle), math.sin(-angle)
    cx, cy = size[0] / 2 / scale, size[1] / 2 / scale  # the page centre, in pixels

    def level(x: float, y: float) -> tuple[float, float]:
        dx, dy = x - cx, y - cy
        return (cx + dx * cos - dy * sin) * scale, (cy + dx * sin + dy * cos) * scale

    pieces = []
    for text, score, box in boxes:
        points = [level(x, y) for x, y in box]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        text = normalise(text)
        if text:
            pieces.append(OcrLine(text, score, min(xs), min(ys), max(xs), max(ys)))
    pieces.sort(key=lambda p: (p.y0 + p.y1) / 2)
    rows: list[list[OcrLine]] = []
    for piece in pieces:
        row = rows[-1] if rows else None
        if row is not None:
            middle = (row[-1].y0 + row[-1].y1) / 2
            height = min(piece.y1 - piece.y0, row[-1].y1 - row[-1].y0)
            if abs((piece.y0 + piece.y1) / 2 - middle) < 0.5 * height:
                row.append(piece)
                continue
        rows.append([piece])
    lines = []
    for row in rows:
        row.sort(key=lambda p: p.x0)
        text = ""
        for piece in row:
            gap = text and re.search(r"[A-Za-z0-9]$", text) and re.match(r"[A-Za-z0-9]", piece.text)
            text += (" " if gap else "") + piece.text
        weights = [len(p.text) for p in row]
        confidence = sum(p.confidence * w for p, w in zip(row, weights)) / sum(weights)
        lines.append(OcrLine(text, round(confidence, 4), min(p.x0 for p in row), min(p.y0 for p in row),
                             max(p.x1 for p in row), max(p.y1 for p in row)))
    return lines


def _cache_file(settings: OcrSettings, digest: str) -> Path | None:
    return Path(settings.cache_dir) / f"{digest}.json" if settings.cache_dir else None


def _read_cache(path: Path | None, settings: OcrSettings) -> dict:
    """The pages of this file read earlier with this engine and resolution ({} when none)."""
    if path is None or not path.is_file() or path.is_symlink():
        return {}
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("engine") != ENGINE or stored.get("dpi") != settings.dpi:
            return {}
        return {int(n): OcrPage(int(n), p["width"], p["height"], tuple(OcrLine(*line) for line in p["lines"]))
                for n, p in stored["pages"].items()}
    except (OSError, ValueError, KeyError, TypeError):  # a damaged cache file is read again, not trusted
        return {}


def _write_cache(path: Path | None, settings: OcrSettings, pages: dict[int, OcrPage]) -> None:
    if path is None:
        return
    rows = {str(n): {"width": p.width, "height": p.height,
                     "lines": [[ln.text, ln.confidence, ln.x0, ln.y0, ln.x1, ln.y1] for ln in p.lines]}
            for n, p in sorted(pages.items())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"engine": ENGINE, "dpi": settings.dpi, "pages": rows}, ensure_ascii=False),
                       encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a cache that cannot be written only costs reading the pages again next time
        pass


def file_digest(path: Path) -> str:
    """What the cache knows a PDF by: the sha256 of its bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_pages(path: Path, numbers: Sequence[int], settings: OcrSettings = OcrSettings(),
               progress: Progress = lambda event: None) -> list[OcrPage]:
    """OCR the given 1-based pages of the PDF at ``path`` (cached pages are not read again).

    ``progress(("ocr", done, total))`` is called before the first page and after each one.
    Raises OcrUnavailable when the engine cannot be loaded.
    """
    cache = _cache_file(settings, file_digest(path))
    known = _read_cache(cache, settings)
    todo = [n for n in numbers if n not in known]
    progress(("ocr", 0, len(todo)))
    if todo:
        import pypdfium2 as pdfium

        scale = settings.dpi / 72
        pdf = pdfium.PdfDocument(str(path))
        try:
            for done, number in enumerate(todo, start=1):
                page = pdf[number - 1]
                width, height = page.get_size()
                image = page.render(scale=scale, grayscale=True).to_numpy()
                if image.ndim == 3:  # some pdfium builds keep a channel axis for grey
                    image = image[:, :, 0]
                lines = _page_lines(_boxes(image), 1 / scale, (image.shape[1] / scale, image.shape[0] / scale))
                known[number] = OcrPage(number, float(width), float(height), tuple(lines))
                page.close()
                _write_cache(cache, settings, known)  # a killed run keeps the pages it finished
                progress(("ocr", done, len(todo)))
        finally:
            pdf.close()
    return [known[n] for n in numbers]


def page_summary(pages: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int, float]]
                 ) -> list[tuple[int, int, float, float]]:
    """For each OCR'd page: (page, lines, mean confidence, lowest confidence), from a document's page map
    and its OCR'd line spans (``Document.ocr``)."""
    import bisect

    starts = [start for start, _ in pages]
    by_page: dict[int, list[float]] = {}
    for start, _, confidence in spans:
        i = bisect.bisect_right(starts, start) - 1
        page = pages[i][1] if i >= 0 else (pages[0][1] if pages else 0)
        by_page.setdefault(page, []).append(confidence)
    return [(page, len(scores), round(sum(scores) / len(scores), 3), round(min(scores), 3))
            for page, scores in sorted(by_page.items())]


def passage_confidence(spans: Sequence[tuple[int, int, float]], start: int, end: int) -> float | None:
    """The lowest confidence of the OCR'd lines that overlap [start, end); None when none do (a text layer)."""
    scores = [c for s, e, c in spans if s < end and e > start]
    return round(min(scores), 3) if scores else None
