"""The web UI: HTML rendering of real answers, escaping, callbacks, and the served /ask API."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import html  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import urllib.request  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from conftest import free_port  # noqa: E402

from reportqa.config import Settings  # noqa: E402
from reportqa.server import launch  # noqa: E402
from reportqa.service import ReportQA  # noqa: E402
from ui import (  # noqa: E402
    api as ui_api,
    build_app,  # noqa: E402
    chat as ui_chat,
    examples as ui_examples,
    page as ui_page,
    render as ui_render,
)

RAW = Path(__file__).resolve().parent.parent / "data" / "raw"
MALICIOUS = '<script>alert(1)</script> **bold** [x](javascript:alert(2)) <img src=x onerror=alert(3)> $$x$$'


@pytest.fixture(scope="module")
def qa(tmp_path_factory) -> ReportQA:
    """A ReportQA on a private copy of the report, index built once for the module.

    (Deliberately its own index, not conftest's session ``qa``: the UI tests stand alone.)
    """
    data = tmp_path_factory.mktemp("ui") / "data"
    shutil.copytree(RAW, data / "raw")
    service = ReportQA(Settings(data_dir=data))
    service.ensure_index()
    return service


@pytest.fixture(scope="module")
def stations(qa):
    return qa.ask("全市建成了多少个便民服务站？")


@pytest.fixture(scope="module")
def refused(qa):
    return qa.ask("大连地铁几点停运？")


@pytest.fixture(scope="module")
def near_miss(qa):
    """Refused, naming the year, on a topic the report covers: with sections to suggest."""
    return qa.ask("2021年大连建成了多少个便民服务站？")


def _call_recording_warnings(fn, *args):
    """Call a Gradio callback outside a request; gr.Warning then becomes a Python warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args)
    return result, [str(w.message) for w in caught]


# ---------------------------------------------------------------- rendering

def test_answer_html_has_markers_cards_and_marked_quote(stations):
    assert not stations.refused and stations.citations
    out = ui_render.render_answer_html(stations)
    assert "1726" in out
    assert '<sup class="rqa-ref">[1]</sup>' in out
    cards = re.findall(r"<details class=\"rqa-card\"( open)?>", out)
    assert len(cards) == len(stations.citations)
    assert cards[0] == " open" and all(c == "" for c in cards[1:])  # first card open, rest collapsed
    first = stations.citations[0]
    assert f'<span class="rqa-n">[1]</span>{html.escape(first.chunk.section)}</summary>' in out
    assert f"第{first.chunk.paragraph}段" in out
    assert html.escape(first.chunk.doc_title) in out
    assert f"<mark>{html.escape(first.quote)}</mark>" in out
    assert "1726" in first.quote


def test_passage_is_the_whole_chunk_with_only_the_quote_marked(stations):
    c = stations.citations[0]
    out = ui_render.render_passage_html(c)
    assert out.count("<mark>") == 1
    assert html.unescape(out.replace("<mark>", "").replace("</mark>", "")) == c.chunk.text
    a, b = ui_render.quote_span(c)
    assert c.chunk.text[a:b] == c.quote


def test_every_marker_has_a_card(qa):
    answer = qa.ask("法治政府建设还有哪些不足？")
    out = ui_render.render_answer_html(answer)
    for c in answer.citations:
        assert f'<sup class="rqa-ref">[{c.n}]</sup>' in out
        assert f'<span class="rqa-n">[{c.n}]</span>' in out


def test_an_off_topic_refusal_suggests_no_sections(refused):
    assert refused.refused and refused.suggestions == []


@pytest.mark.parametrize("which", ["refused", "near_miss"])
def test_refusal_is_marked_and_lists_suggestions(which, request):
    refused = request.getfixturevalue(which)
    assert refused.refused
    out = ui_render.render_answer_html(refused)
    assert "未在报告中找到答案" in out
    assert html.escape(refused.text) in out
    assert "<details" not in out
    for section in refused.suggestions:
        assert f"<li>{html.escape(section)}</li>" in out


def test_malicious_question_is_escaped_everywhere(qa):
    answer = qa.ask(MALICIOUS)
    for out in (ui_render.render_question_html(MALICIOUS), ui_render.render_answer_html(answer)):
        assert "<script" not in out and "<img" not in out
    q = ui_render.render_question_html(MALICIOUS)
    assert q == html.escape(MALICIOUS)
    assert "&lt;script&gt;" in q and "**bold**" in q  # shown literally, Markdown is off in the chat


def test_document_text_is_escaped(stations):
    from dataclasses import replace

    c = stations.citations[0]
    evil_chunk = replace(c.chunk, text="<b>x</b>" + c.chunk.text, start=c.chunk.start - 8,
                         section_path=("<i>sec</i>",), doc_title="<u>t</u>")
    evil = replace(c, chunk=evil_chunk)
    out = ui_render.render_citation_html(evil, open_=True)
    assert "<b>" not in out and "<i>" not in out and "<u>" not in out
    assert "&lt;b&gt;x&lt;/b&gt;" in out and f"<mark>{html.escape(c.quote)}</mark>" in out


def test_header_lists_titles_and_scope(qa):
    out = ui_render.render_header_html(qa.titles())
    assert "大连市2023年法治政府建设情况报告" in out
    assert "只根据" in out and "不会回答" in out
    assert "&lt;x&gt;" in ui_render.render_header_html(["<x>"])
    many = ui_render.render_header_html([f"{city}市2023年法治政府建设情况报告" for city in ("大连", "沈阳", "鞍山", "锦州")])
    assert "《大连市2023年法治政府建设情况报告》等 4 份报告 问答" in many and "沈阳" not in many
    assert "已收录的 4 份报告" in many and "上面这份报告" not in many


# ---------------------------------------------------------------- callbacks

def test_respond_success_appends_messages_and_clears_box(qa):
    respond = ui_chat.make_respond(qa)
    (history, box), warned = _call_recording_warnings(respond, "全市建成了多少个便民服务站？", [])
    assert box == "" and not warned
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert "1726" in history[1]["content"] and "<mark>" in history[1]["content"]


def test_respond_invalid_question_warns_in_chinese_and_keeps_text(qa):
    respond = ui_chat.make_respond(qa)
    (history, box), warned = _call_recording_warnings(respond, "   ", [])
    assert history == [] and box == "   "
    assert warned == ["请输入您的问题。"]
    too_long = "问" * 501
    (history, box), warned = _call_recording_warnings(respond, too_long, [])
    assert box == too_long and history == [] and "问题太长" in warned[0]


def test_respond_unexpected_error_is_a_chinese_apology(qa, caplog):
    class Broken:
        def ask(self, question):
            raise RuntimeError("boom")

    respond = ui_chat.make_respond(Broken())
    (history, box), warned = _call_recording_warnings(respond, "全市建成了多少个便民服务站？", [])
    assert box == "全市建成了多少个便民服务站？"
    assert warned == [ui_page.GENERIC_ERROR_ZH]
    assert ui_page.GENERIC_ERROR_ZH in history[-1]["content"] and "boom" not in history[-1]["content"]
    assert "Traceback" not in history[-1]["content"]
    assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_chat_resolves_follow_ups_against_the_conversation(qa):
    chat = ui_chat.make_chat(qa)
    history, _, turns, _ = list(chat("大连有几支市级应急救援队伍？", [], []))[-1]
    history, box, turns, last = list(chat("它们一年演练了多少次？", history, turns))[-1]
    reply = history[-1]["content"]
    assert "335" in reply and "rqa-resolved" in reply and "大连有几支市级应急救援队伍" in reply
    assert box == "" and len(turns) == 2 and last.answer.resolved_question


def test_ask_api_function(qa):
    ask = ui_api.make_ask_api(qa)
    assert ask("") == {"error": "请输入您的问题。"}
    out = ask("全市建成了多少个便民服务站？")
    assert out == json.loads(json.dumps(out)) and "1726" in out["answer"]


def test_app_has_the_chat_and_the_staff_tab_with_eval_paths_inside_the_data_folder(qa):
    settings = qa.settings
    demo = build_app(qa, eval_set_path=settings.eval_set_path, eval_out_dir=settings.eval_out_path,
                     feedback_path=settings.feedback_path)
    config = json.dumps(demo.get_config_file(), ensure_ascii=False, default=str)
    assert "市民问答" in config and "报告原文" in config and "工作人员" in config and "加入评测集（工作人员）" in config
    eval_set, out_dir = settings.eval_set_path, settings.eval_out_path
    assert eval_set == qa.settings.data_dir / "evals" / "qa.jsonl"
    # An evaluation run writes inside the data folder, never beside it (docs/SECURITY.md).
    assert out_dir == qa.settings.data_dir / "eval" and out_dir.is_relative_to(qa.settings.data_dir)


def test_the_server_opens_the_records_database_once_for_every_door(qa, tmp_path, monkeypatch):
    """The page, /embed/ and REST log to one database, upgraded and purged once at start-up, not once a door."""
    from records.db import Database
    from reportqa.server import create_app

    opened = []
    upgrade = Database.upgrade
    monkeypatch.setattr(Database, "upgrade",  # the real upgrades: each Database's first call (later ones are no-ops)
                        lambda self: (self._ready or opened.append(self.where), upgrade(self))[1])
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setattr("gradio.routes.DEFAULT_TEMP_DIR", str(tmp_path / "gradio"))
    app = create_app(qa, feedback_path=tmp_path / "records.sqlite3")
    app.state.pool.close()
    assert len(opened) == 1 and opened[0].endswith("records.sqlite3")


# ---------------------------------------------------------------- served app

# (Gradio's queue calls pandas APIs that pandas 3 deprecates; those warnings are filtered below.)

@pytest.fixture(scope="module")
def served(qa, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        gradio_tmp = str(tmp_path_factory.mktemp("gradio_tmp"))
        mp.setenv("GRADIO_TEMP_DIR", gradio_tmp)  # uploads and caches, read when the app is built
        # ...and the folder Gradio read at import time, which create_app makes a subfolder in.
        mp.setattr("gradio.routes.DEFAULT_TEMP_DIR", gradio_tmp)
        demo = launch(qa, port=free_port(), prevent_thread_lock=True, quiet=True)
        try:
            yield demo
        finally:
            demo.close()


@pytest.fixture(scope="module")
def client(served, tmp_path_factory):
    from gradio_client import Client

    # analytics_enabled=False plus the env var: the client sends no telemetry; a URL src never asks the Hub.
    c = Client(served.local_url, analytics_enabled=False, verbose=False,
               download_files=str(tmp_path_factory.mktemp("client_downloads")))
    try:
        yield c
    finally:
        c.close()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:::gradio.queueing")
def test_served_ask_answers_with_citation(client):
    out = client.predict("全市建成了多少个便民服务站？", api_name="/ask")
    assert out["refused"] is False and "1726" in out["answer"]
    assert any("1726" in c["quote"] for c in out["citations"])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:::gradio.queueing")
def test_served_ask_refuses_off_topic(client):
    out = client.predict("大连地铁几点停运？", api_name="/ask")
    assert out["refused"] is True and out["citations"] == []
    assert out["answer"] == "抱歉，报告中没有找到与该问题相关的内容。"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:::gradio.queueing")
def test_served_ask_empty_question_is_a_chinese_error(client):
    assert client.predict("", api_name="/ask") == {"error": "请输入您的问题。"}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:::gradio.queueing")
def test_served_page_loads_nothing_from_the_internet(served):
    base = served.local_url
    page = urllib.request.urlopen(base, timeout=10).read().decode()
    theme = urllib.request.urlopen(base + "theme.css", timeout=10).read().decode()
    config = json.loads(urllib.request.urlopen(base + "config", timeout=10).read())
    for text in (page, theme):
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text and "cdn" not in text.lower()
    # every script and stylesheet is served by us
    assert all(not u.startswith(("http:", "https:", "//")) for u in re.findall(r'(?:src|href)="([^"]+)"', page))
    assert config["stylesheets"] == []
    assert "PingFang SC" in theme
    assert "大连市2023年法治政府建设情况报告" in json.dumps(config, ensure_ascii=False)


# ---------------------------------------------------------------- examples, copy text, the report view

def _shipped_examples(qa) -> dict[str, list[str]]:
    """The shipped report's example questions, as chosen in data/examples.json."""
    from reportqa.examples import ExampleBook

    book = ExampleBook(qa, RAW.parent / "examples.json", lambda: [])
    return book.groups("dalian-2023-law-based-government-report.txt")


def test_every_shipped_example_is_answered_and_the_off_topic_one_is_refused(qa):
    groups = _shipped_examples(qa)
    for group, questions in groups.items():
        for q in questions:
            assert qa.ask(q).refused is (group == ui_examples.OFF_TOPIC_GROUP), (group, q)
    assert {"便民服务", "执法", "复议与调解", "数字政府", "2024年打算"} <= set(groups)


def test_a_refusal_suggests_related_example_questions(qa, refused):
    groups = _shipped_examples(qa)
    related = ui_render.related_examples(refused.question, groups)
    out = ui_render.render_answer_html(refused, related)
    assert len(related) == 3 and "大连地铁几点停运？" not in related
    assert all(f'<a class="rqa-ask" href="{ui_render.ask_anchor(q)}">{html.escape(q)}</a>' in out for q in related)
    assert ui_render.related_examples("行政执法资格", groups)[0] == "有多少人获得行政执法资格？"
    assert ui_render.related_examples("行政执法资格", {}) == []  # a report without examples suggests none


def test_plain_text_to_copy_has_the_answer_and_its_sources(stations, refused):
    text = ui_render.render_answer_plain(stations)
    c = stations.citations[0]
    assert text.startswith(stations.text.splitlines()[0]) and "\n来源：\n" in text
    assert f"[1] 《{c.chunk.doc_title}》 · 大连市 · 2023年 › {c.chunk.section}（第{c.chunk.paragraph}段）：「{c.quote}」" in text
    assert "“全市通办”" in c.quote  # a quote holding “” gets 「」 around it, not a second pair of “”
    assert ui_render.render_answer_plain(refused).startswith(refused.text)


def test_report_view_keeps_paragraphs_escaped_with_offsets_the_cards_link_to(stations):
    text = "第一段<script>x</script>\n\n第二段 **b**\n"
    out = ui_render.render_report_html({"r.txt": text})
    assert "<script" not in out and "&lt;script&gt;" in out and out.count('class="rqa-para"') == 2
    assert 'data-start="0"' in out and f'data-start="{text.index("第二段")}"' in out
    c = stations.citations[0]
    assert f'href="#rqa-src-{c.start}-{c.end}-{c.chunk.source}"' in ui_render.render_citation_html(c)


# ---------------------------------------------------------------- reply kinds and a refusal's taps

def test_a_related_reply_is_labelled_and_keeps_its_citations(stations):
    from dataclasses import replace

    related = replace(stations, reply="related")
    out = ui_render.render_answer_html(related)
    assert ui_render.RELATED_LABEL == "报告中的相关内容" and "报告中的相关内容" in out
    assert '<details class="rqa-card" open>' in out and '<sup class="rqa-ref">[1]</sup>' in out
    assert ui_render.render_answer_plain(related).startswith("报告中的相关内容：") and "来源：" in out + "来源："
    assert "报告中的相关内容" not in ui_render.render_answer_html(stations)


def test_a_real_related_reply_says_once_what_the_report_does_not_give(qa):
    answers = [qa.ask(q) for q in ("网上办事方便吗？", "执法人员上岗前要培训吗？", "2024年有哪些工作打算？")]
    related = [a for a in answers if a.reply == "related"]
    assert related, [a.reply for a in answers]
    for answer in related:
        out = ui_render.render_answer_html(answer)
        assert out.count("没有直接回答") == 1 and "以下是报告中与它相关的原文" in out
        assert out.count("<details class=\"rqa-card\"") == len(answer.citations) >= 1
        plain = ui_render.render_answer_plain(answer)
        assert plain.count("没有直接回答") == 1 and all(c.quote[:10] in plain for c in answer.citations)


def test_a_refusal_links_each_section_to_where_it_starts_and_never_suggests_a_title(near_miss, qa):
    refused = near_miss
    from dataclasses import replace

    from ui.chat import section_places

    places, title = section_places(qa), qa.titles()[0]
    sections = ui_render.suggested_sections(refused, {title})
    assert sections and title in refused.suggestions + [title]
    answer = replace(refused, suggestions=[title, *refused.suggestions])
    out = ui_render.render_answer_html(answer, places=places, titles={title})
    assert f">{html.escape(title)}<" not in out and "可能有相关背景" in out
    for section in sections:
        source, start = places[section]
        assert f'<a class="rqa-goto" href="{ui_render.section_anchor((source, start))}">{html.escape(section)}</a>' in out
        heading = section.split(" › ")[-1]
        # The link lands on the section's first passage: it opens with its heading, or follows the heading's line.
        text = qa.report_text(source)
        assert text[start:].startswith(heading[:8]) or text[:start].rstrip().endswith(heading)
    assert title not in ui_render.render_answer_plain(answer, {title})
