"""Staff report management (reportqa.library) and example questions from the data (reportqa.examples),
on a real data folder, the real model and real rebuilds: uploads are parsed in staging first, a failed
one changes nothing, every change is one rebuild at a time swapped into the running service."""
from __future__ import annotations

import contextlib
import json
import shutil
import threading
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, REPORT, make_data_dir, write_variant

from core.errors import ReportFileError, ReportQAError
from core.types import Scope
from reportqa import library as library_module
from reportqa.config import Settings
from reportqa.examples import ExampleBook, ExamplesRejected, format_examples, parse_examples
from reportqa.library import ReportLibrary, check_metadata, safe_report_name
from reportqa.service import ReportQA

CORPUS = Path("/work/shared/corpus")
STATIONS = "全市建成了多少个便民服务站？"


@contextlib.contextmanager
def refused_zh(text: str):
    """Expects a ReportFileError whose Chinese message (the one staff see) says ``text``."""
    with pytest.raises(ReportFileError) as refused:
        yield refused
    assert text in refused.value.message_zh, refused.value.message_zh


def _current(data: Path) -> str:
    return (data / "index" / "CURRENT").read_text(encoding="utf-8")


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture()
def served(tmp_path):
    """A loaded service over the shipped report, and its library."""
    data = make_data_dir(tmp_path)
    qa = ReportQA(Settings(data_dir=data))
    qa.ensure_index()
    return data, qa, ReportLibrary(qa)


def _upload(tmp_path: Path, name: str, content: bytes | str) -> tuple[Path, str]:
    """A file as Gradio leaves an upload: in a temporary folder, under the name the browser sent."""
    folder = tmp_path / "gradio-upload"
    folder.mkdir(exist_ok=True)
    path = folder / "upload.bin"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path, name


# ---------------------------------------------------------------- names and fields staff send

@pytest.mark.parametrize("name", ["../evil.txt", "../../etc/cron.d/x.txt", "/etc/passwd.txt", "a/b.txt", "a\\b.txt",
                                  "..", ".hidden.txt", "~$lock.docx", "x\x00.txt", "x\n.txt", "report.exe",
                                  "report.txt.meta.json", "", "长" * 130 + ".txt"])
def test_unsafe_file_names_are_refused_in_chinese(name):
    with pytest.raises(ReportFileError) as refused:
        safe_report_name(name)
    assert refused.value.message_zh and "Traceback" not in refused.value.message_zh


def test_plain_chinese_file_names_are_kept():
    assert safe_report_name("大连市2023年报告 (终稿).PDF") == "大连市2023年报告 (终稿).PDF"
    assert safe_report_name(" tongji-2023-luoyang.txt ") == "tongji-2023-luoyang.txt"


def test_metadata_is_checked_field_by_field():
    assert check_metadata(" 洛阳  统计公报 ", "", "2023.0", "https://www.ly.gov.cn/a.html") == {
        "title": "洛阳 统计公报", "year": 2023, "url": "https://www.ly.gov.cn/a.html"}
    assert check_metadata("", None, None, "") == {}
    for bad, field in (((None, None, "二〇二三", None), "年份"), ((None, None, "1800", None), "年份"),
                       ((None, None, None, "javascript:alert(1)"), "网址"), (("标" * 201, None, None, None), "标题")):
        with pytest.raises(ReportFileError) as refused:
            check_metadata(*bad)
        assert field in refused.value.message_zh, (bad, refused.value.message_zh)


# ---------------------------------------------------------------- uploads: staged, parsed, imported

@pytest.mark.slow
def test_an_upload_is_parsed_in_staging_corrected_imported_and_answered(served, tmp_path):
    data, qa, library = served
    raw_before, version_before = _files(data / "raw"), _current(data)
    staged = library.stage([_upload(tmp_path, "沈阳-2022.txt", (REPORT.read_text(encoding="utf-8")
                                                                .replace("大连", "沈阳").replace("2023年", "2022年")))])
    assert [s.state for s in staged] == ["waiting"]
    library.wait()
    (item,) = library.staged()
    assert (item.state, item.title, item.issuer, item.year) == ("ready", "沈阳市2022年法治政府建设情况报告", "沈阳市", 2022)
    assert (item.sections, item.paragraphs, item.chunks, item.ocr_pages) == (11, 12, 20, [])
    assert _files(data / "raw") == raw_before and _current(data) == version_before  # nothing went in yet
    assert (data / "staging" / item.id / "沈阳-2022.txt").is_file()

    library.correct_staged(item.id, "沈阳市2022年法治政府建设情况报告", "沈阳市人民政府", "2022",
                           "https://www.shenyang.gov.cn/r/2022.html")
    with refused_zh("网址"):
        library.correct_staged(item.id, "", "", "", "ftp://x")
    library.import_ready()
    status = library.wait()
    assert status.ok and "新的索引已生效（2 份报告）" in status.message_zh, status
    assert json.loads((data / "raw" / "沈阳-2022.txt.meta.json").read_text(encoding="utf-8"))["issuer"] == "沈阳市人民政府"
    assert library.staged() == [] and not (data / "staging" / item.id).exists()
    assert _current(data) != version_before
    answer = qa.ask("沈阳全市建成了多少个便民服务站？")  # the running service, swapped: no reload by hand
    assert "1726" in answer.text and answer.citations[0].chunk.source == "沈阳-2022.txt"
    assert answer.citations[0].chunk.issuer == "沈阳市人民政府"
    rows = {r.source: r for r in library.reports()}
    assert rows["沈阳-2022.txt"].status == "indexed" and rows["沈阳-2022.txt"].has_sidecar


@pytest.mark.slow
def test_a_failed_upload_changes_nothing(served, tmp_path):
    data, qa, library = served
    raw_before, version_before = _files(data / "raw"), _current(data)
    outside = tmp_path / "outside"
    outside.mkdir()
    link = tmp_path / "link.txt"
    link.symlink_to(REPORT)
    staged = library.stage([
        _upload(tmp_path, "broken.pdf", b"%PDF-1.4\n garbage"),
        _upload(tmp_path, "../outside/evil.txt", "大连市2023年法治政府建设情况报告\n\n正文。"),
        (link, "link.txt"),
        _upload(tmp_path, "empty.docx", b"PK\x03\x04 not a zip"),
    ])
    library.wait()
    states = {s.name: (s.state, s.detail_zh) for s in library.staged()}
    assert {name: state for name, (state, _) in states.items()} == {
        "broken.pdf": "failed", "../outside/evil.txt": "failed", "link.txt": "failed", "empty.docx": "failed"}
    assert "不合规" in states["../outside/evil.txt"][1] and "不是普通文件" in states["link.txt"][1]
    assert all(detail for _, detail in states.values()) and [s.id for s in staged]
    with refused_zh("没有可导入的文件"):
        library.import_ready()
    assert _files(data / "raw") == raw_before and _current(data) == version_before
    assert list(outside.iterdir()) == [] and not (tmp_path / "evil.txt").exists()
    assert not any((data / "staging").glob("*/*"))  # nothing of a failed upload is kept
    assert "1726" in qa.ask(STATIONS).text


@pytest.mark.slow
def test_an_import_whose_rebuild_fails_puts_the_folder_back(served, tmp_path, monkeypatch):
    data, qa, library = served
    original = REPORT.read_bytes()
    library.stage([_upload(tmp_path, REPORT.name, REPORT.read_text(encoding="utf-8").replace("1726", "1999"))])
    library.wait()
    (item,) = library.staged()
    assert item.replaces and item.state == "ready"
    version_before = _current(data)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(library_module, "build_index", full_disk)
    library.import_ready()
    status = library.wait()
    assert not status.ok and "原有报告和索引保持不变" in status.message_zh
    assert (data / "raw" / REPORT.name).read_bytes() == original  # the replaced report is back
    assert _current(data) == version_before and "1726" in qa.ask(STATIONS).text
    assert library.staged()[0].state == "ready"  # and can be imported again
    assert not [p for p in (data / "raw").iterdir() if p.name.startswith(".upload-")]


# ---------------------------------------------------------------- reports in the folder

@pytest.mark.slow
def test_metadata_removal_and_reingest_each_rebuild_once_and_swap_in(served, monkeypatch):
    data, qa, library = served
    write_variant(data / "raw", "鞍山", 2021)
    library.reingest(REPORT.name)  # any rebuild takes the new file in too
    library.wait()
    assert {r.source for r in qa.reports()} == {REPORT.name, "鞍山-2021.txt"}

    running, most = [0], [0]
    real_build = library_module.build_index

    def counted(*args, **kwargs):
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            return real_build(*args, **kwargs)
        finally:
            running[0] -= 1

    monkeypatch.setattr(library_module, "build_index", counted)
    answers, stop = [], threading.Event()

    def citizen():
        while not stop.is_set():
            answers.append(qa.ask(STATIONS).text)

    asking = threading.Thread(target=citizen)
    asking.start()
    try:
        library.set_metadata("鞍山-2021.txt", "鞍山市2021年法治政府建设情况报告（修订）", "鞍山市人民政府", "2021", "")
        library.reingest(REPORT.name)
        library.set_metadata(REPORT.name, "", "大连市人民政府", "2023", "https://www.dl.gov.cn/r.html")
        status = library.wait()
    finally:
        stop.set()
        asking.join()
    assert status.ok, status
    assert most[0] == 1  # three changes queued at once, one rebuild at a time
    assert answers and all("1726" in a for a in answers)  # citizens were answered throughout
    infos = {r.source: r for r in qa.reports()}
    assert infos["鞍山-2021.txt"].title == "鞍山市2021年法治政府建设情况报告（修订）"
    assert infos[REPORT.name].issuer == "大连市人民政府" and infos[REPORT.name].url == "https://www.dl.gov.cn/r.html"

    with refused_zh("报告文件夹中没有"):
        library.remove("../raw/" + REPORT.name)
    library.remove("鞍山-2021.txt")
    assert library.wait().ok
    assert [r.source for r in qa.reports()] == [REPORT.name]
    assert not (data / "raw" / "鞍山-2021.txt").exists() and not (data / "raw" / "鞍山-2021.txt.meta.json").exists()
    with refused_zh("唯一一份"):
        library.remove(REPORT.name)


def _finishing_while_read(library, monkeypatch, held: str):
    """Hold ``library_module.<held>`` (a job's first step) until the page starts reading the reports table,
    then let the job run to its end before that read returns: the quickest job racing the slowest read."""
    release = threading.Event()
    real_step, real_reports = getattr(library_module, held), library.reports

    def held_step(*args, **kwargs):
        assert release.wait(60)
        return real_step(*args, **kwargs)

    def reports_while_the_job_ends():
        release.set()
        library.wait(120)
        return real_reports()

    monkeypatch.setattr(library_module, held, held_step)
    monkeypatch.setattr(library, "reports", reports_while_the_job_ends)
    return real_reports


def test_the_staff_page_keeps_polling_until_it_has_drawn_a_jobs_end(served, tmp_path, monkeypatch):
    """The page stops its timer when the work is done. A job ending while the page read its tables left it
    showing 正在解析 with the timer stopped and nothing to redraw it (the CI failure of 2026-11-29)."""
    from ui.staff_reports import library_view

    data, qa, library = served
    # An upload whose parse fails at once: the page read it still parsing, so it must look again.
    real_reports = _finishing_while_read(library, monkeypatch, "load_report")
    library.stage([_upload(tmp_path, "empty.txt", "\n\n")])
    work, items, _, following = library_view(library)
    assert [s.state for s in items] in (["waiting"], ["parsing"]) and following
    monkeypatch.setattr(library, "reports", real_reports)
    work, items, _, following = library_view(library)
    assert [s.state for s in items] == ["failed"] and not work.busy and not following

    # A rebuild, no upload in it: the status was read before the tables, so it still says busy, and the
    # page draws the new reports table on its next look.
    monkeypatch.undo()
    finished = library.status().finished
    _finishing_while_read(library, monkeypatch, "build_index")
    library.reingest(REPORT.name)
    work, _, rows, following = library_view(library)
    assert work.busy and following and work.finished == finished
    assert library.status().finished == finished + 1 and not library.status().busy  # it ended during the read



def test_an_upload_whose_parse_breaks_is_refused_not_left_parsing(served, tmp_path, monkeypatch):
    """A bug in parsing (not a bad file) still ends the upload: refused with a reason, the page stops polling."""
    from ui.staff_reports import library_view

    data, qa, library = served

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the chunker")

    monkeypatch.setattr(library_module, "chunk_document", broken)
    library.stage([_upload(tmp_path, "fine.txt", REPORT.read_text(encoding="utf-8"))])
    status = library.wait()
    (item,) = library.staged()
    assert item.state == "failed" and "服务器内部错误" in item.detail_zh
    assert not status.ok and not library_view(library)[3]
    assert not any((data / "staging").glob("*/*"))

# ---------------------------------------------------------------- example questions from the data

def test_the_examples_editor_text_is_checked():
    groups = parse_examples("# 便民服务\n全市建成了多少个便民服务站？\n\n多少个高频事项实现全市通办？\n# 其他\n大连地铁几点停运？")
    assert groups == {"便民服务": ["全市建成了多少个便民服务站？", "多少个高频事项实现全市通办？"], "其他": ["大连地铁几点停运？"]}
    assert parse_examples(format_examples(groups)) == groups
    assert parse_examples("全市建成了多少个便民服务站？") == {"示例问题": ["全市建成了多少个便民服务站？"]}
    for text, message in (("问" * 300, "第 1 行"), ("\n😀😀", "第 2 行"), ("\n".join(f"问题{i}？" for i in range(13)), "最多 12"),
                          ("# " + "组" * 30 + "\n问？", "分组名太长")):
        with pytest.raises(ExamplesRejected, match=message):
            parse_examples(text)


@pytest.mark.slow
def test_default_examples_are_the_reports_passing_evaluation_items(tmp_path):
    data = make_data_dir(tmp_path)
    (data / "examples.json").unlink()
    shutil.copy(CORPUS / "tongji-2023-luoyang.txt", data / "raw")
    qa = ReportQA(Settings(data_dir=data))
    qa.ensure_index()
    sets = [PROJECT_ROOT / "data" / "evals" / "qa.jsonl", PROJECT_ROOT / "data" / "evals" / "corpus" /
            "tongji-2023-luoyang.jsonl"]
    book = ExampleBook(qa, data / "examples.json", lambda: sets)
    luoyang = book.groups("tongji-2023-luoyang.txt")
    dalian = book.groups(REPORT.name)
    assert 3 <= sum(map(len, luoyang.values())) <= 8 and 3 <= sum(map(len, dalian.values())) <= 8
    items = {json.loads(line)["question"]: json.loads(line) for path in sets
             for line in path.read_text(encoding="utf-8").splitlines()}
    for source, groups in (("tongji-2023-luoyang.txt", luoyang), (REPORT.name, dalian)):
        for question in (q for qs in groups.values() for q in qs):
            item = items[question]
            assert item["answerable"] and item.get("report", REPORT.name) == source
            answer = qa.ask(question, scope=Scope(sources=(source,)))
            assert answer.reply == "answer" and all(f in answer.text for f in item["required_facts"])
    assert all(len(label) <= 12 for label in luoyang)  # grouped by the cited section, e.g. 综合

    # Staff's choice wins, is stored in the data folder, and going back restores the defaults.
    saved, refused = book.save("tongji-2023-luoyang.txt", "# 经济\n2023年洛阳全市生产总值达到多少？\n# 别的\n洛阳地铁几点停运？")
    assert refused == ["洛阳地铁几点停运？"] and book.groups("tongji-2023-luoyang.txt") == saved
    assert json.loads((data / "examples.json").read_text(encoding="utf-8"))["reports"]["tongji-2023-luoyang.txt"]
    both = book.for_scope(qa.reports(), None)
    assert set(both) == {"《2023年洛阳市国民经济和社会发展统…》", "《大连市2023年法治政府建设情况报告》"}
    assert book.for_scope(qa.reports(), Scope(sources=("tongji-2023-luoyang.txt",))) == saved
    book.reset("tongji-2023-luoyang.txt")
    assert book.groups("tongji-2023-luoyang.txt") == luoyang
    with pytest.raises(ReportQAError):
        book.save(REPORT.name, "\n\n")


def test_the_model_lock_is_handed_over_in_turn():
    """A rebuild that releases and takes the embedder's lock again at once goes behind a waiting question."""
    import time

    from core.embedding import FairLock

    lock, order = FairLock(), []
    lock.acquire()

    def question():
        with lock:
            order.append("question")

    waiting = threading.Thread(target=question)
    waiting.start()
    time.sleep(0.2)  # the question is waiting now
    lock.release()
    lock.acquire()  # the rebuild's next batch
    order.append("rebuild")
    lock.release()
    waiting.join(5)
    assert order == ["question", "rebuild"]
