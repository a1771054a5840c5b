"""The whole page in a real headless Chromium: ask, read sources, vote, refusals, escaping, staff login, phone."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import re  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from conftest import free_port  # noqa: E402

from records.feedback import FeedbackStore  # noqa: E402
from reportqa.server import launch  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:::gradio.queueing")]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "reports" / "screenshots"
STATIONS = "全市建成了多少个便民服务站？"
OFF_TOPIC = "大连地铁几点停运？"
SCRIPT = "<script>alert(1)</script>"
USER, PASSWORD = "staff", "正确的密码-123"
ANSWER_TIMEOUT = 60_000


def _serve(qa, tmp: Path, mp: pytest.MonkeyPatch, staff_credentials: tuple[str, str] | None = None):
    gradio_tmp = str(tmp / "gradio_tmp")
    mp.setenv("GRADIO_TEMP_DIR", gradio_tmp)
    mp.setattr("gradio.routes.DEFAULT_TEMP_DIR", gradio_tmp)
    return launch(qa, port=free_port(), eval_set_path=tmp / "evals" / "qa.jsonl", eval_out_dir=tmp / "out",
                  feedback_path=tmp / "feedback.db", staff_credentials=staff_credentials, prevent_thread_lock=True,
                  quiet=True)


@pytest.fixture(scope="module")
def app(qa, tmp_path_factory):
    """The app with staff credentials configured, its feedback db and eval set under tmp."""
    tmp = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as mp:
        demo = _serve(qa, tmp, mp, staff_credentials=(USER, PASSWORD))
        try:
            yield demo, tmp
        finally:
            demo.close()


def _ask(page, question: str, expected: str):
    """Type ``question``, press Enter, wait until the newest bot message contains ``expected``."""
    from playwright.sync_api import expect

    box = page.get_by_label("您的问题")
    box.fill(question)
    box.press("Enter")
    last = page.locator("#rqa-chat .bot").last
    expect(page.locator("#rqa-chat")).to_contain_text(expected, timeout=ANSWER_TIMEOUT)
    return last


def test_ask_with_enter_cite_open_source_copy_and_view_the_original(app, page):
    from playwright.sync_api import expect

    demo, _ = app
    page.goto(demo.local_url)
    _ask(page, STATIONS, "1726")
    chat = page.locator("#rqa-chat")
    expect(chat.locator("sup.rqa-ref").first).to_have_text("[1]")
    expect(chat.locator(".rqa-passage mark").first).to_contain_text("1726")
    card = chat.locator("details.rqa-card").first
    expect(card).to_have_attribute("open", "")
    card.locator("summary").click()  # close, then open again
    expect(card).not_to_have_attribute("open", "")
    card.locator("summary").click()
    expect(card).to_have_attribute("open", "")
    # 复制回答 copies this plain text: the answer, then 来源： with section and quote
    copied = page.locator("#rqa-copy-text textarea")
    expect(copied).to_have_value(re.compile("来源："), timeout=10_000)
    text = copied.input_value()
    assert text.startswith("全市建成便民服务站1726个。[1]") and "来源：" in text
    assert "[1] 《大连市2023年法治政府建设情况报告》 · 大连市 · 2023年 › 一、主要工作举措和成效" in text
    assert "「全市建成便民服务站1726个,300个高频事项实现“全市通办”。」" in text  # no second pair of “” around it
    assert "<" not in text
    page.get_by_role("button", name="复制回答").click()  # reachable, and it does not break anything
    # 查看原文: the whole report, the quote marked and scrolled into view
    card.locator("a.rqa-open").click()
    hl = page.locator("#rqa-report #rqa-hl")
    expect(hl).to_have_text("全市建成便民服务站1726个,300个高频事项实现“全市通办”。")
    expect(hl).to_be_in_viewport()
    assert page.locator("#rqa-report .rqa-para").count() > 10


def test_thumbs_up_is_stored_with_an_optional_comment(app, page):
    from playwright.sync_api import expect

    demo, tmp = app
    store = FeedbackStore(tmp / "feedback.db")
    before = store.count() if (tmp / "feedback.db").exists() else 0
    page.goto(demo.local_url)
    _ask(page, STATIONS, "1726")
    page.locator("#rqa-chat").get_by_role("button", name="赞").last.click()
    expect(page.get_by_text("感谢反馈").first).to_be_visible(timeout=10_000)
    for _ in range(50):
        if store.count() > before:
            break
        time.sleep(0.1)
    row = store.rows()[0]
    assert (row.question, row.vote, row.comment, row.refused) == (STATIONS, "up", "", False)
    assert "1726" in row.answer and any("1726" in c["quote"] for c in row.citations)
    comment = page.get_by_label("补充意见（可选）")
    comment.fill("很清楚")
    page.get_by_role("button", name="提交反馈").click()
    expect(comment).to_be_hidden(timeout=10_000)
    assert store.rows()[0].comment == "很清楚" and store.rows()[0].vote == "up"
    assert store.count() == before + 1  # the comment lands on the vote's own row


def test_off_topic_is_refused_with_suggestions_and_script_is_only_text(app, page):
    from playwright.sync_api import expect

    demo, _ = app
    page.goto(demo.local_url)
    last = _ask(page, OFF_TOPIC, "未在报告中找到答案")
    expect(last).to_contain_text("抱歉，报告中没有找到与该问题相关的内容。")
    expect(last.locator("ul.rqa-related li")).to_have_count(3)
    _ask(page, SCRIPT, SCRIPT)
    expect(page.locator("#rqa-chat .user").last).to_have_text(SCRIPT)
    assert page.locator("#rqa-chat script").count() == 0
    page.wait_for_timeout(500)
    assert page.dialogs == []


def test_an_example_click_asks_it(app, page):
    from playwright.sync_api import expect

    demo, _ = app
    page.goto(demo.local_url)
    page.get_by_role("button", name="有多少人获得行政执法资格？").first.click()
    expect(page.locator("#rqa-chat")).to_contain_text("2952", timeout=ANSWER_TIMEOUT)


def test_staff_tab_needs_the_right_password(app, page):
    from playwright.sync_api import expect

    demo, _ = app
    page.goto(demo.local_url)
    page.get_by_role("tab", name="工作人员").click()
    expect(page.locator("#rqa-set-table")).to_have_count(0)
    page.get_by_label("用户名").fill(USER)
    page.get_by_label("密码").fill("wrong")
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#rqa-login-status")).to_contain_text("用户名或密码不正确", timeout=10_000)
    expect(page.locator("#rqa-staff-content")).to_be_hidden()
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_label("密码").press("Enter")
    expect(page.locator("#rqa-set-table")).to_be_visible(timeout=10_000)
    page.get_by_role("tab", name="反馈").click()
    expect(page.locator("#rqa-fb-table")).to_be_visible()
    expect(page.get_by_role("button", name="导出 CSV")).to_be_visible()


def test_staff_tab_without_credentials_is_not_shown(qa, browser, tmp_path, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.delenv("REPORTQA_STAFF_USER", raising=False)
    monkeypatch.delenv("REPORTQA_STAFF_PASSWORD", raising=False)
    demo = _serve(qa, tmp_path, monkeypatch)
    try:
        page = browser.new_page(locale="zh-CN")
        page.goto(demo.local_url)
        expect(page.get_by_role("tab", name="报告原文")).to_be_visible(timeout=30_000)
        expect(page.get_by_role("tab", name="工作人员")).to_have_count(0)  # the operator reads README and the log
        expect(page.locator("#rqa-login-button")).to_have_count(0)
        expect(page.locator("#rqa-set-table")).to_have_count(0)
        page.close()
    finally:
        demo.close()


def test_phone_and_desktop_layouts_and_screenshots(app, browser):
    from playwright.sync_api import expect

    demo, _ = app
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, width, height in (("phone", 375, 812), ("desktop", 1280, 900)):
        context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                                      is_mobile=width < 500, has_touch=width < 500)
        try:
            page = context.new_page()
            page.goto(demo.local_url)
            expect(page.get_by_label("您的问题")).to_be_visible(timeout=30_000)
            _ask(page, STATIONS, "1726")
            expect(page.locator("#rqa-chat .rqa-passage mark").first).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
        finally:
            context.close()


def test_keyboard_only_tab_reaches_send_and_enter_asks(app, page):
    from playwright.sync_api import expect

    demo, _ = app
    page.goto(demo.local_url)
    box = page.get_by_label("您的问题")
    box.focus()
    page.keyboard.type("多少个高频事项实现全市通办？")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "发送"
    page.keyboard.press("Enter")
    expect(page.locator("#rqa-chat")).to_contain_text("300个高频事项", timeout=ANSWER_TIMEOUT)
