"""The scale benchmark's report generator: parseable, varied, reproducible."""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, REPORT

from ingest.loader import load_report


@pytest.fixture(scope="module")
def generate():
    spec = importlib.util.spec_from_file_location("bench_generate", PROJECT_ROOT / "bench" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?%?", text)


def test_reports_parse_into_the_real_reports_sections(generate, tmp_path):
    real = load_report(REPORT)
    paths = generate.write_corpus(tmp_path, 8, seed=1)
    docs = [load_report(p, tmp_path) for p in paths]

    for path, doc in zip(paths, docs):
        meta = json.loads(path.with_name(f"{path.stem}.meta.json").read_text(encoding="utf-8"))
        assert set(meta) == {"title", "issuer", "year", "url"}
        assert doc.title == meta["title"] and doc.year == meta["year"] and doc.issuer == meta["issuer"]
        # The only heading with a number is 二、2024年工作打算: the year after the report's.
        expected = [tuple(h.replace("2024", str(meta["year"] + 1)) for h in p.section_path) for p in real.paragraphs]
        assert [p.section_path for p in doc.paragraphs] == expected
        assert generate.variation_key(doc.text) == generate.variation_key(real.text)

    texts = [d.text for d in docs]
    assert len(set(texts)) == len(texts) and real.text not in texts
    assert len({d.issuer for d in docs}) > 1 and len({d.year for d in docs}) > 1
    assert all(generate.BASE_CITY not in t for t in texts)
    assert all(_numbers(t) != _numbers(real.text) for t in texts)
    # Percentages stay percentages and at most 100 %.
    assert all(float(n[:-1]) <= 100 for t in texts for n in _numbers(t) if n.endswith("%"))


def test_same_seed_same_corpus(generate):
    first = [generate.generate_report(i, seed=7) for i in range(3)]
    assert first == [generate.generate_report(i, seed=7) for i in range(3)]
    assert first[0].text != generate.generate_report(0, seed=8).text
    # Report i does not depend on the corpus size: a small corpus is a prefix of a large one.
    assert generate.generate_report(2, seed=7) == first[2]


def test_cli_writes_reports_and_sidecars(generate, tmp_path):
    generate.main([str(tmp_path / "out"), "--reports", "3", "--seed", "2"])
    written = sorted(Path(tmp_path / "out").iterdir())
    assert len([p for p in written if p.name.endswith(".meta.json")]) == 3
    assert len([p for p in written if p.suffix == ".txt"]) == 3
