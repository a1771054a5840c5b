"""Sentence vectors in a quarter of the space: int8 codes and one float32 scale a row.

A unit vector ``x`` is stored as ``codes = round(127 * x / max|x|)`` (int8) and
``scale = 1 / ||codes||``, so ``codes * scale`` is again a unit vector, pointing
within about 0.3° of ``x``: cosines to a question move by ~1e-3, below
the gaps the answerer judges (0.025 between quoted sentences). Measured on the
real report's sentences in bench/index_recall.py ("quantized sentence vectors").

``QuantizedVectors`` reads like the float32 matrix it stands for: ``len``,
``shape``, and rows by index, slice or index array come back as float32, so
``vectors[a:b] @ query`` is the cosine of each row. Backed by memory-mapped
files, a question reads only the rows of its hits.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .table import save_npy

CODES_FILE = "sentences.npy"  # int8 (rows, dim)
SCALES_FILE = "sentence_scales.npy"  # float32 (rows,)


@dataclass(frozen=True, eq=False)
class QuantizedVectors:
    """Row-indexable unit vectors: ``codes[i] * scales[i]`` is row i, as float32."""

    codes: np.ndarray  # int8 (rows, dim)
    scales: np.ndarray  # float32 (rows,)

    @classmethod
    def quantize(cls, vectors: np.ndarray) -> "QuantizedVectors":
        """Quantize rows of unit (or any non-zero) vectors; an all-zero row stays zero."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be a 2-d array, got shape {vectors.shape}")
        peak = np.abs(vectors).max(axis=1, keepdims=True) if vectors.size else np.zeros((len(vectors), 1), np.float32)
        codes = np.rint(vectors * (127.0 / np.maximum(peak, 1e-12))).astype(np.int8)
        norms = np.linalg.norm(codes.astype(np.float32), axis=1)
        scales = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0).astype(np.float32)
        return cls(codes, scales)

    @classmethod
    def empty(cls, dim: int) -> "QuantizedVectors":
        return cls(np.zeros((0, dim), np.int8), np.zeros(0, np.float32))

    @classmethod
    def concatenate(cls, parts: list["QuantizedVectors"], dim: int) -> "QuantizedVectors":
        if not parts:
            return cls.empty(dim)
        return cls(np.concatenate([p.codes for p in parts]), np.concatenate([p.scales for p in parts]))

    @classmethod
    def stack(cls, rows: list[tuple[np.ndarray, float]], dim: int) -> "QuantizedVectors":
        """From (codes row, scale) pairs, e.g. rows reused from an earlier build."""
        if not rows:
            return cls.empty(dim)
        return cls(np.stack([c for c, _ in rows]).astype(np.int8), np.asarray([s for _, s in rows], np.float32))

    # ---------------------------------------------------------------- reading like a float32 matrix

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, rows) -> np.ndarray:
        """Rows (an int, a slice, or an index array) as float32; a single row as a 1-d array."""
        codes = np.asarray(self.codes[rows], dtype=np.float32)
        scales = np.asarray(self.scales[rows], dtype=np.float32)
        return codes * (scales[..., None] if codes.ndim > 1 else scales)

    def row(self, i: int) -> tuple[np.ndarray, float]:
        """Row ``i`` as stored: (int8 codes, scale)."""
        return np.array(self.codes[i]), float(self.scales[i])

    def slice(self, start: int, stop: int) -> "QuantizedVectors":
        """Rows [start, stop) as an in-memory copy (no longer backed by the files)."""
        return QuantizedVectors(np.array(self.codes[start:stop]), np.array(self.scales[start:stop]))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def __matmul__(self, other) -> np.ndarray:
        return self[:] @ other

    # ---------------------------------------------------------------- files

    def to_bytes(self) -> tuple[bytes, bytes]:
        """The codes and the scales as raw little-endian bytes (what a part's hash covers)."""
        return (np.ascontiguousarray(self.codes, dtype=np.int8).tobytes(),
                np.ascontiguousarray(self.scales, dtype="<f4").tobytes())

    def save(self, folder: Path) -> None:
        """Write both files, fsynced (``load`` reads them back)."""
        save_npy(folder / CODES_FILE, np.ascontiguousarray(self.codes, dtype=np.int8))
        save_npy(folder / SCALES_FILE, np.ascontiguousarray(self.scales, dtype="<f4"))

    @classmethod
    def load(cls, folder: Path, mmap: bool = True) -> "QuantizedVectors":
        """Read what ``save`` wrote; ValueError when the files do not agree with each other."""
        mode = "r" if mmap else None
        codes = np.load(folder / CODES_FILE, mmap_mode=mode, allow_pickle=False)
        scales = np.load(folder / SCALES_FILE, mmap_mode=mode, allow_pickle=False)
        if codes.dtype != np.int8 or codes.ndim != 2 or scales.dtype != np.float32 or scales.shape != codes.shape[:1]:
            raise ValueError(f"sentence vectors: codes {codes.dtype} {codes.shape}, scales {scales.dtype} {scales.shape}")
        return cls(codes, scales)

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / CODES_FILE).is_file() and (folder / SCALES_FILE).is_file()

    @staticmethod
    def remove(folder: Path) -> None:
        for name in (CODES_FILE, SCALES_FILE):
            (folder / name).unlink(missing_ok=True)
