"""The index's storage format: the columnar chunk table, int8 sentence vectors, one copy of each vector,
lazy loading, damage detected, and what quantization costs in retrieval."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT, REPORT

import index.store as store
from core.types import Chunk, Span
from index.parts import PARTS
from index.quantized import QuantizedVectors
from index.table import ChunkTable, write_table
from ingest.build import build_index, passage_head
from ingest.chunker import chunk_document
from ingest.loader import load_report
from reportqa.config import Settings
from reportqa.service import ReportQA

QUESTIONS = [json.loads(line)["question"]
             for line in (PROJECT_ROOT / "data/evals/qa.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture()
def data(built_settings, tmp_path) -> Path:
    """A private copy of the session's built data folder."""
    copy = tmp_path / "data"
    shutil.copytree(built_settings.data_dir, copy)
    return copy


# ---------------------------------------------------------------- the chunk table

def _odd_chunks() -> list[Chunk]:
    """Chunks with every kind of value a table must keep: no section, a page, a table context, an OCR mark, no
    issuer or year, several reports, a sentence-less chunk, text outside the BMP."""
    real = chunk_document(load_report(REPORT))[:3]
    odd = [
        Chunk("x" * 16, "b.pdf", "《乙》报告", ("一、总体", "(二)细则"), 7, 100, 112, "第一句。第二句𠀀。",
              (Span(100, 104), Span(104, 112)), page=3, issuer=None, year=None, url="https://example.cn/a",
              context="表：收入 | 金额", ocr=0.962),  # read from a scanned page: its confidence is kept
        Chunk("y" * 16, "b.pdf", "《乙》报告", (), 8, 200, 201, "空", (), page=None),
    ]
    return real + odd + real[:1]


def test_the_chunk_table_gives_back_every_chunk_as_written(tmp_path):
    chunks = _odd_chunks()
    write_table(tmp_path / "table", chunks)
    table = ChunkTable(tmp_path / "table")
    assert len(table) == len(chunks)
    assert list(table) == chunks and table[3] == chunks[3] and table[-1] == chunks[-1] and table[1:3] == chunks[1:3]
    assert all(type(c) is Chunk for c in table)
    assert table.chunk_ids == [c.chunk_id for c in chunks]
    offsets = table.sentence_offsets()
    assert offsets.tolist() == np.cumsum([0] + [len(c.sentences) for c in chunks]).tolist()
    with pytest.raises(IndexError):
        table[len(chunks)]


def test_an_empty_table_opens(tmp_path):
    write_table(tmp_path / "table", [])
    table = ChunkTable(tmp_path / "table")
    assert len(table) == 0 and list(table) == [] and table.sentence_offsets().tolist() == [0]


def test_loading_maps_the_columns_and_builds_only_the_chunks_read(data, monkeypatch):
    index = store.load_index(data / "index")
    assert isinstance(index.chunks, ChunkTable)
    assert isinstance(index.chunks._rows, np.memmap) and isinstance(index.sentence_vectors.codes, np.memmap)
    built = []
    original = ChunkTable._chunk
    monkeypatch.setattr(ChunkTable, "_chunk", lambda self, i: built.append(i) or original(self, i))
    qa = ReportQA(Settings(data_dir=data))
    answer = qa.ask("全市建成了多少个便民服务站？")
    assert "1726" in answer.text
    # Loading built none (every whole-index pass reads columns); the question built its hits'.
    assert 0 < len(built) <= 2 * qa.settings.top_k
    # The sentence rows of a chunk, by id or by row, are the ones its sentences were stored at.
    for row, chunk in enumerate(store.load_index(data / "index").chunks):
        first = index.sentence_start[chunk.chunk_id]
        assert index.sentence_rows(row) == slice(first, first + len(chunk.sentences))


# ---------------------------------------------------------------- one copy of each vector

def _files(folder: Path, name: str) -> list[Path]:
    return sorted(folder.rglob(name))


def test_each_vector_is_kept_once_and_a_reused_report_gets_its_vectors_from_the_version(data):
    index_dir = data / "index"
    version = store.live_version(index_dir)
    # The version holds the sentence vectors; the report's part holds its text, tokens and heading vectors only.
    assert _files(index_dir, "sentences.npy") == [version / "sentences.npy"]
    (part,) = (index_dir / PARTS).iterdir()
    assert sorted(p.name for p in part.iterdir()) == ["chunks.jsonl", "document.txt.gz", "headings.npy"]
    before = store.load_index(index_dir)

    class NoModel:  # a rebuild of an unchanged folder must not need the model
        name, dim = before.manifest.embedder["name"], before.manifest.embedder["dim"]

        def encode_passages(self, texts):
            raise AssertionError(f"embedded {texts[:2]}")

    result = build_index([data / "raw"], data / "raw", index_dir, NoModel())
    assert result.reused == [REPORT.name] and result.parsed == []
    after = store.load_index(index_dir)
    assert after.path != before.path
    np.testing.assert_array_equal(after.sentence_vectors.codes, before.sentence_vectors.codes)
    np.testing.assert_array_equal(after.dense.vectors(0, len(after.chunks)), before.dense.vectors(0, len(before.chunks)))
    assert _files(index_dir, "sentences.npy") == [after.path / "sentences.npy"]


def test_an_edited_version_is_not_a_source_of_vectors(data):
    """Sentence vectors of the live version changed on disk: the report is embedded again, not trusted."""
    index_dir = data / "index"
    live = store.live_version(index_dir)
    original = np.load(live / "sentences.npy")
    np.save(live / "sentences.npy", np.concatenate([-original[:1], original[1:]]))  # same size, one row flipped
    result = ReportQA(Settings(data_dir=data)).ingest()
    assert result.parsed == [REPORT.name] and result.reused == []
    np.testing.assert_array_equal(store.load_index(index_dir).sentence_vectors.codes, original)  # the edit is gone


def test_an_index_without_its_live_version_embeds_its_reports_again(data):
    (data / "index" / store.CURRENT).unlink()
    result = ReportQA(Settings(data_dir=data)).ingest()
    assert result.parsed == [REPORT.name]


# ---------------------------------------------------------------- damage

def _reseal(version: Path) -> None:
    """Record the damaged files' sizes in the manifest, so only the checks of their content can catch them."""
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"] = {name: (version / name).stat().st_size for name in manifest["files"]}
    (version / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize("damage", ["rows-garbage", "spans-shorter", "strings-short", "scales-wrong-length",
                                    "bm25-fewer-docs", "texts-longer"])
def test_damage_to_a_column_is_found_at_load(data, damage):
    live = store.live_version(data / "index")
    table = live / "table"
    if damage == "rows-garbage":
        (table / "rows.npy").write_bytes(b"\x93NUMPY garbage" + b"\0" * 100)
    elif damage == "spans-shorter":
        np.save(table / "spans.npy", np.load(table / "spans.npy")[:-1])
    elif damage == "strings-short":
        strings = json.loads((table / "strings.json").read_text(encoding="utf-8"))
        strings["sections"] = strings["sections"][:1]
        (table / "strings.json").write_text(json.dumps(strings, ensure_ascii=False), encoding="utf-8")
    elif damage == "scales-wrong-length":
        np.save(live / "sentence_scales.npy", np.load(live / "sentence_scales.npy")[:-1])
    elif damage == "bm25-fewer-docs":
        params = json.loads((live / "bm25" / "params.index.json").read_text(encoding="utf-8"))
        params["num_docs"] -= 1
        (live / "bm25" / "params.index.json").write_text(json.dumps(params), encoding="utf-8")
    else:
        with open(table / "texts.bin", "ab") as handle:
            handle.write("多余的字".encode())
    with pytest.raises(store.IndexMissing, match="damaged"):
        store.load_index(data / "index")  # the sizes disagree with the manifest
    _reseal(live)
    with pytest.raises(store.IndexMissing, match="damaged"):
        store.load_index(data / "index")  # the files disagree with each other


def test_an_index_of_the_previous_format_asks_for_a_rebuild(data):
    live = store.live_version(data / "index")
    manifest = json.loads((live / "manifest.json").read_text(encoding="utf-8"))
    manifest["format_version"] = 2
    (live / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(store.IndexMismatch, match="format 2"):
        store.load_index(data / "index")
    qa = ReportQA(Settings(data_dir=data))
    assert qa.ensure_index() is not None
    assert "1726" in qa.ask("全市建成了多少个便民服务站？").text


# ---------------------------------------------------------------- int8 sentence vectors

def test_quantized_vectors_read_like_a_float32_matrix():
    rng = np.random.default_rng(0)
    exact = rng.standard_normal((50, 384)).astype(np.float32)
    exact /= np.linalg.norm(exact, axis=1, keepdims=True)
    quantized = QuantizedVectors.quantize(exact)
    assert quantized.codes.dtype == np.int8 and quantized.shape == (50, 384) and len(quantized) == 50
    assert quantized[3].shape == (384,) and quantized[2:5].shape == (3, 384) and quantized[[1, 7]].shape == (2, 384)
    assert quantized[2:5].dtype == np.float32 and (quantized[2:5] @ exact[0]).dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(quantized[:], axis=1), 1.0, atol=1e-5)
    assert np.abs(np.sum(quantized[:] * exact, axis=1) - 1).max() < 2e-4  # within a degree of the original
    again = QuantizedVectors.quantize(quantized[:])
    np.testing.assert_array_equal(again.codes, quantized.codes)  # quantizing is idempotent: reuse never drifts
    assert QuantizedVectors.quantize(np.zeros((1, 4), np.float32))[0].tolist() == [0, 0, 0, 0]


def test_int8_sentence_vectors_rank_the_report_sentences_as_float32_does(qa):
    """Every evaluation question against every sentence of the report: the int8 scores stay within 0.005 of
    float32 and the best sentence of each top passage is the same for nearly all questions."""
    chunks = chunk_document(load_report(REPORT))
    texts = [c.sentence_text(s) for c in chunks for s in c.sentences]
    exact = qa.embedder.encode_passages(texts)
    quantized = QuantizedVectors.quantize(exact)
    queries = qa.embedder.encode_queries(QUESTIONS)
    error = np.abs(quantized[:] @ queries.T - exact @ queries.T)
    assert error.max() < 0.005
    offsets = np.cumsum([0] + [len(c.sentences) for c in chunks])
    same = total = 0
    for q in queries:
        for a, b in zip(offsets[:-1], offsets[1:]):
            if b - a > 1:
                total += 1
                same += int(np.argmax(exact[a:b] @ q) == np.argmax(quantized[a:b] @ q))
    assert same / total >= 0.98, f"{same} of {total}"
    top3 = [len(set(np.argsort(-(exact @ q))[:3]) & set(np.argsort(-(quantized[:] @ q))[:3])) / 3 for q in queries]
    assert np.mean(top3) >= 0.97


def test_passage_vectors_are_made_from_heading_and_sentence_vectors(qa):
    index = qa.index
    for row in (0, 5, len(index.chunks) - 1):
        chunk = index.chunks[row]
        head = passage_head(chunk)
        texts = ([head] if head else []) + [chunk.sentence_text(s) for s in chunk.sentences]
        made = (qa.embedder.encode_passages(texts) * np.array([len(t) for t in texts], np.float32)[:, None]).sum(0)
        assert float(index.dense.vector(row) @ (made / np.linalg.norm(made))) > 0.999
