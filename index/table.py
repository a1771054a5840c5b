"""The chunk table of an index version in columns, memory-mapped and read lazily.

Layout (``<version>/table/``)::

    rows.npy       one record a chunk (numpy structured array): id, report, section, context,
                   paragraph, page, character offsets, where its text and its sentences are
    texts.bin      the chunks' texts, UTF-8, back to back
    spans.npy      int64 (sentences, 2): each sentence's [start, end) in its source file
    strings.json   what repeats, once: each report's source, title, issuer, year and url;
                   each section path; each table context

``ChunkTable`` is a ``Sequence[Chunk]``: ``table[i]`` builds chunk i from its
record when asked, so opening a table of 200,000 chunks reads a few small
files and maps the rest (the JSON lines it replaces took 3.6 s to parse), and
a question builds only the chunks it returns. Columns a whole-index pass
needs (ids, the sentence rows of each chunk, each row's report) are arrays.
"""
from __future__ import annotations

import json
import math
import mmap
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.types import Chunk, Span

TABLE = "table"
ROWS_FILE, TEXTS_FILE, SPANS_FILE, STRINGS_FILE = "rows.npy", "texts.bin", "spans.npy", "strings.json"
TABLE_FILES = (ROWS_FILE, TEXTS_FILE, SPANS_FILE, STRINGS_FILE)
NO_PAGE = -1


def row_dtype(id_bytes: int) -> np.dtype:
    return np.dtype([
        ("chunk_id", f"S{max(1, id_bytes)}"), ("report", "<i4"), ("section", "<i4"), ("context", "<i4"),
        ("paragraph", "<i4"), ("page", "<i4"), ("start", "<i8"), ("end", "<i8"),
        ("text_start", "<i8"), ("text_end", "<i8"), ("sentence_start", "<i8"), ("sentence_end", "<i8"),
        ("ocr", "<f4"),  # the OCR confidence of a passage read from a scanned page; NaN for text
    ])


class _Codes(dict):
    """Values to dense codes, in order of first sight."""

    def code(self, value) -> int:
        return self.setdefault(value, len(self))


def save_npy(path: Path, array: np.ndarray) -> None:
    """np.save, then fsync: a version's files are on disk before its manifest names them."""
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


def write_table(folder: Path, chunks: Sequence[Chunk]) -> None:
    """Write ``chunks`` as a table under ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    reports, sections, contexts = _Codes(), _Codes(), _Codes()
    contexts.code("")
    ids = [c.chunk_id.encode("utf-8") for c in chunks]
    rows = np.zeros(len(chunks), dtype=row_dtype(max(map(len, ids), default=1)))
    texts = [c.text.encode("utf-8") for c in chunks]
    text_ends = np.cumsum([len(t) for t in texts], dtype=np.int64)
    sentence_ends = np.cumsum([len(c.sentences) for c in chunks], dtype=np.int64)
    for i, c in enumerate(chunks):
        rows[i] = (ids[i], reports.code((c.source, c.doc_title, c.issuer, c.year, c.url)),
                   sections.code(tuple(c.section_path)), contexts.code(c.context), c.paragraph,
                   NO_PAGE if c.page is None else c.page, c.start, c.end,
                   text_ends[i] - len(texts[i]), text_ends[i],
                   sentence_ends[i] - len(c.sentences), sentence_ends[i],
                   np.nan if c.ocr is None else c.ocr)
    spans = np.array([s for c in chunks for s in c.sentences], dtype=np.int64).reshape(-1, 2)
    save_npy(folder / ROWS_FILE, rows)
    save_npy(folder / SPANS_FILE, spans)
    with open(folder / TEXTS_FILE, "wb") as handle:
        for text in texts:
            handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    strings = {"reports": list(reports), "sections": list(sections), "contexts": list(contexts)}
    with open(folder / STRINGS_FILE, "w", encoding="utf-8") as handle:
        json.dump(strings, handle, ensure_ascii=False, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())


class ChunkTable(Sequence):
    """A written table, opened: chunks built on demand from memory-mapped columns."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._rows = np.load(folder / ROWS_FILE, mmap_mode="r", allow_pickle=False)
        self._spans = np.load(folder / SPANS_FILE, mmap_mode="r", allow_pickle=False)
        strings = json.loads((folder / STRINGS_FILE).read_text(encoding="utf-8"))
        self._reports = [tuple(r) for r in strings["reports"]]
        self._sections = [tuple(s) for s in strings["sections"]]
        self._contexts = strings["contexts"]
        with open(folder / TEXTS_FILE, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            self._texts = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self._check(size)
        self._has_ocr = "ocr" in self._rows.dtype.names  # a table written before the column: no OCR marks
        self._ids: list[str] | None = None

    def _check(self, text_bytes: int) -> None:
        """ValueError naming the first way the files disagree (a damaged or mixed-up table)."""
        rows, n = self._rows, len(self._rows)
        if rows.dtype.names is None or "chunk_id" not in rows.dtype.names or rows.ndim != 1:
            raise ValueError(f"{ROWS_FILE} is not a chunk table")
        if self._spans.ndim != 2 or self._spans.shape[1] != 2:
            raise ValueError(f"{SPANS_FILE} has shape {self._spans.shape}")
        if n:
            last = rows[n - 1]
            if int(last["text_end"]) != text_bytes:
                raise ValueError(f"{TEXTS_FILE} holds {text_bytes} bytes, the rows {int(last['text_end'])}")
            if int(last["sentence_end"]) != len(self._spans):
                raise ValueError(f"{SPANS_FILE} holds {len(self._spans)} sentences, the rows {int(last['sentence_end'])}")
            for column, table in (("report", self._reports), ("section", self._sections), ("context", self._contexts)):
                if int(rows[column].max()) >= len(table) or int(rows[column].min()) < 0:
                    raise ValueError(f"a row's {column} is not in {STRINGS_FILE}")

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._chunk(j) for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"chunk row {i} out of range (0..{len(self) - 1})")
        return self._chunk(i)

    def __iter__(self):
        return (self._chunk(i) for i in range(len(self)))

    def _chunk(self, i: int) -> Chunk:
        row = self._rows[i]
        (chunk_id, report, section, context, paragraph, page, start, end,
         text_start, text_end, sentence_start, sentence_end) = row.item()[:12]
        ocr = float(row["ocr"]) if self._has_ocr else math.nan
        source, title, issuer, year, url = self._reports[report]
        # Every field filled in directly, as Chunk.from_dict does: the frozen __init__ is the slow part.
        chunk = object.__new__(Chunk)
        chunk.__dict__.update(
            chunk_id=chunk_id.decode("utf-8"), source=source, doc_title=title, section_path=self._sections[section],
            paragraph=paragraph, start=start, end=end, text=self._texts[text_start:text_end].decode("utf-8"),
            sentences=tuple(Span(s, e) for s, e in self._spans[sentence_start:sentence_end].tolist()),
            page=None if page == NO_PAGE else page, issuer=issuer, year=year, url=url,
            context=self._contexts[context], ocr=None if math.isnan(ocr) else round(ocr, 4))
        return chunk

    # ---------------------------------------------------------------- whole columns, without building chunks

    @property
    def chunk_ids(self) -> list[str]:
        """Every chunk's id, in row order (decoded once)."""
        if self._ids is None:
            self._ids = [b.decode("utf-8") for b in self._rows["chunk_id"].tolist()]
        return self._ids

    def sentence_offsets(self) -> np.ndarray:
        """int64 (chunks + 1): the sentences of chunk i are rows [o[i], o[i + 1]) of the sentence vectors."""
        offsets = np.zeros(len(self) + 1, dtype=np.int64)
        offsets[1:] = self._rows["sentence_end"]
        return offsets

    @property
    def sentence_count(self) -> int:
        return len(self._spans)

    def report_rows(self) -> np.ndarray:
        """int32 (chunks,): the index in ``reports`` of each row's report."""
        return np.asarray(self._rows["report"])

    @property
    def reports(self) -> list[tuple]:
        """(source, title, issuer, year, url) of each report, as ``report_rows`` numbers them."""
        return self._reports
