"""FAISS by size (flat below the threshold, HNSW at it) and narrowing a search to some reports."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
from conftest import PROJECT_ROOT, REPORT

import index.store as store
from core.text import tokenize
from core.types import Scope
from reportqa.config import Settings
from reportqa.service import ReportQA
from retrieval.search import HybridRetriever, _best_positive

COPY = "copy-2024.txt"
COPY_ISSUER = "测试市人民政府"
QUESTIONS = [json.loads(line)["question"]
             for line in (PROJECT_ROOT / "data/evals/qa.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def _ingest_copy(built_settings: Settings, root: Path, **overrides) -> Settings:
    data = root / "data"
    shutil.copytree(built_settings.data_dir, data)
    settings = Settings(data_dir=data, **overrides)
    ReportQA(settings).ingest()
    return settings


@pytest.fixture(scope="module")
def hnsw_index(built_settings, tmp_path_factory):
    """The real report with an HNSW index: the threshold set below its chunk count."""
    settings = _ingest_copy(built_settings, tmp_path_factory.mktemp("hnsw"), faiss_exact_below=5)
    return store.load_index(settings.index_path, settings.vector_store)


@pytest.fixture(scope="module", params=["flat", "hnsw"])
def two_reports(request, built_settings, tmp_path_factory):
    """The real report and a copy issued by another body in 2024, indexed flat or HNSW."""
    data = tmp_path_factory.mktemp(f"two-{request.param}") / "data"
    shutil.copytree(built_settings.data_dir, data)
    report = next((data / "raw").glob("*.txt"))
    shutil.copy(report, data / "raw" / COPY)
    (data / "raw" / "copy-2024.meta.json").write_text(json.dumps({"issuer": COPY_ISSUER, "year": 2024}), encoding="utf-8")
    settings = Settings(data_dir=data, faiss_exact_below=5 if request.param == "hnsw" else 10_000)
    qa = ReportQA(settings)
    qa.ingest()
    qa.load()
    return qa


def test_flat_below_the_threshold_and_hnsw_at_it(qa, hnsw_index):
    assert qa.index.manifest.vector_store == {"kind": "faiss", "index": "flat"}
    assert isinstance(qa.index.dense.index, faiss.IndexFlatIP)
    assert hnsw_index.manifest.vector_store == {"kind": "faiss", "index": "hnsw"}
    assert isinstance(hnsw_index.dense.index, faiss.IndexHNSWSQ)  # float16 vectors (index/vectors.py)
    assert hnsw_index.dense.index.metric_type == faiss.METRIC_INNER_PRODUCT
    assert len(hnsw_index.dense) == len(hnsw_index.chunks) == len(qa.index.chunks)


def test_hnsw_finds_the_same_neighbours_and_hits_as_flat(qa, hnsw_index):
    flat = HybridRetriever(qa.index)
    hnsw = HybridRetriever(hnsw_index)
    vectors = qa.embedder.encode_queries(QUESTIONS)
    for question, vector in zip(QUESTIONS, vectors):
        exact = qa.index.dense.search(vector, 10)
        approximate = hnsw_index.dense.search(vector, 10)
        assert [r for r, _ in approximate] == [r for r, _ in exact], question
        np.testing.assert_allclose([s for _, s in approximate], [s for _, s in exact], atol=1e-5)
        assert ([h.chunk.chunk_id for h in hnsw.search(vector, question)]
                == [h.chunk.chunk_id for h in flat.search(vector, question)]), question


def test_a_scope_narrows_both_lists_to_its_reports(two_reports):
    index = two_reports.index
    copy = Scope(issuers=(COPY_ISSUER,))
    rows = [i for i, c in enumerate(index.chunks) if c.source == COPY]
    assert 0 < len(rows) < len(index.chunks)
    vectors = np.stack([index.dense.vector(i) for i in range(len(index.chunks))])
    hybrid, bm25_only = HybridRetriever(index), HybridRetriever(index, mode="bm25")
    for question, vector in zip(QUESTIONS[:40], two_reports.embedder.encode_queries(QUESTIONS[:40])):
        # Dense: the store's in-scope list is the exact ranking of the copy's rows.
        found = index.dense.search(vector, 10, copy)
        scores = vectors[rows] @ vector
        assert [r for r, _ in found] == [rows[j] for j in np.argsort(-scores, kind="stable")[:10]], question
        # BM25: the in-scope list is the full ranking with other reports' chunks taken out.
        all_scores = np.asarray(index.bm25.get_scores(tokenize(question) or [""]))
        expected = [i for i in np.argsort(-all_scores, kind="stable") if i in rows and all_scores[i] > 0][:5]
        assert [h.chunk.chunk_id for h in bm25_only.search(vector, question, top_k=5, scope=copy)] == \
            [index.chunks[i].chunk_id for i in expected], question
        hits = hybrid.search(vector, question, top_k=5, scope=copy)
        assert len(hits) == 5 and {h.chunk.source for h in hits} == {COPY}
        assert all(h.chunk.issuer == COPY_ISSUER and h.chunk.year == 2024 for h in hits)
        # The two reports hold the same text: each narrowed to itself gives the same passages.
        original = hybrid.search(vector, question, top_k=5, scope=Scope(sources=(REPORT.name,)))
        assert {h.chunk.source for h in original} == {REPORT.name}
        assert [(h.chunk.start, h.chunk.text) for h in original] == [(h.chunk.start, h.chunk.text) for h in hits]


def test_a_scope_no_report_matches_finds_nothing(two_reports):
    vector = two_reports.embedder.encode_queries([QUESTIONS[0]])[0]
    nowhere = Scope(years=(1999,))
    assert two_reports.index.dense.search(vector, 10, nowhere) == []
    assert HybridRetriever(two_reports.index).search(vector, QUESTIONS[0], scope=nowhere) == []


def test_bm25_ranking_is_a_stable_argsort_of_positive_scores():
    rng = np.random.default_rng(0)
    for _ in range(200):
        scores = rng.integers(-1, 6, rng.integers(1, 300)).astype(np.float32)  # many ties and zeros
        depth = int(rng.integers(1, len(scores) + 1))
        expected = [int(i) for i in np.argsort(-scores, kind="stable")[:depth] if scores[i] > 0]
        assert _best_positive(scores, depth) == expected
