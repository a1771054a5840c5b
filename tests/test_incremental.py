"""A folder of many reports: per-file incremental, resumable ingest; metadata in citations; narrowing."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPORT, SHENYANG_URL, make_data_dir, write_variant

from core.embedding import make_embedder
from core.types import ReportInfo, Scope
from index import store
from ingest.build import build_index
from ingest.chunker import chunk_document
from ingest.loader import load_report
from ingest.metadata import title_metadata
from reportqa.config import Settings
from reportqa.service import ReportQA
from ui.chat import parse_scope, scope_choices

QUESTION = "全市建成了多少个便民服务站？"


class CountingEmbedder:
    """The real bundled model, counting the passages it is asked to embed."""

    def __init__(self):
        self.inner = make_embedder()
        self.name, self.dim = self.inner.name, self.inner.dim
        self.passages: list[str] = []

    def encode_passages(self, texts):
        self.passages.extend(texts)
        return self.inner.encode_passages(texts)

    def encode_queries(self, texts):
        return self.inner.encode_queries(texts)


@pytest.fixture(scope="module")
def folder(many_reports) -> Path:
    return many_reports


@pytest.fixture()
def data(folder, tmp_path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(folder, copy)
    return copy


def _build(data: Path, embedder=None, **kw):
    raw = data / "raw"
    return build_index([raw], raw, data / "index", embedder or CountingEmbedder(), **kw)


def test_a_second_ingest_parses_and_embeds_nothing(data):
    before = store.load_index(data / "index")
    embedder = CountingEmbedder()
    seen = []
    result = _build(data, embedder, on_file=lambda done, total, name: seen.append((done, total, name)))
    assert result.parsed == [] and sorted(result.reused) == sorted(p.name for p in (data / "raw").glob("*.txt"))
    assert embedder.passages == []
    assert [d for d, _, _ in seen] == [1, 2, 3] and {t for _, t, _ in seen} == {3}
    assert [c.chunk_id for c in store.load_index(data / "index").chunks] == [c.chunk_id for c in before.chunks]


def test_a_changed_report_alone_is_parsed_and_only_its_new_text_embedded(data):
    path = data / "raw" / "鞍山-2021.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("1726", "1800"), encoding="utf-8")
    embedder = CountingEmbedder()
    result = _build(data, embedder)
    assert result.parsed == ["鞍山-2021.txt"] and len(result.reused) == 2
    # The one sentence that holds the number is new and is all the model reads: every other sentence and
    # heading vector is reused, and passage vectors are made from them (ingest.build.passage_vectors).
    assert len(embedder.passages) == 1 and "1800" in embedder.passages[0]
    index = store.load_index(data / "index")
    assert any("1800" in c.text for c in index.chunks if c.source == "鞍山-2021.txt")
    assert not any(c.source == "鞍山-2021.txt" and "1726" in c.text for c in index.chunks)


def test_a_removed_report_leaves_the_index_and_its_part(data):
    (data / "raw" / "鞍山-2021.txt").unlink()
    result = _build(data)
    assert result.removed == ["鞍山-2021.txt"]
    index = store.load_index(data / "index")
    assert {c.source for c in index.chunks} == {REPORT.name, "沈阳-2022.txt"}
    parts = {p.name for p in (data / "index" / store.PARTS).iterdir()}
    assert parts == {s.part for s in index.manifest.sources}


def test_editing_a_sidecar_makes_the_index_stale_and_rebuilds_that_report(data):
    qa = ReportQA(Settings(data_dir=data))
    assert qa.index_status().built
    sidecar = data / "raw" / "沈阳-2022.txt.meta.json"
    sidecar.write_text(json.dumps({"issuer": "沈阳市司法局"}, ensure_ascii=False), encoding="utf-8")
    assert qa.index_status().reasons == ["沈阳-2022.txt changed"]
    result = _build(data)
    assert result.parsed == ["沈阳-2022.txt"]
    assert {c.issuer for c in store.load_index(data / "index").chunks if c.source == "沈阳-2022.txt"} == {"沈阳市司法局"}


def test_an_ingest_killed_midway_resumes_from_the_reports_it_finished(data):
    """SIGKILL the CLI once one of three new reports is written; the next run embeds only the others."""
    for city, year in (("锦州", 2020), ("营口", 2019), ("丹东", 2018)):
        write_variant(data / "raw", city, year)
    parts = data / "index" / store.PARTS
    before = {p.name for p in parts.iterdir()}
    command = [sys.executable, "-m", "reportqa.cli", "--data-dir", str(data), "ingest"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240

    def new_parts() -> int:
        return sum(1 for p in parts.iterdir() if p.name not in before and not p.name.startswith("."))

    while time.monotonic() < deadline and process.poll() is None and new_parts() < 1:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    finished = new_parts()
    assert 1 <= finished < 3, "the kill came too late to test resuming"
    assert len(store.load_index(data / "index").chunks) == 60  # the old version still serves

    result = _build(data)
    assert len(result.parsed) == 3 - finished and len(result.reused) == 3 + finished
    expected = [c.chunk_id for path in sorted((data / "raw").glob("*.txt"))
                for c in chunk_document(load_report(path, data / "raw"))]
    assert [c.chunk_id for c in store.load_index(data / "index").chunks] == expected


def test_metadata_comes_from_the_sidecar_then_the_title():
    doc = load_report(REPORT)
    assert (doc.issuer, doc.year, doc.url) == ("大连市", 2023, None)
    assert title_metadata("大连市人民政府关于2023年法治政府建设情况的报告") == {"year": 2023, "issuer": "大连市人民政府"}
    assert title_metadata("沈阳市和平区2024年法治政府建设年度报告") == {"year": 2024, "issuer": "沈阳市和平区"}
    assert title_metadata("关于加强2024年工作的通知") == {"year": 2024}  # no place named: no issuer guessed


def test_portal_page_metadata_names_the_issuer_and_url(tmp_path):
    body = "".join(f"<p>{line}</p>" for line in REPORT.read_text(encoding="utf-8").splitlines() if line.strip())
    page = (f'<html><head><meta name="ContentSource" content="大连市司法局">'
            f'<link rel="canonical" href="https://www.dl.gov.cn/art/2024/3/1/1.html"></head>'
            f'<body><nav>首页</nav><article>{body}</article></body></html>')
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    doc = load_report(path)
    assert (doc.issuer, doc.year, doc.url) == ("大连市司法局", 2023, "https://www.dl.gov.cn/art/2024/3/1/1.html")
    (tmp_path / "report.html.meta.json").write_text('{"issuer": "大连市人民政府"}', encoding="utf-8")
    assert load_report(path).issuer == "大连市人民政府"  # staff's sidecar wins over the page


def test_citations_carry_the_reports_metadata(folder):
    qa = ReportQA(Settings(data_dir=folder))
    answer = qa.ask(QUESTION, scope=Scope(years=(2022,)))
    assert not answer.refused and answer.citations
    cite = answer.citations[0].to_dict()
    assert (cite["source"], cite["issuer"], cite["year"], cite["url"]) == \
        ("沈阳-2022.txt", "沈阳市人民政府", 2022, SHENYANG_URL)
    assert cite["title"] == "沈阳市2022年法治政府建设情况报告"


@pytest.mark.parametrize("scope, source", [
    (Scope(years=(2021,)), "鞍山-2021.txt"),
    (Scope(issuers=("沈阳市人民政府",)), "沈阳-2022.txt"),
    (Scope(sources=(REPORT.name,)), REPORT.name),
])
def test_a_scope_narrows_retrieval_and_answers_to_its_report(folder, scope, source):
    qa = ReportQA(Settings(data_dir=folder))
    hits = qa.retrieve(QUESTION, top_k=10, scope=scope)
    assert hits and {h.chunk.source for h in hits} == {source}
    assert {c.chunk.source for c in qa.ask(QUESTION, scope=scope).citations} == {source}
    assert len({h.chunk.source for h in qa.retrieve(QUESTION, top_k=10)}) == 3  # unnarrowed: all three


def test_scope_choices_and_values():
    reports = [ReportInfo("a.txt", title="甲", issuer="大连市", year=2023),
               ReportInfo("b.txt", title="乙", issuer="沈阳市", year=2022)]
    choices = scope_choices(reports)
    assert choices[0] == ("全部报告", "")
    assert [parse_scope(v) for _, v in choices] == [
        None, Scope(years=(2023,)), Scope(years=(2022,)), Scope(issuers=("大连市",)), Scope(issuers=("沈阳市",)),
        Scope(sources=("a.txt",)), Scope(sources=("b.txt",))]
    assert scope_choices(reports[:1]) == [("全部报告", ""), ("《甲》", "source:a.txt")]
    assert parse_scope("year:abc") is None and parse_scope("nonsense") is None


def test_cli_ask_narrows_and_refuses_an_unknown_year(folder):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "reportqa.cli", "--data-dir", str(folder), "ask", *args],
                              capture_output=True, text=True, timeout=120)

    result = run("--json", "--issuer", "沈阳市人民政府", QUESTION)
    assert result.returncode == 0, result.stderr
    assert {c["source"] for c in json.loads(result.stdout)["citations"]} == {"沈阳-2022.txt"}
    result = run("--year", "1999", QUESTION)
    assert result.returncode == 2 and "1999 not in the index" in result.stderr and "2021, 2022, 2023" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_ingest_of_a_folder_reports_what_it_did(data):
    def ingest(*args):
        return subprocess.run([sys.executable, "-m", "reportqa.cli", "--data-dir", str(data), "ingest", *args],
                              capture_output=True, text=True, timeout=300)

    result = ingest()
    assert result.returncode == 0, result.stderr
    assert "0 parsed and embedded, 3 unchanged, 0 removed, 0 skipped." in result.stderr
    assert "Indexed 3 report(s): 60 chunks" in result.stdout

    # A folder elsewhere becomes the reports folder of that run: two of the three, one of them changed.
    portal = data.parent / "portal"
    portal.mkdir()
    shutil.copy(data / "raw" / REPORT.name, portal / REPORT.name)
    changed = write_variant(portal, "鞍山", 2021)
    changed.write_text(changed.read_text(encoding="utf-8").replace("1726", "1800"), encoding="utf-8")
    result = ingest(str(portal))
    assert result.returncode == 0, result.stderr
    assert "1 parsed and embedded, 1 unchanged, 1 removed, 0 skipped." in result.stderr
    assert {c.source for c in store.load_index(data / "index").chunks} == {REPORT.name, "鞍山-2021.txt"}


def test_a_question_naming_a_city_or_year_is_searched_in_that_report(folder):
    """Three near-identical reports: 大连… must not be answered from 沈阳's twin passage."""
    qa = ReportQA(Settings(data_dir=folder))
    for question, source in (("大连建成了多少个便民服务站？", REPORT.name),
                             ("2021年全市建成了多少个便民服务站？", "鞍山-2021.txt"),
                             ("沈阳2022年建成了多少个便民服务站？", "沈阳-2022.txt")):
        assert {h.chunk.source for h in qa.retrieve(question, top_k=10)} == {source}, question
        answer = qa.ask(question)
        assert not answer.refused and {c.chunk.source for c in answer.citations} == {source}
    # A follow-up keeps the city of the question it follows.
    answer = qa.ask("有多少人获得行政执法资格？", history=[{"question": "鞍山建成了多少个便民服务站？", "answer": "…"}])
    assert {c.chunk.source for c in answer.citations} == {"鞍山-2021.txt"}
    # Named but not indexed (大连 2021), or naming nothing: no narrowing; the first is refused.
    assert qa.ask("大连2021年建成了多少个便民服务站？").refused
    assert len({h.chunk.source for h in qa.retrieve("全市建成了多少个便民服务站？", top_k=10)}) == 3


def test_a_rebuild_is_swapped_in_whole_while_questions_keep_being_answered(tmp_path):
    """Staff add a report to a running service: every question meanwhile is answered, then the new one is in."""
    import threading

    data = make_data_dir(tmp_path)
    qa = ReportQA(Settings(data_dir=data))
    qa.ensure_index()
    answers, errors, stop = [], [], threading.Event()

    def keep_asking():
        while not stop.is_set():
            try:
                answers.append(qa.ask("全市建成了多少个便民服务站？").text)
            except Exception as exc:  # noqa: BLE001 - any failure is what the test looks for
                errors.append(exc)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        write_variant(data / "raw", "沈阳", 2022)
        qa.ingest()
    finally:
        stop.set()
        asker.join(30)
    # How many fit in depends on the machine (the model is shared with the rebuild, batch by batch); that
    # none failed and each was right is the point.
    assert not errors and answers and all("1726" in a for a in answers)
    assert {r.source for r in qa.reports()} == {REPORT.name, "沈阳-2022.txt"}
