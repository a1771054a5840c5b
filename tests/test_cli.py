"""The `reportqa` command as a user runs it: a real subprocess on the real report."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_data_dir

JSON_KEYS = {"question", "answer", "reply", "refused", "confidence", "citations", "timings_ms"}
CITATION_KEYS = {"n", "chunk_id", "source", "title", "issuer", "year", "url", "page", "ocr", "section", "text", "quote",
                 "start", "end"}


def reportqa(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reportqa.cli", "--data-dir", str(data_dir), *args],
        input=stdin, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture()
def data_dir(tmp_path, built_settings) -> Path:
    data = tmp_path / "data"
    shutil.copytree(built_settings.data_dir, data)
    return data


def test_ask_json_prints_exactly_the_documented_object(data_dir, report_text):
    result = reportqa(data_dir, "ask", "--json", "全市建成了多少个便民服务站？")
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout)
    assert set(obj) == JSON_KEYS
    assert obj["refused"] is False and "1726" in obj["answer"]
    assert set(obj["timings_ms"]) == {"retrieve", "answer"}
    cite = obj["citations"][0]
    assert set(cite) == CITATION_KEYS and cite["n"] == 1
    assert "1726" in cite["quote"] and cite["quote"] in cite["text"]
    assert report_text[cite["start"] : cite["end"]] == cite["quote"]
    assert cite["section"] == "一、主要工作举措和成效 › (一)优化政府机构职能,推动政府作用更好发挥"
    assert cite["source"] == "dalian-2023-law-based-government-report.txt"


def test_ask_json_reads_one_question_a_line_from_stdin(data_dir, report_text):
    questions = {
        "全市建成了多少个便民服务站？": "1726",
        "多少人获得行政执法资格？": "2952",
        "办理市人大代表建议政协提案多少件？": "823",
        "在哪个区开展辽宁监管执法平台试点？": "西岗区",
        "大连地铁几点停运？": None,
    }
    result = reportqa(data_dir, "ask", "--json", stdin="\n".join(questions) + "\n\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["question"] for o in lines] == list(questions)
    for obj, fact in zip(lines, questions.values()):
        assert set(obj) == JSON_KEYS
        if fact is None:
            assert obj["refused"] and obj["citations"] == []
            assert obj["answer"] == "抱歉，报告中没有找到与该问题相关的内容。"
        else:
            assert fact in obj["answer"]
            quote = obj["citations"][0]
            assert fact in quote["quote"] and report_text[quote["start"] : quote["end"]] == quote["quote"]


def test_ask_for_a_person_shows_the_answer_and_numbered_sources(data_dir):
    result = reportqa(data_dir, "ask", "多少人获得行政执法资格？")
    assert result.returncode == 0, result.stderr
    assert "2952" in result.stdout.splitlines()[0]
    assert "来源：" in result.stdout and "[1] " in result.stdout and "第5段" in result.stdout


@pytest.mark.parametrize(
    ("question", "message"),
    [("", "empty"), ("   ", "empty"), ("问" * 10_000, "10000 characters"), ("？？！！……", "no words"), ("😀😀🙏", "no words")],
)
def test_bad_questions_get_a_clear_error_without_traceback(data_dir, question, message):
    result = reportqa(data_dir, "ask", "--json", question)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_bad_lines_on_stdin_are_reported_and_the_rest_answered(data_dir):
    result = reportqa(data_dir, "ask", "--json", stdin="😀\n全市建成了多少个便民服务站？\n")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0
    assert "no words" in lines[0]["error"]
    assert "1726" in lines[1]["answer"]


def test_missing_index_tells_what_to_run(tmp_path):
    data = make_data_dir(tmp_path)
    result = reportqa(data, "ask", "全市建成了多少个便民服务站？")
    assert result.returncode == 1
    assert "No index" in result.stderr and "reportqa ingest" in result.stderr and "Traceback" not in result.stderr


def test_stale_and_corrupt_index_are_refused_by_ask(data_dir):
    report = next((data_dir / "raw").glob("*.txt"))
    report.write_text(report.read_text(encoding="utf-8") + "\n补充说明。\n", encoding="utf-8")
    result = reportqa(data_dir, "ask", "全市建成了多少个便民服务站？")
    assert result.returncode == 1 and "out of date" in result.stderr and f"{report.name} changed" in result.stderr

    live = data_dir / "index" / (data_dir / "index" / "CURRENT").read_text().strip()
    (live / "dense.faiss").write_bytes(b"garbage")
    result = reportqa(data_dir, "ask", "全市建成了多少个便民服务站？")
    assert result.returncode == 1 and "damaged" in result.stderr and "Traceback" not in result.stderr


def test_ingest_reports_skipped_files_and_keeps_the_rest(data_dir):
    (data_dir / "raw" / "empty.md").write_text("", encoding="utf-8")
    (data_dir / "raw" / "latin1.txt").write_bytes("Café au lait, Straße 5.".encode("latin-1"))
    result = reportqa(data_dir, "ingest")
    assert result.returncode == 0, result.stderr
    assert "warning: skipped latin1.txt: neither UTF-8 nor GB18030/GBK" in result.stderr
    assert "warning: skipped empty.md" in result.stderr
    assert "Indexed 1 report(s)" in result.stdout
    answer = json.loads(reportqa(data_dir, "ask", "--json", "全市建成了多少个便民服务站？").stdout)
    assert "1726" in answer["answer"]


def test_ingest_of_nothing_usable_fails_and_keeps_the_index(data_dir, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    result = reportqa(data_dir, "ingest", str(bad))
    assert result.returncode == 1 and "left as it was" in result.stderr
    answer = json.loads(reportqa(data_dir, "ask", "--json", "全市建成了多少个便民服务站？").stdout)
    assert "1726" in answer["answer"]


def test_unknown_embedder_is_named_with_the_fix(data_dir):
    result = reportqa(data_dir, "--embedder", "no-such-org/no-such-model", "ask", "便民服务站有多少个？")
    assert result.returncode == 1
    assert "no-such-org/no-such-model" in result.stderr and "REPORTQA_EMBEDDER" in result.stderr
    assert "Traceback" not in result.stderr


def test_history_resolves_a_follow_up(data_dir):
    history = json.dumps([{"question": "大连有几支市级应急救援队伍？", "answer": "16支"}], ensure_ascii=False)
    result = reportqa(data_dir, "ask", "--json", "--history", history, "它们一年演练了多少次？")
    assert result.returncode == 0, result.stderr
    assert "335" in json.loads(result.stdout)["answer"]
    bad = reportqa(data_dir, "ask", "--history", "[oops", "它们一年演练了多少次？")
    assert bad.returncode == 2 and "not JSON" in bad.stderr and "Traceback" not in bad.stderr


def test_interactive_mode_keeps_the_conversation(data_dir):
    result = reportqa(data_dir, "ask", "-i", "--json", stdin="大连有几支市级应急救援队伍？\n它们一年演练了多少次？\n")
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert "16支" in first["answer"]
    assert "335" in second["answer"] and second["question"] == "它们一年演练了多少次？"


@pytest.mark.parametrize("variable, value", [("REPORTQA_TOP_K", "0"), ("REPORTQA_CHUNK_MAX_CHARS", "0"),
                                             ("REPORTQA_PORT", "70000")])
def test_a_setting_out_of_bounds_is_one_line_naming_it(tmp_path, variable, value):
    result = subprocess.run([sys.executable, "-m", "reportqa.cli", "--data-dir", str(tmp_path), "ask", "问"],
                            capture_output=True, text=True, env={**os.environ, variable: value}, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and variable in result.stderr
