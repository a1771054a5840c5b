"""Scanned versions of the real report, made the way a scanner would: its PDF rendered to page images
(plain, skewed, low resolution) and saved as a PDF of images only, with no text layer.

The reference text is the text layer of the PDF the scans were rendered from, so a character
accuracy compares OCR with exactly what was on the page.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np

VARIANTS = ("plain", "skew", "low")


def write_scan(text_pdf: Path, out: Path, variant: str = "plain", pages: list[int] | None = None) -> Path:
    """``text_pdf``'s pages (1-based ``pages``, default all) as an image-only PDF.

    plain: 200 dpi, clean. skew: 200 dpi, pages turned +2.5° and -2.0° in turn, grey paper, noise.
    low: 100 dpi, blurred, noisy, JPEG quality 70.
    """
    import pypdfium2 as pdfium
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(20240601)
    pdf = pdfium.PdfDocument(str(text_pdf))
    numbers = pages or list(range(1, len(pdf) + 1))
    images, dpi = [], 100 if variant == "low" else 200
    for i, number in enumerate(numbers):
        image = pdf[number - 1].render(scale=200 / 72, grayscale=True).to_pil().convert("L")
        if variant == "skew":
            image = image.rotate(2.5 if i % 2 == 0 else -2.0, resample=Image.BICUBIC, fillcolor=255)
            pixels = np.asarray(image, dtype=np.float32) * 0.92 + rng.normal(0, 6, (image.height, image.width))
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        elif variant == "low":
            image = image.resize((image.width // 2, image.height // 2), Image.LANCZOS).filter(
                ImageFilter.GaussianBlur(0.6))
            pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 8, (image.height, image.width))
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        images.append(image)
    pdf.close()
    images[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=images[1:], quality=70)
    return out


def folded(text: str) -> str:
    """Text as compared: NFKC, no whitespace."""
    return re.sub(r"\s", "", unicodedata.normalize("NFKC", text))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one row of the table at a time in numpy (3,000 × 3,000 characters in ~0.1 s)."""
    columns = np.arange(len(b) + 1)
    codes = np.array([ord(c) for c in b])
    row = columns.copy()
    for i, char in enumerate(a, start=1):
        diagonal = row[:-1] + (codes != ord(char))
        row = np.concatenate([[i], np.minimum(row[1:] + 1, diagonal)])
        row = np.minimum.accumulate(row - columns) + columns  # insertions, left to right
    return int(row[-1])


def char_accuracy(reference: str, read: str) -> float:
    """1 - edit distance / reference length, on folded text (the measure of /work/ocr-study)."""
    reference, read = folded(reference), folded(read)
    return 1 - edit_distance(reference, read) / len(reference)


def numbers_found(reference: str, read: str) -> tuple[int, int]:
    """(digit runs of the reference found in the text read, digit runs in all), counted with repeats."""
    wanted = re.findall(r"\d+", folded(reference))
    pool = re.findall(r"\d+", folded(read))
    found = 0
    for number in wanted:
        if number in pool:
            pool.remove(number)
            found += 1
    return found, len(wanted)
