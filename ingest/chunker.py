"""Chunk paragraphs into passages of whole sentences with stable ids."""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

from core.text import split_sentences
from core.types import Chunk, Document, Span

from .formats import page_of
from .ocr import passage_confidence


@dataclass(frozen=True)
class ChunkerSettings:
    """How passages are cut; stored in the index manifest.

    220 characters is about two or three of this report's sentences: small
    enough that a citation points a reader at one claim, large enough that a
    passage keeps the sentence before it for context. A paragraph is never
    split across sections; chunks are balanced within a paragraph so no
    one-sentence stub is left at the end.
    """

    max_chars: int = 220

    def to_dict(self) -> dict:
        return {"name": "sentence-pack", **asdict(self)}


def chunk_id(source: str, start: int, end: int, text: str) -> str:
    digest = hashlib.sha256(f"{source}\x00{start}\x00{end}\x00{text}".encode()).hexdigest()
    return digest[:16]


def _pack(sentences: list[Span], max_chars: int) -> list[list[Span]]:
    total = sentences[-1].end - sentences[0].start
    target = total / max(1, math.ceil(total / max_chars))
    groups: list[list[Span]] = [[]]
    for span in sentences:
        group = groups[-1]
        if group and span.end - group[0].start > max_chars and group[-1].end - group[0].start >= target * 0.5:
            groups.append([span])
        else:
            group.append(span)
            if span.end - group[0].start >= target and span is not sentences[-1]:
                groups.append([])
    return [g for g in groups if g]


def chunk_document(doc: Document, settings: ChunkerSettings = ChunkerSettings()) -> list[Chunk]:
    """Cut every paragraph of a document into sentence-aligned chunks."""
    chunks: list[Chunk] = []
    for para in doc.paragraphs:
        sentences = split_sentences(para.text, para.start)
        for group in _pack(sentences, settings.max_chars):
            start, end = group[0].start, group[-1].end
            text = doc.text[start:end]
            chunks.append(
                Chunk(
                    chunk_id=chunk_id(doc.source, start, end, text),
                    source=doc.source,
                    doc_title=doc.title,
                    section_path=para.section_path,
                    paragraph=para.number,
                    start=start,
                    end=end,
                    text=text,
                    sentences=tuple(group),
                    page=page_of(doc.pages, start),
                    issuer=doc.issuer,
                    year=doc.year,
                    url=doc.url,
                    context=para.context,
                    ocr=passage_confidence(doc.ocr, start, end) if doc.ocr else None,
                )
            )
    return chunks
