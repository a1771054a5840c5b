"""The staff tab: the add-to-set form, the set table and its filters, the evaluation run, failures, a real browser."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import inspect  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from conftest import free_port  # noqa: E402

from core import text  # noqa: E402
from core.types import Turn  # noqa: E402
from evals import (  # noqa: E402
    CitedPassage,
    EvalItem,
    ItemResult,
    LoadError,
    Passage,
    Response,
    drafts,  # noqa: E402
    load_eval_set,
)
from evals.report import failure_reasons  # noqa: E402
from reportqa.config import Settings  # noqa: E402
from reportqa.server import launch  # noqa: E402
from ui import auth, staff_add, staff_eval, staff_tables  # noqa: E402
from ui.chat import make_chat  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EVAL_SET = PROJECT_ROOT / "data" / "evals" / "qa.jsonl"
STATIONS = "全市建成了多少个便民服务站？"
PLANTED = "planted-001"  # a mislabelled item ours must fail: it answers a question marked unanswerable


def _item(**changes) -> EvalItem:
    row = {"id": "t-1", "question": STATIONS, "history": [], "answerable": True, "category": "fact",
           "reference_answer": "1726个。", "required_facts": ["1726"],
           "evidence": ["全市建成便民服务站1726个,300个高频事项实现“全市通办”。"]}
    return EvalItem.model_validate({**row, **changes})


def _unanswerable(**changes) -> EvalItem:
    return _item(**{"answerable": False, "category": "unanswerable", "reference_answer": "报告中没有相关内容。",
                    "required_facts": [], "evidence": [], **changes})


def _calling(fn, *args):
    """Call a Gradio callback outside a request; gr.Warning then becomes a Python warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args)
        if inspect.isgenerator(result):  # a streaming callback: its last state is what the user ends with
            result = list(result)[-1]
    return result, [str(w.message) for w in caught]


@pytest.fixture()
def small_set(tmp_path) -> Path:
    """Seven items of the shipped set (one per category at least) and one planted failure."""
    rows = [json.loads(line) for line in EVAL_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    picked, seen = [], {}
    for row in rows:
        if seen.get(row["category"], 0) < (2 if row["category"] in ("fact", "unanswerable") else 1):
            seen[row["category"]] = seen.get(row["category"], 0) + 1
            picked.append(row)
    planted = _unanswerable(id=PLANTED, reference_answer="<script>alert(1)</script>")
    lines = [json.dumps(r, ensure_ascii=False) for r in picked] + [planted.to_json_line()]
    assert len(lines) == 8
    path = tmp_path / "evals" / "qa.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def staff(qa, small_set, tmp_path) -> staff_eval.StaffEval:
    return staff_eval.StaffEval(qa, small_set, tmp_path / "out")


# ---------------------------------------------------------------- the set as a table

def test_filter_by_category_and_by_result():
    items = [_item(id="a"), _item(id="b", category="paraphrase"), _unanswerable(id="c"), _item(id="d")]
    passed = {"a": True, "b": False, "c": False}  # d was not in the last run
    ids = lambda xs: [x.id for x in xs]  # noqa: E731
    assert ids(staff_tables.filter_items(items, passed)) == ["a", "b", "c", "d"]
    assert ids(staff_tables.filter_items(items, passed, category="fact")) == ["a", "d"]
    assert ids(staff_tables.filter_items(items, passed, result=staff_tables.PASSED)) == ["a"]
    assert ids(staff_tables.filter_items(items, passed, result=staff_tables.FAILED)) == ["b", "c"]
    assert ids(staff_tables.filter_items(items, passed, category="unanswerable", result=staff_tables.FAILED)) == ["c"]
    assert ids(staff_tables.filter_items(items, {}, result=staff_tables.FAILED)) == []  # nothing run yet, nothing failed
    table = staff_tables.set_table(items, passed)
    assert list(table.columns) == staff_tables.SET_COLUMNS
    assert table.values.tolist()[2] == ["c", "unanswerable", "否", STATIONS, "报告中没有相关内容。", staff_tables.FAILED]
    assert table.values.tolist()[3][-1] == staff_tables.NOT_RUN


def test_schema_errors_show_line_field_in_chinese_and_are_escaped():
    out = staff_tables.load_errors_html([LoadError(3, "an answerable item needs at least one evidence quote", "evidence"),
                              LoadError(5, "not valid JSON (Expecting value at column 1)"),
                              LoadError(7, "<b>odd</b>", "<i>x</i>")], "qa.jsonl")
    assert "第 3 行，“证据原文”（evidence）：可回答的题目至少要有一条证据原文" in out
    assert "第 5 行：不是有效的 JSON" in out
    assert "<b>" not in out and "<i>" not in out and "&lt;b&gt;odd&lt;/b&gt;" in out
    assert staff_tables.load_errors_html([], "qa.jsonl") == ""


def test_refresh_shows_valid_items_under_the_errors_of_the_bad_lines(staff, small_set):
    with small_set.open("a", encoding="utf-8") as f:
        f.write('{"id": "broken"\n')
        f.write(_item(id="t-9").to_json_line().replace('"evidence": [', '"evidence": [], "x": [') + "\n")
    (errors, table, items), warned = _calling(staff_eval.make_refresh_callback(staff), staff_tables.ALL, staff_tables.ALL, {})
    assert not warned and len(items) == len(table) == 8
    assert "第 9 行：不是有效的 JSON" in errors and "第 10 行，“证据原文”（evidence）" in errors


# ---------------------------------------------------------------- prefill from a real answer

def test_prefill_from_an_answer_strips_markers_and_lists_quotes_numbers_and_titles(qa):
    answer = qa.ask(STATIONS)
    draft = drafts.draft_from_answer(answer, [], "staff-004")
    assert "[1]" in answer.text and not re.search(r"\[\d+\]", draft.reference_answer)
    assert draft.reference_answer == answer.text.replace("[1]", "")
    assert draft.evidence == [c.quote for c in answer.citations]
    assert draft.required_facts[:2] == ["1726", "300"]
    assert (draft.id, draft.question, draft.answerable, draft.category, draft.history) == \
        ("staff-004", STATIONS, True, "fact", [])

    plans = drafts.draft_from_answer(qa.ask("2024年有哪些工作打算？"), [], "staff-005")
    assert "《法治政府建设实施纲要(2021—2025年)》" in plans.required_facts
    assert "2021" not in plans.required_facts  # a number inside a title is part of the title
    assert plans.category == "multi" and len(plans.evidence) > 1
    # what the form is prefilled with is a valid item as it stands
    drafts.item_from_form(plans.id, plans.question, plans.answerable, plans.category, plans.reference_answer,
                     "\n".join(plans.evidence), "\n".join(plans.required_facts))


def test_prefill_from_a_refusal_and_from_a_follow_up(qa):
    refused = drafts.draft_from_answer(qa.ask("大连地铁几点停运？"), [], "staff-001")
    assert (refused.answerable, refused.category) == (False, "unanswerable")
    assert refused.reference_answer == drafts.REFUSED_REFERENCE
    assert refused.evidence == [] and refused.required_facts == []

    earlier = [Turn("2023年大连建成了多少个便民服务站？", "全市建成便民服务站1726个。")]
    follow = drafts.draft_from_answer(qa.ask("那2024年呢？"), earlier, "staff-002")
    assert follow.category == "followup" and follow.history == earlier
    unrelated = drafts.draft_from_answer(qa.ask("对行政处罚不服怎么办？"), earlier, "staff-003")
    assert unrelated.history == [] and unrelated.category != "followup"


def test_chat_remembers_turns_and_hands_the_last_answer_to_the_form(qa):
    chat = make_chat(qa)
    (history, box, turns, last), _ = _calling(chat, STATIONS, [], [])
    assert box == "" and len(history) == 2 and last.earlier == []
    assert turns == [Turn(STATIONS, text.strip_markers(last.answer.text))]
    (history, box, turns2, last2), _ = _calling(chat, "那2024年呢？", history, turns)
    assert last2.earlier == turns and len(turns2) == 2
    (_, _, turns3, last3), warned = _calling(chat, "   ", history, turns2)
    assert last3 is None and turns3 == turns2 and warned == ["请输入您的问题。"]


def test_next_item_id(tmp_path):
    path = tmp_path / "set.jsonl"
    assert drafts.next_item_id(path) == "staff-001"
    path.write_text("\n".join([_item(id="staff-001").to_json_line(), _item(id="staff-007").to_json_line(),
                               _item(id="fact-100").to_json_line(), "{broken"]) + "\n", encoding="utf-8")
    assert drafts.next_item_id(path) == "staff-008"


# ---------------------------------------------------------------- adding an item

FORM = dict(item_id="staff-009", question=STATIONS, answerable=True, category="fact", reference_answer="1726个。",
            evidence_text="全市建成便民服务站1726个,300个高频事项实现“全市通办”。\n", facts_text="1726\n\n300",
            history=[], with_history=False)


def test_a_bad_item_is_rejected_in_chinese_naming_the_field_and_the_file_is_unchanged(staff, small_set):
    add = staff_add.make_add_callback(staff)
    before = small_set.read_bytes()
    for changes, words in [
        (dict(evidence_text=""), ["“证据原文”（evidence）", "至少要有一条证据原文"]),
        (dict(facts_text="9999"), ["“证据原文”（evidence）", "9999", "不在任何一条证据原文中"]),
        (dict(question="  "), ["“问题”（question）", "不能为空"]),
        (dict(category="unanswerable"), ["“类别”（category）", "unanswerable"]),
        (dict(evidence_text="全市建成便民服务站9999个。", facts_text="9999"), ["“证据原文”（evidence）", "在报告中找不到"]),
        (dict(item_id=json.loads(small_set.read_text(encoding="utf-8").splitlines()[0])["id"]),
         ["“编号”（id）", "已在评测集中"]),
    ]:
        (status, next_id), warned = _calling(add, *{**FORM, **changes}.values())
        assert len(warned) == 1 and all(w in warned[0] for w in words), (changes, warned)
        assert "rqa-bad" in status and next_id == {"__type__": "update"}
        assert small_set.read_bytes() == before


def test_a_good_item_is_appended_and_loads_back(staff, small_set):
    add = staff_add.make_add_callback(staff)
    earlier = [Turn("2023年大连建成了多少个便民服务站？", "全市建成便民服务站1726个。")]
    form = {**FORM, "history": earlier, "with_history": True, "category": "followup"}
    (status, next_id), warned = _calling(add, *form.values())
    assert not warned and "已加入：staff-009" in status and next_id == "staff-010"
    loaded = load_eval_set(small_set)
    assert loaded.errors == [] and len(loaded.items) == 9
    item = loaded.items[-1]
    assert (item.id, item.question, item.category, item.required_facts) == ("staff-009", STATIONS, "followup",
                                                                            ["1726", "300"])
    assert [t.to_dict() for t in item.history] == [{"question": earlier[0].question, "answer": earlier[0].answer}]
    # unticking 连同前文 files the question on its own
    (status, _), _ = _calling(add, *{**FORM, "item_id": "staff-010", "history": earlier}.values())
    assert "已加入：staff-010" in status and load_eval_set(small_set).items[-1].history == []


# ---------------------------------------------------------------- failures

def test_failure_card_escapes_every_piece_of_text():
    evil = "<script>alert(1)</script>"
    item = _item(id=f"x{evil}", question=f"问{evil}", reference_answer=f"参考{evil}",
                 history=[{"question": f"前{evil}", "answer": f"答{evil}"}])
    cited = [CitedPassage(Passage(f"段落{evil}全市建成便民服务站1726个。"), "全市建成便民服务站1726个。")]
    result = ItemResult(item, "ours", Response(f"我们{evil}[1]", False, cited), [], {},
                        missing_facts=[f"缺{evil}"], ungrounded=[])
    out = staff_tables.failure_card_html(result)
    assert "<script" not in out and out.count("&lt;script&gt;") == 8
    assert "<mark>全市建成便民服务站1726个。</mark>" in out and "[1]" not in out
    assert "缺少：缺&lt;script&gt;" in out


# ---------------------------------------------------------------- running the evaluation from the tab

@pytest.mark.slow
def test_run_from_the_tab_writes_the_files_and_shows_tables_chart_and_failures(staff, tmp_path):
    run = staff_eval.make_run_callback(staff)
    out, warned = _calling(run, staff_tables.ALL, staff_tables.FAILED)
    assert not warned
    shown = dict(zip(staff_eval.RUN_OUTPUTS, out))
    assert "完成：8 题 × 4 个系统" in shown["status"]

    summary = shown["summary"]
    assert summary["系统"].tolist() == ["ours", "bm25", "dense", "langchain"]
    assert {"事实准确率", "拒答F1", "引用精确率", "有据率", "R@5"} <= set(summary.columns)
    assert shown["categories"]["类别"].tolist()[-1] == staff_tables.ALL
    assert {"fact", "unanswerable"} <= set(shown["categories"]["类别"])

    chart = tmp_path / "out" / "chart.png"
    assert chart.read_bytes().startswith(b"\x89PNG") and shown["chart"].size[0] > 500
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["chart.png", "report.md", "results.jsonl",
                                                                   "summary.json"]

    passed = shown["passed"]
    assert len(passed) == 8 and passed[PLANTED] is False
    assert f"{PLANTED} · unanswerable" in shown["failures"] and "回答了不可回答的问题" in shown["failures"]
    assert "<script" not in shown["failures"] and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown["failures"]
    # the table was filtered to 未通过 and the failures agree with report.md's list
    assert shown["table"]["编号"].tolist() == [i for i, ok in passed.items() if not ok]
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^### (\S+) \(", report, re.M)) == {i for i, ok in passed.items() if not ok}


def test_pass_fail_rules_match_report_md(qa):
    from evals import build_systems, run_eval

    items = [_item(id="a"), _unanswerable(id="b"), _item(id="c", required_facts=["300个高频事项"],
                                                         evidence=["300个高频事项实现“全市通办”"])]
    run = run_eval(items, build_systems(["ours"], qa))
    for result in run.results:
        assert bool(staff_tables.failure_reasons_zh(result)) == bool(failure_reasons(result))
    assert staff_tables.passed_by_id(run) == {"a": True, "b": False, "c": True}


def test_a_second_run_while_one_is_going_only_warns(staff, tmp_path):
    run = staff_eval.make_run_callback(staff)
    with staff.run_lock:
        out, warned = _calling(run, staff_tables.ALL, staff_tables.ALL)
    assert warned == [staff_eval.BUSY_ZH] and "一次只运行一个" in warned[0]
    assert all(o == {"__type__": "update"} for o in out)
    assert not (tmp_path / "out").exists()


def test_an_empty_set_is_a_chinese_message(qa, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("{broken\n", encoding="utf-8")
    out, warned = _calling(staff_eval.make_run_callback(staff_eval.StaffEval(qa, empty, tmp_path / "out")), staff_tables.ALL, staff_tables.ALL)
    assert warned == ["评测集 empty.jsonl 中没有可用的题目。"] and "没有可用的题目" in out[0]


# ---------------------------------------------------------------- in a real browser

@pytest.fixture()
def served(qa, small_set, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        gradio_tmp = str(tmp_path / "gradio_tmp")
        mp.setenv("GRADIO_TEMP_DIR", gradio_tmp)
        mp.setattr("gradio.routes.DEFAULT_TEMP_DIR", gradio_tmp)
        demo = launch(qa, port=free_port(), eval_set_path=small_set, eval_out_dir=tmp_path / "out",
                      staff_credentials=("staff", "pw-for-tests"),
                      feedback_path=tmp_path / "feedback.db",
                      prevent_thread_lock=True, quiet=True)
        try:
            yield demo
        finally:
            demo.close()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:::gradio.queueing")
def test_in_a_browser_run_the_evaluation_then_file_a_chat_question(served, small_set, tmp_path, page):
    from playwright.sync_api import expect

    page.goto(served.local_url)
    # Never wait for network idle: Gradio keeps a stream open.
    page.get_by_role("tab", name="工作人员").click()
    page.get_by_label("用户名").fill("staff")
    page.get_by_label("密码").fill("pw-for-tests")
    page.get_by_role("button", name="登录").click()
    table = page.locator("#rqa-set-table")
    expect(table).to_contain_text(PLANTED, timeout=30_000)
    page.locator("#rqa-run-eval").click()
    # (the progress bar over every output also says "正在评测 langchain"; wait for the end)
    expect(page.locator("#rqa-run-status")).to_contain_text("完成：8 题", timeout=180_000)
    expect(page.locator("#rqa-summary")).to_contain_text("事实准确率")
    expect(page.locator("#rqa-summary")).to_contain_text("langchain")
    expect(page.locator("#rqa-failures")).to_contain_text(PLANTED, timeout=30_000)
    expect(page.locator("#rqa-chart img")).to_be_visible(timeout=30_000)
    expect(table).to_contain_text("未通过")
    page.screenshot(path=tmp_path / "staff.png", full_page=True)
    shutil.copy(tmp_path / "staff.png", "/tmp/staff.png")  # for a person to look at

    page.get_by_role("tab", name="市民问答").click()
    page.locator("#rqa-question textarea").fill(STATIONS)
    page.locator("#rqa-question textarea").press("Enter")
    expect(page.locator("#rqa-chat")).to_contain_text("1726", timeout=60_000)
    page.get_by_text("加入评测集（工作人员）").click()
    expect(page.locator("#rqa-add-question textarea")).to_have_value(STATIONS, timeout=30_000)
    expect(page.locator("#rqa-add-id input, #rqa-add-id textarea").first).to_have_value("staff-001")
    page.locator("#rqa-add-button").click()
    expect(page.locator("#rqa-add-status")).to_contain_text("已加入：staff-001", timeout=30_000)
    page.screenshot(path=tmp_path / "chat.png", full_page=True)
    shutil.copy(tmp_path / "chat.png", "/tmp/staff-chat.png")

    item = load_eval_set(small_set).items[-1]
    assert (item.id, item.question, item.answerable, item.category) == ("staff-001", STATIONS, True, "fact")
    assert "1726" in item.required_facts and item.evidence and "[1]" not in item.reference_answer


# ---------------------------------------------------------------- login and the feedback view

def test_credentials_come_from_the_environment_and_are_compared_exactly():
    def staff_credentials(environ: dict) -> tuple[str, str] | None:
        with pytest.MonkeyPatch.context() as mp:
            for name in ("REPORTQA_STAFF_USER", "REPORTQA_STAFF_PASSWORD"):
                mp.delenv(name, raising=False)
            for name, value in environ.items():
                mp.setenv(name, value)
            return Settings().staff_credentials

    assert staff_credentials({}) is None
    assert staff_credentials({"REPORTQA_STAFF_USER": "a"}) is None
    creds = staff_credentials({"REPORTQA_STAFF_USER": "a", "REPORTQA_STAFF_PASSWORD": "密码"})
    assert creds == ("a", "密码")
    assert auth.check_password(creds, "a", "密码")
    assert not auth.check_password(creds, "a", "密") and not auth.check_password(creds, "b", "密码")
    assert not auth.check_password(None, "", "")


def test_feedback_table_export_and_a_thumbs_down_prefills_the_form(qa, staff, tmp_path):
    from records.feedback import FeedbackStore
    from ui import staff_feedback as F

    store = FeedbackStore(tmp_path / "feedback.db")
    answer = qa.ask(STATIONS)
    store.add(STATIONS, answer, "up")
    store.add("大连地铁几点停运？", qa.ask("大连地铁几点停运？"), "down", "<b>没用</b>")
    store.add(STATIONS, answer, "down", "数字不对", history=[{"question": "前", "answer": "答"}])
    refresh = F.make_feedback_refresh(store, tmp_path)
    (table, by_id, csv_path, jsonl_path), warned = _calling(refresh, True, "down", "", "")
    assert not warned and table["评价"].tolist() == ["踩", "踩"] and table["意见"].tolist()[0] == "数字不对"
    import csv
    import io

    exported = list(csv.DictReader(io.StringIO(Path(csv_path).read_text(encoding="utf-8-sig"))))
    assert table["拒答"].tolist() == ["否", "是"]  # words, not emoji or an empty cell
    assert [r["vote"] for r in exported] == ["down", "down"] and Path(csv_path).parent.parent == tmp_path
    assert len(Path(jsonl_path).read_text(encoding="utf-8").splitlines()) == 2
    out, warned = _calling(refresh, True, staff_tables.ALL, "2024-13-01", "")
    assert warned == [F.BAD_DATE_ZH]
    out, _ = _calling(refresh, False, staff_tables.ALL, "", "")
    assert all(o == {"__type__": "update"} for o in out)  # nothing for a session that has not logged in

    row = by_id[max(by_id)]
    fields, _ = _calling(staff_add.make_prefill_callback(staff), row)
    _, question, answerable, category, reference, evidence, facts = fields[:7]
    assert (question, answerable, category) == (STATIONS, True, "fact")
    assert "1726" in facts.splitlines() and "1726" in evidence and "[1]" not in reference
    refused_row = by_id[min(by_id)]
    fields, _ = _calling(staff_add.make_prefill_callback(staff), refused_row)
    assert fields[2:4] == (False, "unanswerable")
