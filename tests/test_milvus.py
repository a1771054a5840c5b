"""Chunk vectors in Milvus (Milvus Lite in a temporary folder): same answers as FAISS, kept in sync by ingest."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import PROJECT_ROOT

import index.store as store
from core.errors import IndexMissing, VectorStoreUnavailable
from reportqa.cli import main
from reportqa.config import Settings
from reportqa.service import ReportQA

ITEMS = [json.loads(line) for line in (PROJECT_ROOT / "data/evals/qa.jsonl").read_text(encoding="utf-8").splitlines()
         if line.strip()]


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("milvus") / "milvus.db")


def _settings(built_settings, root, uri: str, collection: str = "reportqa_chunks") -> Settings:
    """A copy of the session's data folder (its parts spare re-embedding) pointed at a Milvus collection."""
    data = root / "data"
    shutil.copytree(built_settings.data_dir, data)
    return Settings(data_dir=data, vector_store_uri=uri, milvus_collection=collection)


@pytest.fixture(scope="module")
def milvus_qa(built_settings, tmp_path_factory, milvus_uri):
    settings = _settings(built_settings, tmp_path_factory.mktemp("data"), milvus_uri)
    service = ReportQA(settings)
    service.ingest()
    service.load()
    return service


def _ids(uri: str, collection: str) -> set[str]:
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    return {row["id"] for row in client.query(collection, filter='id != ""', output_fields=["id"], limit=10_000)}


def test_ingest_puts_the_vectors_in_milvus_not_faiss(milvus_qa, milvus_uri):
    index = milvus_qa.index
    assert index.manifest.vector_store == {"kind": "milvus", "uri": milvus_uri, "collection": "reportqa_chunks"}
    assert not (index.path / "dense.faiss").exists()
    assert (index.path / "sentences.npy").is_file() and (index.path / "bm25").is_dir()
    assert _ids(milvus_uri, "reportqa_chunks") == {c.chunk_id for c in index.chunks}


def test_milvus_scores_equal_faiss(qa, milvus_qa):
    assert [c.chunk_id for c in qa.index.chunks] == [c.chunk_id for c in milvus_qa.index.chunks]
    vectors = qa.embedder.encode_queries([item["question"] for item in ITEMS[:30]])
    for vector in vectors:
        faiss_found, milvus_found = qa.index.dense.search(vector, 50), milvus_qa.index.dense.search(vector, 50)
        assert [r for r, _ in milvus_found[:10]] == [r for r, _ in faiss_found[:10]]
        np.testing.assert_allclose([s for _, s in milvus_found], [s for _, s in faiss_found], atol=1e-4)
    np.testing.assert_allclose(milvus_qa.index.dense.vector(3), qa.index.dense.vector(3), atol=1e-6)


def test_same_answers_as_faiss_on_the_whole_evaluation_set(qa, milvus_qa):
    for item in ITEMS:
        ours, theirs = qa.ask(item["question"], item["history"]), milvus_qa.ask(item["question"], item["history"])
        assert theirs.text == ours.text, item["id"]
        assert ([(c.chunk.chunk_id, c.quote, c.start, c.end) for c in theirs.citations]
                == [(c.chunk.chunk_id, c.quote, c.start, c.end) for c in ours.citations]), item["id"]


def test_reingest_deletes_the_rows_of_changed_and_removed_reports(built_settings, tmp_path, milvus_uri, milvus_qa):
    settings = _settings(built_settings, tmp_path, milvus_uri, collection="reingest")
    report = next(settings.raw_path.glob("*.txt"))
    shutil.copy(report, settings.raw_path / "copy.txt")
    qa = ReportQA(settings)
    qa.ingest()
    before = {c.chunk_id: c for c in store.load_index(settings.index_path, qa.settings.vector_store).chunks}
    assert _ids(milvus_uri, "reingest") == set(before)

    report.write_text(report.read_text(encoding="utf-8").replace("1726", "1800"), encoding="utf-8")
    (settings.raw_path / "copy.txt").unlink()
    qa.ingest()
    after = {c.chunk_id for c in store.load_index(settings.index_path, qa.settings.vector_store).chunks}
    held = _ids(milvus_uri, "reingest")
    assert held == after
    removed = {i for i, c in before.items() if c.source == "copy.txt"}
    changed = {i for i, c in before.items() if c.source != "copy.txt" and "1726" in c.text}
    assert removed and changed and not held & (removed | changed)
    assert "1800" in qa.ask("全市建成了多少个便民服务站？").text
    # Another collection in the same Milvus is untouched.
    assert _ids(milvus_uri, "reportqa_chunks") == {c.chunk_id for c in milvus_qa.index.chunks}


def test_a_missing_or_incomplete_collection_is_refused_with_the_fix(built_settings, tmp_path, milvus_uri):
    from pymilvus import MilvusClient

    settings = _settings(built_settings, tmp_path, milvus_uri, collection="damaged")
    ReportQA(settings).ingest()
    client = MilvusClient(milvus_uri)
    ids = sorted(_ids(milvus_uri, "damaged"))
    client.delete("damaged", ids=ids[:3])
    with pytest.raises(IndexMissing) as err:
        ReportQA(settings).load()
    assert f"{len(ids) - 3} of the {len(ids)} chunks" in err.value.message and "reportqa ingest" in err.value.message
    assert "重新建立索引" in err.value.message_zh

    client.drop_collection("damaged")
    with pytest.raises(IndexMissing, match="does not exist.*reportqa ingest"):
        ReportQA(settings).load()
    qa = ReportQA(settings)
    qa.ensure_index()  # what `serve` does: rebuilds it
    assert "1726" in qa.ask("全市建成了多少个便民服务站？").text


def test_switching_store_needs_a_reingest(milvus_qa):
    settings = milvus_qa.settings
    faiss_settings = Settings(data_dir=settings.data_dir)
    with pytest.raises(IndexMissing, match="vectors are in Milvus.*reportqa ingest"):
        ReportQA(faiss_settings).load()


def test_an_unreachable_milvus_is_a_clear_error_not_a_traceback(built_settings, tmp_path):
    settings = _settings(built_settings, tmp_path, "http://127.0.0.1:9")
    with pytest.raises(VectorStoreUnavailable) as err:
        ReportQA(settings).ingest()
    assert "http://127.0.0.1:9" in err.value.message and "REPORTQA_VECTOR_STORE_URI" in err.value.message
    assert "向量数据库" in err.value.message_zh
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "ingest"],
                                env={"REPORTQA_VECTOR_STORE_URI": "http://127.0.0.1:9"})
    assert result.exit_code == 1 and "Cannot reach the Milvus vector store" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_milvus_lite_file_open_in_another_process_is_a_clear_error(milvus_qa, milvus_uri):
    """Milvus Lite locks its folder: `reportqa ask` while this process (like `serve`) holds it."""
    result = subprocess.run(
        [sys.executable, "-m", "reportqa.cli", "--data-dir", str(milvus_qa.settings.data_dir), "ask", "便民服务站有多少个？"],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
        env={**os.environ, "REPORTQA_VECTOR_STORE_URI": milvus_uri},
    )
    assert result.returncode == 1
    assert "one process at a time" in result.stderr and "Traceback" not in result.stderr


def test_a_sidecar_edit_refreshes_the_rows_a_scope_filters_on(built_settings, tmp_path, milvus_uri):
    """Chunk ids do not change with a report's metadata; the Milvus rows must, or a scope misses them."""
    from core.types import Scope

    settings = _settings(built_settings, tmp_path, milvus_uri, collection="sidecar")
    report = next(settings.raw_path.glob("*.txt"))
    qa = ReportQA(settings)
    qa.ingest()
    assert qa.retrieve("全市建成了多少个便民服务站？", scope=Scope(issuers=("大连市",)))
    (settings.raw_path / f"{report.name}.meta.json").write_text('{"issuer": "大连市人民政府", "year": 2024}',
                                                               encoding="utf-8")
    qa = ReportQA(settings)
    qa.ingest()
    hits = qa.retrieve("全市建成了多少个便民服务站？", scope=Scope(issuers=("大连市人民政府",), years=(2024,)))
    assert hits and all(h.chunk.issuer == "大连市人民政府" for h in hits)
    assert qa.retrieve("全市建成了多少个便民服务站？", scope=Scope(issuers=("大连市",))) == []
