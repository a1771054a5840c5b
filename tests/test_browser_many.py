"""Several reports in a real headless Chromium: narrowing the chat, citing another report, a full queue."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import time  # noqa: E402

import pytest  # noqa: E402
from conftest import SHENYANG_URL, free_port  # noqa: E402
from test_browser import ANSWER_TIMEOUT, SCREENSHOTS, STATIONS, _ask, _serve  # noqa: E402

from reportqa.config import Settings  # noqa: E402
from reportqa.server import launch  # noqa: E402
from reportqa.service import ReportQA  # noqa: E402
from ui.page import BUSY_ZH  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:::gradio.queueing")]


@pytest.fixture(scope="module")
def many_qa(many_reports):
    qa = ReportQA(Settings(data_dir=many_reports))
    qa.load()
    return qa


@pytest.fixture(scope="module")
def app(many_qa, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-many")
    with pytest.MonkeyPatch.context() as mp:
        demo = _serve(many_qa, tmp, mp)
        try:
            yield demo
        finally:
            demo.close()


def test_narrow_to_one_report_and_view_its_original(app, page):
    from playwright.sync_api import expect

    page.goto(app.local_url)
    scope = page.locator("#rqa-scope")
    expect(scope).to_be_visible(timeout=30_000)
    scope.locator("input").click()
    page.get_by_role("option", name="沈阳市人民政府的报告").click()
    expect(scope.locator("input")).to_have_value("沈阳市人民政府的报告")

    _ask(page, STATIONS, "1726")
    card = page.locator("#rqa-chat details.rqa-card").first
    expect(card).to_have_attribute("open", "")  # the first source is shown open
    meta = card.locator(".rqa-meta")
    expect(meta).to_contain_text("《沈阳市2022年法治政府建设情况报告》 · 沈阳市人民政府 · 2022年")
    expect(meta.locator("a")).to_have_attribute("href", SHENYANG_URL)
    expect(page.locator("#rqa-chat")).not_to_contain_text("《大连市2023年")
    page.screenshot(path=str(SCREENSHOTS / "scope-shenyang.png"), full_page=True)

    # The report tab shows the first report; 查看原文 on a 沈阳 card loads and marks the 沈阳 one.
    card.locator("a.rqa-open").click()
    highlight = page.locator("#rqa-report mark#rqa-hl")
    expect(highlight).to_be_visible(timeout=15_000)
    expect(highlight).to_contain_text("1726")
    expect(page.locator("#rqa-report h2")).to_have_text("《沈阳市2022年法治政府建设情况报告》")  # the title, not the file
    expect(page.locator("#rqa-report-pick input")).to_have_value("《沈阳市2022年法治政府建设情况报告》")
    page.screenshot(path=str(SCREENSHOTS / "report-tab-other-report.png"))


class SlowQA:
    """The real service, taking three seconds longer to answer: a queue fills while it works."""

    def __init__(self, qa):
        self._qa = qa

    def __getattr__(self, name):
        return getattr(self._qa, name)

    def ask_stream(self, *args, **kwargs):
        time.sleep(3)
        yield from self._qa.ask_stream(*args, **kwargs)


def test_a_full_queue_says_so_in_chinese(qa, browser, tmp_path):
    """One answer running and one waiting fill a queue of one; a third citizen is told to try later."""
    from playwright.sync_api import expect

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio_tmp"))
        demo = launch(SlowQA(qa), port=free_port(), eval_set_path=tmp_path / "qa.jsonl", eval_out_dir=tmp_path / "out",
                      feedback_path=tmp_path / "feedback.db", concurrency_limit=1, max_size=1,
                      prevent_thread_lock=True, quiet=True)
    contexts = [browser.new_context(locale="zh-CN") for _ in range(3)]
    try:
        pages = [c.new_page() for c in contexts]
        for page in pages:
            page.goto(demo.local_url)
            expect(page.get_by_label("您的问题")).to_be_visible(timeout=30_000)
        for page in pages:
            box = page.get_by_label("您的问题")
            box.fill(STATIONS)
            box.press("Enter")
            time.sleep(0.4)  # in this order: running, waiting, turned away
        expect(pages[2].get_by_text(BUSY_ZH).first).to_be_visible(timeout=15_000)
        text = pages[2].locator("body").inner_text()
        assert "currently busy" not in text and "Error" not in text
        expect(pages[2].locator(".toast-title").first).to_contain_text("提示")  # a full queue is no error of theirs
        pages[2].screenshot(path=str(SCREENSHOTS / "queue-full.png"))
        assert pages[2].get_by_label("您的问题").input_value() == STATIONS  # still there to send again
        # The first two are answered in turn; nobody's question is lost.
        for page in pages[:2]:
            expect(page.locator("#rqa-chat")).to_contain_text("1726", timeout=ANSWER_TIMEOUT)
    finally:
        for c in contexts:
            c.close()
        demo.close()


def test_the_ask_api_narrows_by_report_issuer_or_year(app, tmp_path):
    from gradio_client import Client

    client = Client(app.local_url, analytics_enabled=False, verbose=False, download_files=str(tmp_path))
    try:
        assert len({c["source"] for c in client.predict(STATIONS, api_name="/ask")["citations"]}) >= 1
        by_year = client.predict(STATIONS, "", "", 2021, api_name="/ask")
        assert {c["source"] for c in by_year["citations"]} == {"鞍山-2021.txt"} and "1726" in by_year["answer"]
        by_issuer = client.predict(STATIONS, issuer="沈阳市人民政府", api_name="/ask")
        assert {c["year"] for c in by_issuer["citations"]} == {2022}
        # A year no report has is refused with the ones there are, as the CLI does (not a silent refusal).
        nothing = client.predict(STATIONS, year=1999, api_name="/ask")
        assert "1999" in nothing["error"] and "2021、2022、2023" in nothing["error"]
    finally:
        client.close()
