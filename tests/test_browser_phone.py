"""Citizens on a 375-pixel phone and staff's 问答记录, in a real headless Chromium.

Phone: the header's share of the first screen, the input's placeholder on one line, no floating label over
the first message, the answer's first line inside the chat box's visible area (measured with the element's
and its scrolling ancestors' rectangles) after typing and after tapping an example, a refusal's taps (a
section opens the report there, a question asks it), Chinese notices, the report tab's title, contrast.
Staff: the 问答记录 table, filters and charts, retention at start, logout. Screenshots go to reports/screenshots.
"""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import re  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from conftest import free_port  # noqa: E402

from records import QuestionLog  # noqa: E402
from records.schema import questions  # noqa: E402
from reportqa.server import launch  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:::gradio.queueing")]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "reports" / "screenshots"
STATIONS = "全市建成了多少个便民服务站？"
OFF_TOPIC = "大连地铁几点停运？"
# Refused, naming the year, on a topic the report covers: its sections are worth suggesting (an off-topic
# question gets no section suggestions, only example questions).
NEAR_MISS = "2021年大连建成了多少个便民服务站？"
TITLE = "大连市2023年法治政府建设情况报告"
USER, PASSWORD = "staff", "正确的密码-123"
ANSWER_TIMEOUT = 60_000
PHONE = {"width": 375, "height": 812}
OLD_QUESTION, RECENT_QUESTION = "一百天前的问题：行政复议要交费吗？", "昨天的问题：有多少人获得行政执法资格？"


def _seed(db: Path, qa) -> None:
    """Two logged questions from before the server starts: one past the 90-day retention, one from yesterday."""
    log = QuestionLog(db)
    for question, age in ((OLD_QUESTION, timedelta(days=100)), (RECENT_QUESTION, timedelta(days=1))):
        row_id = log.record(qa.ask(question.split("：", 1)[1]), 10.0)
        when = (datetime.now(UTC) - age).isoformat(timespec="seconds")
        with log.database.write() as conn:
            conn.execute(questions.update().where(questions.c.id == row_id).values(question=question, created_at=when))


@pytest.fixture(scope="module")
def app(qa, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("phone")
    _seed(tmp / "feedback.db", qa)
    with pytest.MonkeyPatch.context() as mp:
        gradio_tmp = str(tmp / "gradio_tmp")
        mp.setenv("GRADIO_TEMP_DIR", gradio_tmp)
        mp.setattr("gradio.routes.DEFAULT_TEMP_DIR", gradio_tmp)
        server = launch(qa, port=free_port(), eval_set_path=tmp / "evals" / "qa.jsonl", eval_out_dir=tmp / "out",
                        feedback_path=tmp / "feedback.db", staff_credentials=(USER, PASSWORD), prevent_thread_lock=True)
        try:
            yield server, tmp
        finally:
            server.close()


@pytest.fixture()
def phone(browser):
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


# The element's first line, and whether it lies inside every scrolling ancestor's visible box and the viewport.
FIRST_LINE_VISIBLE = """(el) => {
  const first = el.querySelector('p') || el;
  const r = first.getBoundingClientRect();
  const line = parseFloat(getComputedStyle(first).lineHeight) || 24;
  const top = r.top, bottom = r.top + Math.min(line, r.height);
  const boxes = [];
  for (let p = first.parentElement; p && p !== document.documentElement; p = p.parentElement) {
    const s = getComputedStyle(p);
    if (/(auto|scroll|hidden)/.test(s.overflowY) && p.scrollHeight > p.clientHeight + 1) {
      const b = p.getBoundingClientRect();
      boxes.push({cls: p.className, top: b.top, bottom: b.top + p.clientHeight});
    }
  }
  boxes.push({cls: 'viewport', top: 0, bottom: window.innerHeight});
  const outside = boxes.filter(b => top < b.top - 1 || bottom > b.bottom + 1);
  return {top, bottom, boxes: boxes.length, scrolling: boxes.length - 1, outside};
}"""


def _first_line_in_view(page, locator) -> dict:
    for _ in range(30):  # the page's script scrolls after two animation frames
        seen = locator.evaluate(FIRST_LINE_VISIBLE)
        if not seen["outside"]:
            return seen
        page.wait_for_timeout(100)
    return seen


def _ask(page, question: str, expected: str):
    from playwright.sync_api import expect

    box = page.get_by_label("您的问题")
    box.fill(question)
    box.press("Enter")
    expect(page.locator("#rqa-chat .bot-row").last).to_contain_text(expected, timeout=ANSWER_TIMEOUT)
    return page.locator("#rqa-chat .bot-row .rqa-answer").last


def _contrast(page, selector: str) -> float:
    return page.evaluate("""(sel) => {
      const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 4).map(Number);
      const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
                                   .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
      const el = document.querySelector(sel);
      let bg = null;
      for (let p = el; p; p = p.parentElement) {
        const c = rgb(getComputedStyle(p).backgroundColor);
        if (c.length < 4 || c[3] > 0) { bg = c; break; }
      }
      bg = bg || [255, 255, 255];
      const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(bg)].sort((x, y) => y - x);
      return (a + 0.05) / (b + 0.05);
    }""", selector)


def test_phone_first_screen_header_placeholder_label_and_contrast(app, phone):
    from playwright.sync_api import expect

    server, _ = app
    phone.goto(server.local_url)
    box = phone.get_by_label("您的问题")
    expect(box).to_be_visible(timeout=30_000)
    header = phone.locator("#rqa-header").bounding_box()
    assert header["y"] + header["height"] <= PHONE["height"] / 4, header
    # The placeholder fits on one line of the box: its text measured in the box's own font.
    fit = box.evaluate("""(el) => {
      const s = getComputedStyle(el);
      const ctx = document.createElement('canvas').getContext('2d');
      ctx.font = `${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
      const room = el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
      return {text: el.placeholder, width: ctx.measureText(el.placeholder).width, room};
    }""")
    assert fit["text"].endswith("发送") and fit["width"] <= fit["room"], fit
    assert _contrast(phone, "#rqa-header .rqa-scope") >= 4.5
    _ask(phone, STATIONS, "1726")
    first = phone.locator("#rqa-chat .message-row").first.bounding_box()
    labels = phone.locator("#rqa-chat [data-testid=block-label], #rqa-chat label.block-label, #rqa-chat .block-label")
    for i in range(labels.count()):
        if labels.nth(i).is_visible():
            lb = labels.nth(i).bounding_box()
            overlap = not (lb["y"] + lb["height"] <= first["y"] or first["y"] + first["height"] <= lb["y"]
                           or lb["x"] + lb["width"] <= first["x"] or first["x"] + first["width"] <= lb["x"])
            assert not overlap, (lb, first)


def test_phone_answer_first_line_in_view_typed_and_after_tapping_an_example(app, phone):
    from playwright.sync_api import expect

    server, _ = app
    phone.goto(server.local_url)
    expect(phone.get_by_label("您的问题")).to_be_visible(timeout=30_000)
    answer = _ask(phone, STATIONS, "1726")
    seen = _first_line_in_view(phone, answer)
    assert seen["scrolling"] >= 1 and not seen["outside"], seen  # the chat box scrolls: its long card is below
    # An example below the chat, tapped after scrolling down to it: the new answer comes into view.
    example = phone.get_by_role("button", name="有多少人获得行政执法资格？").first
    example.scroll_into_view_if_needed()
    assert phone.evaluate("scrollY") > 300
    example.tap()
    expect(phone.locator("#rqa-chat .bot-row").last).to_contain_text("2952", timeout=ANSWER_TIMEOUT)
    latest = phone.locator("#rqa-chat .bot-row .rqa-answer").last
    seen = _first_line_in_view(phone, latest)
    assert not seen["outside"], seen
    assert "2952" in latest.locator("p").first.inner_text()
    # The chat is not at its newest line (the answer's first line is in view), so Gradio shows its ↓ button:
    # at the chat's right edge, over the gutter beside the answer, not over the middle of its text.
    down = phone.locator("#rqa-chat .scroll-down-button-container button")
    expect(down).to_be_visible(timeout=5_000)
    chat, button = phone.locator("#rqa-chat").bounding_box(), down.bounding_box()
    assert chat["x"] + chat["width"] - (button["x"] + button["width"]) < 40, (chat, button)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=SCREENSHOTS / "phone-answer.png")


def test_phone_refusal_taps_open_the_section_and_ask_the_question(app, phone):
    from playwright.sync_api import expect

    server, _ = app
    phone.goto(server.local_url)
    expect(phone.get_by_label("您的问题")).to_be_visible(timeout=30_000)
    refusal = _ask(phone, NEAR_MISS, "未在报告中找到答案")
    assert not _first_line_in_view(phone, refusal)["outside"]
    sections = refusal.locator("a.rqa-goto")
    assert sections.count() >= 1
    names = [sections.nth(i).inner_text() for i in range(sections.count())]
    assert all(TITLE not in name for name in names)
    expect(refusal).to_contain_text("可能有相关背景")  # says why a section may help after saying nothing matched
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=SCREENSHOTS / "phone-refusal.png")
    heading = names[0].split(" › ")[-1]
    sections.first.tap()
    target = phone.locator("#rqa-report #rqa-hl.rqa-section-start")
    expect(target).to_be_visible(timeout=10_000)
    expect(target).to_be_in_viewport()
    assert target.inner_text().startswith(heading.split("，")[0][:12])
    expect(phone.locator("#rqa-report .rqa-report-name")).to_have_text(f"《{TITLE}》")  # the title, not the file

    phone.get_by_role("tab", name="市民问答").tap()
    suggestion = phone.locator("#rqa-chat .bot-row").last.locator("a.rqa-ask").first
    asked = suggestion.inner_text().removeprefix("问：")
    suggestion.tap()
    expect(phone.locator("#rqa-chat .user-row").last).to_have_text(asked, timeout=ANSWER_TIMEOUT)
    expect(phone.locator("#rqa-chat .bot-row").last.locator(".rqa-answer")).to_be_visible(timeout=ANSWER_TIMEOUT)
    assert not _first_line_in_view(phone, phone.locator("#rqa-chat .bot-row .rqa-answer").last)["outside"]


def test_notices_and_screen_reader_text_are_chinese(app, page):
    from playwright.sync_api import expect

    server, _ = app
    page.goto(server.local_url)
    _ask(page, STATIONS, "1726")
    page.locator("#rqa-chat").get_by_role("button", name="赞").last.click()
    toast = page.locator(".toast-body").first
    expect(toast).to_contain_text("感谢反馈", timeout=10_000)
    expect(page.locator(".toast-title").first).to_have_text(re.compile(r"^\s*提示\s*$"))
    expect(page.locator("#rqa-chat [role=log]")).to_have_attribute("aria-label", "对话")
    message = page.locator("#rqa-chat .bot-row [aria-label]:not(button)").last
    expect(message).to_have_attribute("aria-label", re.compile("^回答："))
    label = message.get_attribute("aria-label")
    assert "<" not in label and "1726" in label and "message" not in label
    # 查看原文 opens the report tab; nothing read out (or shown) is a raw i18n key like common.complete.
    page.locator("#rqa-chat a.rqa-open").first.click()
    expect(page.locator("#rqa-report #rqa-hl")).to_be_visible(timeout=10_000)
    for _ in range(14):  # Gradio announces a finished event up to 5 s later
        text = page.evaluate("document.body.innerText + ' ' + [...document.querySelectorAll('[aria-label]')]"
                             ".map(e => e.getAttribute('aria-label')).join(' ')")
        assert not re.search(r"\bcommon\.\w+|\berrors\.\w+", text), re.search(r"\bcommon\.\w+", text)
        page.wait_for_timeout(500)
    page.get_by_role("tab", name="工作人员").click()
    page.get_by_label("用户名").fill(USER)
    page.get_by_label("密码").fill("wrong")
    page.get_by_role("button", name="登录").click()
    expect(page.locator(".toast-body").last).to_contain_text("用户名或密码不正确", timeout=10_000)
    titles = page.locator(".toast-title").all_inner_texts()
    assert titles and all(t.strip() in ("提示", "出错了") for t in titles), titles


def test_staff_question_log_table_filters_retention_and_logout(app, page):
    from playwright.sync_api import expect

    server, tmp = app
    page.goto(server.local_url)
    _ask(page, OFF_TOPIC, "未在报告中找到答案")
    _ask(page, STATIONS, "1726")
    page.locator("#rqa-chat").get_by_role("button", name="赞").last.click()
    expect(page.locator(".toast-body").first).to_contain_text("感谢反馈", timeout=10_000)
    page.get_by_role("tab", name="工作人员").click()
    page.get_by_label("用户名").fill(USER)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_label("密码").press("Enter")
    page.get_by_role("tab", name="问答记录").click()
    table = page.locator("#rqa-qlog-table")
    expect(table).to_contain_text(STATIONS, timeout=15_000)
    expect(table).to_contain_text(OFF_TOPIC)
    expect(table).to_contain_text(RECENT_QUESTION)
    expect(table).not_to_contain_text(OLD_QUESTION)  # past the 90 days: deleted when the server started
    assert OLD_QUESTION not in {r.question for r in QuestionLog(tmp / "feedback.db").rows()}
    expect(table).to_contain_text("拒答")
    expect(page.locator("#rqa-qlog-summary")).to_contain_text("保存 90 天")
    row = table.get_by_role("row").filter(has_text=STATIONS).first
    expect(row).to_contain_text("赞")
    expect(row).to_contain_text("优化政府机构职能")
    expect(page.locator("#rqa-qlog-rate img")).to_be_visible()
    expect(page.locator("#rqa-qlog-topics img")).to_be_visible()
    expect(page.get_by_role("button", name="导出 CSV").last).to_be_visible()
    # 回复类型 = 拒答 leaves only refusals
    page.locator("#rqa-qlog-reply input").click()
    page.get_by_role("option", name="拒答").click()
    expect(table).not_to_contain_text(STATIONS, timeout=10_000)
    expect(table).to_contain_text(OFF_TOPIC)
    page.locator("#rqa-qlog-reply input").click()
    page.get_by_role("option", name="全部").click()
    expect(table).to_contain_text(STATIONS, timeout=10_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#rqa-staff-content").screenshot(path=SCREENSHOTS / "staff-questions.png")
    # 退出登录: the staff view and its data leave the page
    page.get_by_role("button", name="退出登录").click()
    expect(page.locator("#rqa-staff-content")).to_be_hidden(timeout=10_000)
    expect(page.locator("#rqa-login-status")).to_contain_text("已退出登录")
    expect(page.get_by_role("button", name="登录")).to_be_visible()
    expect(page.locator("#rqa-qlog-table")).to_be_hidden()
    # Logging in again shows the log afresh (the logout emptied it, it was not just hidden).
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_label("密码").press("Enter")
    page.get_by_role("tab", name="问答记录").click()
    expect(page.locator("#rqa-qlog-table")).to_contain_text(STATIONS, timeout=15_000)


def test_without_staff_credentials_there_is_no_staff_tab_and_the_log_says_how(qa, browser, tmp_path, monkeypatch,
                                                                              caplog):
    from playwright.sync_api import expect

    from ui.app import STAFF_OFF_LOG

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio_tmp"))
    server = launch(qa, port=free_port(), eval_set_path=tmp_path / "qa.jsonl", eval_out_dir=tmp_path / "out",
                    feedback_path=tmp_path / "feedback.db", staff_credentials=None, prevent_thread_lock=True)
    try:
        page = browser.new_page(locale="zh-CN")
        page.goto(server.local_url)
        expect(page.get_by_label("您的问题")).to_be_visible(timeout=30_000)
        expect(page.get_by_role("tab", name="报告原文")).to_be_visible()
        expect(page.get_by_role("tab", name="工作人员")).to_have_count(0)
        assert "REPORTQA_STAFF_PASSWORD" not in page.content()
        page.close()
    finally:
        server.close()
    assert STAFF_OFF_LOG in caplog.text and "REPORTQA_STAFF_PASSWORD" in STAFF_OFF_LOG
