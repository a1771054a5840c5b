"""Shared fixtures: the real report and the real bundled model, built once per session."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reportqa.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REPORT = PROJECT_ROOT / "data" / "raw" / "dalian-2023-law-based-government-report.txt"


@pytest.fixture(scope="session")
def report_path() -> Path:
    return REPORT


@pytest.fixture(scope="session")
def report_text() -> str:
    return REPORT.read_text(encoding="utf-8")


def make_data_dir(root: Path) -> Path:
    """A data/ folder holding a copy of the real report, as on a fresh clone."""
    data = root / "data"
    (data / "raw").mkdir(parents=True)
    shutil.copy(REPORT, data / "raw" / REPORT.name)
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
