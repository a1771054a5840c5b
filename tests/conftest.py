"""Shared fixtures: the real report and the real bundled model, built once per session."""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from reportqa.runtime import prepare_process

prepare_process()  # as the CLI does: OMP_WAIT_POLICY and no telemetry, before the libraries load

from reportqa.config import Settings  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REPORT = PROJECT_ROOT / "data" / "raw" / "dalian-2023-law-based-government-report.txt"


@pytest.fixture(scope="session")
def report_path() -> Path:
    return REPORT


@pytest.fixture(scope="session")
def report_text() -> str:
    return REPORT.read_text(encoding="utf-8")


EXAMPLES = PROJECT_ROOT / "data" / "examples.json"


def make_data_dir(root: Path) -> Path:
    """A data/ folder holding a copy of the real report and its example questions, as on a fresh clone."""
    data = root / "data"
    (data / "raw").mkdir(parents=True)
    shutil.copy(REPORT, data / "raw" / REPORT.name)
    shutil.copy(EXAMPLES, data / EXAMPLES.name)
    return data


@pytest.fixture(scope="session")
def built_settings(tmp_path_factory) -> Settings:
    """Settings whose index was built from the real report with the bundled model."""
    from reportqa.service import ReportQA

    settings = Settings(data_dir=make_data_dir(tmp_path_factory.mktemp("built")))
    ReportQA(settings).ingest()
    return settings


@pytest.fixture(scope="session")
def qa(built_settings):
    from reportqa.service import ReportQA

    service = ReportQA(built_settings)
    service.load()
    return service


def write_variant(raw: Path, city: str, year: int, sidecar: dict | None = None) -> Path:
    """The real report as another city's report of another year (numbers kept: they are what we ask)."""
    import json

    text = REPORT.read_text(encoding="utf-8").replace("大连", city).replace("2023年", f"{year}年")
    path = raw / f"{city}-{year}.txt"
    path.write_text(text, encoding="utf-8")
    if sidecar is not None:
        (raw / f"{path.name}.meta.json").write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")
    return path


SHENYANG_URL = "https://www.shenyang.gov.cn/r/2022.html"


@pytest.fixture(scope="session")
def many_reports(tmp_path_factory) -> Path:
    """data/ with three reports, indexed: Dalian 2023, Shenyang 2022 (sidecar: issuer, URL), Anshan 2021."""
    from reportqa.service import ReportQA

    data = make_data_dir(tmp_path_factory.mktemp("many"))
    write_variant(data / "raw", "沈阳", 2022, {"issuer": "沈阳市人民政府", "url": SHENYANG_URL})
    write_variant(data / "raw", "鞍山", 2021)
    ReportQA(Settings(data_dir=data)).ingest()
    return data


def free_port() -> int:
    """A loopback port nothing listens on, for an app a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Debian's chromium, headless as root, with none of its background fetches (the network is closed).
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module (the browser tests)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of the tests' own on a free loopback port (skipped, with the reason, only where it
    cannot run; under make test, REPORTQA_TESTS_NEED_POSTGRES turns that skip into a failure)."""
    from pg_server import PostgresServer

    server = PostgresServer(free_port())
    reason = server.why_not()
    if reason:
        if os.environ.get("REPORTQA_TESTS_NEED_POSTGRES"):  # make test (CI) installs it: a skip there would hide a gap
            pytest.fail(f"PostgreSQL tests cannot run: {reason}")
        pytest.skip(reason)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_target(request, tmp_path):
    """Where the records go: a SQLite file not yet created, or a fresh database on the tests' PostgreSQL."""
    if request.param == "sqlite":
        return tmp_path / "data" / "feedback.db"
    return request.getfixturevalue("postgres").new_database()

