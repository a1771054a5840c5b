"""The staff evaluation: the set's schema, metrics on cases known by construction, the runner and `eval`."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from evals import (
    SYSTEM_NAMES,
    CitedPassage,
    EvalItem,
    Passage,
    append_item,
    build_systems,
    load_eval_set,
    metrics,
    read_sources,
    run_eval,
    write_outputs,
)
from evals.runner import RATE_METRICS
from evals.systems import first_sentence
from reportqa.eval_command import eval_command

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EVAL_SET = PROJECT_ROOT / "data" / "evals" / "qa.jsonl"

GOOD = {
    "id": "t-1", "question": "全市建成了多少个便民服务站？", "history": [], "answerable": True, "category": "fact",
    "reference_answer": "1726个。", "required_facts": ["1726"],
    "evidence": ["全市建成便民服务站1726个,300个高频事项实现“全市通办”。"],
}
UNANSWERABLE = {
    "id": "t-2", "question": "沈阳有多少个便民服务站？", "history": [], "answerable": False,
    "category": "unanswerable", "reference_answer": "报告中没有相关内容。", "required_facts": [], "evidence": [],
}


def _line(**changes) -> str:
    return json.dumps({**GOOD, **changes}, ensure_ascii=False)


def _without(key: str) -> str:
    return json.dumps({k: v for k, v in GOOD.items() if k != key}, ensure_ascii=False)


# --- the set's schema ----------------------------------------------------------

def test_bad_lines_are_reported_by_line_and_field_and_good_lines_still_load(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join([
        _line(id="ok-1"),
        '{"id": "broken", "question": ',  # line 2
        _without("evidence").replace('"t-1"', '"no-evidence"'),  # line 3
        _line(id="wrong-type", answerable="yes"),  # line 4
        _line(id="ok-2"),  # line 5
        _line(id="ok-1"),  # line 6: duplicate
        "",
        _line(id="no-quotes", evidence=[]),  # line 8
        _line(id="bad-category", category="opinion"),  # line 9
        "[1, 2]",  # line 10
    ]) + "\n", encoding="utf-8")
    with path.open("ab") as f:
        f.write(b'{"id": "gbk", "question": "\xb1\xe3\xc3\xf1"}\n')  # line 11: GBK bytes

    loaded = load_eval_set(path)

    assert [item.id for item in loaded.items] == ["ok-1", "ok-2"]
    messages = [str(e) for e in loaded.errors]
    assert messages[0].startswith("line 2: not valid JSON")
    assert messages[1] == "line 3: field 'evidence': Field required"
    assert messages[2].startswith("line 4: field 'answerable': Input should be a valid boolean")
    assert messages[3] == "line 6: field 'id': duplicate id 'ok-1' (first on line 1)"
    assert messages[4].startswith("line 8: field 'evidence': an answerable item needs at least one evidence quote")
    assert messages[5].startswith("line 9: field 'category':")
    assert messages[6] == "line 10: expected a JSON object, got list"
    assert messages[7].startswith("line 11: not valid UTF-8")
    assert len(messages) == 8


def test_the_shipped_set_is_valid_and_every_quote_is_verbatim_in_the_report(report_text):
    loaded = load_eval_set(EVAL_SET)
    assert loaded.errors == []
    assert len(loaded.items) == 186
    assert {item.category for item in loaded.items} == {"fact", "paraphrase", "multi", "unanswerable", "followup"}
    assert all(quote in report_text for item in loaded.items for quote in item.evidence)


def test_append_item_adds_one_valid_line_and_refuses_bad_or_duplicate_items(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(_line() + "\n", encoding="utf-8")

    added = append_item(path, UNANSWERABLE)
    assert added.id == "t-2"
    assert [item.id for item in load_eval_set(path).items] == ["t-1", "t-2"]
    before = path.read_bytes()

    with pytest.raises(ValueError, match="'t-1' is already in"):
        append_item(path, {**GOOD})
    with pytest.raises(ValueError, match="field 'evidence': an answerable item needs"):
        append_item(path, {**GOOD, "id": "t-3", "evidence": []})
    with pytest.raises(ValueError, match="field 'answerable'"):
        append_item(path, {**GOOD, "id": "t-4", "answerable": "true"})
    assert path.read_bytes() == before


def test_append_item_crashing_before_the_rename_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "qa.jsonl"
    path.write_text(_line() + "\n", encoding="utf-8")
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk pulled out mid-write")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk pulled out"):
        append_item(path, EvalItem.model_validate(UNANSWERABLE))
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qa.jsonl"]  # no temporary file left behind


def test_append_item_keeps_a_last_line_without_newline_intact(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(_line(), encoding="utf-8")  # hand-edited: no trailing newline
    append_item(path, UNANSWERABLE)
    assert [item.id for item in load_eval_set(path).items] == ["t-1", "t-2"]
    assert load_eval_set(path).errors == []


# --- metrics on cases known by construction ------------------------------------

SOURCE = "src.txt"
A = Passage("向园区赋权31项,收回行政职权5项,开展园区赋权试点。", SOURCE, 100, 125)
B = Passage("全市建成便民服务站1726个,300个高频事项实现“全市通办”。", SOURCE, 125, 157)


def _chunk(text: str, start: int | None = None) -> Passage:
    return Passage(text, SOURCE, start, None if start is None else start + len(text))


def test_covers_by_normalised_substring_or_by_holding_most_of_a_cut_quote():
    assert metrics.covers(_chunk("制定方案。" + A.text), A)
    full_width = A.text.replace("31", "３１")
    assert metrics.covers(_chunk(full_width), A)  # NFKC folds full-width digits
    assert not metrics.covers(_chunk("制定市级机构改革方案。"), A)
    # A chunk boundary cuts the quote at offset 115 of [100, 125): the first chunk holds 15 of 25 characters.
    first, second = Passage("x" * 15, SOURCE, 100, 115), Passage("y" * 10, SOURCE, 115, 125)
    assert metrics.covers(first, A) and not metrics.covers(second, A)
    assert not metrics.covers(Passage("x" * 15, "other.txt", 100, 115), A)


def test_recall_mrr_and_ndcg_on_a_ranking_built_by_hand():
    noise = _chunk("制定市级机构改革方案。")
    ranking = [noise, _chunk(A.text), noise, _chunk(B.text)]
    quotes = [A, B]
    assert metrics.recall_at_k(ranking, quotes, 1) == 0.0
    assert metrics.recall_at_k(ranking, quotes, 3) == 0.5
    assert metrics.recall_at_k(ranking, quotes, 5) == 1.0
    assert metrics.reciprocal_rank(ranking, quotes) == 0.5
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert metrics.ndcg_at_k(ranking, quotes, n_relevant=2) == pytest.approx(expected)
    assert metrics.ndcg_at_k([_chunk(A.text), _chunk(B.text), noise], quotes, n_relevant=2) == pytest.approx(1.0)
    assert metrics.ndcg_at_k([noise], quotes, n_relevant=2) == 0.0
    assert metrics.reciprocal_rank([noise] * 10 + [_chunk(A.text)], quotes) == 0.0  # rank 11 is outside @10


def test_fact_accuracy_needs_every_fact_verbatim_and_no_refusal():
    facts = ["1726", "全市通办"]
    assert metrics.fact_accuracy("全市建成便民服务站1726个,300个高频事项实现“全市通办”。[1]", False, facts) == 1.0
    assert metrics.fact_accuracy("全市建成便民服务站１７２６个，实现全市通办。", False, facts) == 1.0
    assert metrics.fact_accuracy("全市建成便民服务站1726个。[1]", False, facts) == 0.0
    assert metrics.missing_facts("全市建成便民服务站1726个。", False, facts) == ["全市通办"]
    assert metrics.fact_accuracy("1726 全市通办", True, facts) == 0.0


def test_citation_precision_and_recall():
    relevant, other = CitedPassage(_chunk(A.text), A.text), CitedPassage(_chunk("制定市级机构改革方案。"), "")
    assert metrics.citation_precision([relevant, other], [A, B]) == 0.5
    assert metrics.citation_precision([relevant], [A]) == 1.0
    assert metrics.citation_precision([other], [A]) == 0.0
    assert metrics.citation_precision([], [A]) is None
    assert metrics.citation_recall([relevant, other], [A, B]) == 0.5
    assert metrics.citation_recall([CitedPassage(_chunk(A.text + B.text), "")], [A, B]) == 1.0
    assert metrics.citation_recall([], [A]) == 0.0


def test_groundedness_fails_on_a_number_or_title_no_cited_passage_holds():
    cited = [CitedPassage(_chunk("全市建成便民服务站1726个。发布《大连市行政审批中介服务事项清单(2023版)》。"), "")]
    assert metrics.groundedness("全市建成便民服务站1726个。[1]", False, cited) == 1.0
    assert metrics.groundedness("发布《大连市行政审批中介服务事项清单(2023版)》。[1]", False, cited) == 1.0
    assert metrics.groundedness("全市建成便民服务站1800个。[1]", False, cited) == 0.0
    assert metrics.ungrounded_claims("建成26个。", cited) == ["26"]  # a number, not a substring of 1726
    assert metrics.ungrounded_claims("发布《大连市营商环境条例》。", cited) == ["《大连市营商环境条例》"]
    assert metrics.groundedness("全市建成便民服务站1726个。", False, []) == 0.0
    assert metrics.groundedness("抱歉，报告中没有找到与该问题相关的内容。", True, []) == 1.0


def test_refusal_precision_recall_f1_with_refused_as_the_positive_class():
    #            TP     FP     -      FN     TP
    refused = [True, True, False, False, True]
    answerable = [False, True, True, False, False]
    scores = metrics.refusal_scores(refused, answerable)
    assert (scores.precision, scores.recall, scores.f1) == (2 / 3, 2 / 3, 2 / 3)
    assert scores.accuracy == 3 / 5
    never = metrics.refusal_scores([False] * 4, [True, True, False, False])
    assert (never.precision, never.recall, never.f1) == (None, 0.0, 0.0)
    perfect = metrics.refusal_scores([False, True], [True, False])
    assert (perfect.precision, perfect.recall, perfect.f1, perfect.accuracy) == (1.0, 1.0, 1.0, 1.0)


def test_latency_percentiles_interpolate_between_ranks():
    assert metrics.percentile([40, 10, 30, 20], 50) == 25
    assert metrics.percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)
    assert metrics.percentile([7], 95) == 7
    assert metrics.percentile([], 50) is None


def test_langchain_answer_is_the_first_sentence_of_the_chunk():
    assert first_sentence("\n(一)优化政府机构职能。制定方案；推动衔接！") == "(一)优化政府机构职能。"
    assert first_sentence("没有句末标点") == "没有句末标点"


# --- the runner and the command, on the real report and model ------------------

def _mixed_subset() -> list[EvalItem]:
    wanted = {"fact": 3, "paraphrase": 2, "multi": 2, "unanswerable": 3, "followup": 2}
    items = []
    for item in load_eval_set(EVAL_SET).items:
        if wanted.get(item.category, 0) > 0:
            wanted[item.category] -= 1
            items.append(item)
    return items


@pytest.mark.slow
def test_run_eval_scores_all_four_systems_and_writes_the_four_files(qa, built_settings, tmp_path):
    items = _mixed_subset()
    assert len(items) == 12
    seen = []
    run = run_eval(items, build_systems(SYSTEM_NAMES, qa), progress=seen.append,
                   sources=read_sources(qa))
    assert len(seen) == len(run.results) == 12 * 4

    paths = write_outputs(run, tmp_path / "eval")
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["chart.png", "report.md", "results.jsonl", "summary.json"]

    rows = [json.loads(line) for line in paths["results.jsonl"].read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 48 and {r["system"] for r in rows} == set(SYSTEM_NAMES)
    assert not any(r["refused"] for r in rows if r["system"] == "langchain")
    assert all(r["citations"] for r in rows if r["system"] == "langchain")
    # Follow-ups are asked in their conversation: the earlier turn reaches ReportQA.
    assert any(r["resolved_question"] for r in rows if r["system"] == "ours" and r["category"] == "followup")
    # `ours` is the citizens' code path: the same answer as asking ReportQA directly.
    first = next(r for r in rows if r["system"] == "ours" and r["id"] == items[0].id)
    assert first["answer"] == qa.ask(items[0].question).text

    summary = json.loads(paths["summary.json"].read_text(encoding="utf-8"))
    assert list(summary["systems"]) == list(SYSTEM_NAMES)
    for system in summary["systems"].values():
        for block in [system["overall"], *system["by_category"].values()]:
            for name in RATE_METRICS:
                assert block[name] is None or 0.0 <= block[name] <= 1.0, name
        assert system["overall"]["n_items"] == 12
    ours = summary["systems"]["ours"]["overall"]
    assert ours["fact_accuracy"] > 0 and ours["recall@10"] > 0 and ours["latency_p95_ms"] >= ours["latency_p50_ms"]
    assert summary["systems"]["langchain"]["overall"]["refusal_precision"] is None  # it never refuses

    report = paths["report.md"].read_text(encoding="utf-8")
    assert all(f"| {name} |" in report for name in SYSTEM_NAMES)
    assert "## `ours` by category" in report and "| fact |" in report
    assert paths["chart.png"].read_bytes().startswith(b"\x89PNG")


@pytest.fixture()
def small_set(tmp_path) -> Path:
    """Four real items and one broken line (line 3)."""
    items = _mixed_subset()
    picked = [items[0], items[3], items[7], items[10]]
    lines = [item.to_json_line() for item in picked]
    lines.insert(2, '{"id": "oops"')
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_eval_command_fails_naming_a_missed_threshold_and_passes_a_met_one(built_settings, small_set, tmp_path):
    @click.group()
    @click.pass_context
    def reportqa(ctx):  # what the `reportqa` group does: settings travel in ctx.obj
        ctx.obj = {"settings": built_settings}

    reportqa.add_command(eval_command)
    runner = CliRunner()
    out = tmp_path / "out"

    failed = runner.invoke(reportqa, ["eval", "--set", str(small_set), "--out", str(out), "--systems", "ours",
                                      "--min-fact-accuracy", "1.01"])
    assert failed.exit_code == 1, failed.output
    assert "--min-fact-accuracy 1.01" in failed.stderr and "fact accuracy" in failed.stderr
    assert "warning: set.jsonl line 3: not valid JSON" in failed.stderr
    assert "| ours |" in failed.stdout
    assert (out / "report.md").exists() and (out / "chart.png").exists()
    assert len((out / "results.jsonl").read_text(encoding="utf-8").splitlines()) == 4

    passed = runner.invoke(eval_command, ["--set", str(small_set), "--out", str(out), "--systems", "ours,bm25",
                                          "--min-fact-accuracy", "0", "--min-groundedness", "0.5"],
                           obj={"settings": built_settings})
    assert passed.exit_code == 0, passed.output
    assert "| bm25 |" in passed.stdout


def test_eval_command_rejects_an_unknown_system(small_set):
    result = CliRunner().invoke(eval_command, ["--set", str(small_set), "--systems", "ours,gpt"])
    assert result.exit_code == 2
    assert "ours,bm25,dense,langchain" in result.output
