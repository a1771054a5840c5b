"""core.text's shortcuts give what the slow way gives: the place check that skips jieba's tagger, and
jieba's prefix dictionary read from ReportQA's cache."""
from __future__ import annotations

import json
import marshal
from pathlib import Path

import pytest

from core import text
from ingest.chunker import chunk_document
from ingest.loader import load_report

EVALS = Path(__file__).resolve().parent.parent / "data" / "evals"


def _questions() -> list[str]:
    files = [EVALS / "qa.jsonl", *sorted((EVALS / "corpus").glob("*.jsonl"))]
    return [json.loads(line)["question"] for f in files for line in f.open(encoding="utf-8") if line.strip()]


def test_texts_skipped_by_the_place_check_are_those_the_tagger_finds_no_place_in(report_path):
    """Every development-set question and every sentence of the shipped report: place_names (which tags only
    texts that can hold a place) equals jieba's tagger run on all of them."""
    chunks = chunk_document(load_report(report_path))
    texts = _questions() + [c.sentence_text(s) for c in chunks for s in c.sentences]
    assert len(texts) > 1000
    skipped = 0
    for t in texts:
        tagged = text._tagged_places(text.fold(t))
        assert text.place_names(t) == tagged, t
        skipped += not text._may_name_place(text.fold(t))
    # The shortcut must be worth having: a good share of texts never reach the tagger.
    assert skipped > len(texts) * 0.2, skipped
    assert text.place_names("沈阳市2023年新增多少就业岗位？") == ["沈阳"]
    assert text.place_names("西岗区有多少个便民服务站？") == text._tagged_places("西岗区有多少个便民服务站？") != []


def test_jieba_reads_the_same_prefix_dictionary_from_our_cache(tmp_path, monkeypatch):
    import jieba

    text._jieba()  # loaded (from whichever source) in this process
    want_freq, want_total = dict(jieba.dt.FREQ), jieba.dt.total
    monkeypatch.setenv("REPORTQA_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    assert not text._load_prefix_dict(jieba)  # nothing cached there yet
    text._save_prefix_dict(jieba)
    cached = text._prefix_dict_cache(jieba)
    assert cached.parent == tmp_path / "cache" and cached.exists()
    monkeypatch.setattr(jieba.dt, "FREQ", {})
    assert text._load_prefix_dict(jieba)
    assert jieba.dt.FREQ == want_freq and jieba.dt.total == want_total and jieba.dt.initialized

    words, counts, total = marshal.loads(cached.read_bytes())
    for damaged in (b"not marshal", marshal.dumps((words, counts[:-1], total)), marshal.dumps(42)):
        cached.write_bytes(damaged)  # cut short, counts not matching the words, another shape: not used
        assert not text._load_prefix_dict(jieba)


@pytest.mark.parametrize("words", [["a\nb"]])
def test_a_dictionary_word_with_a_newline_is_not_cached(tmp_path, monkeypatch, words):
    import jieba

    text._jieba()
    monkeypatch.setenv("REPORTQA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(jieba.dt, "FREQ", {**jieba.dt.FREQ, **dict.fromkeys(words, 1)})
    text._save_prefix_dict(jieba)
    assert not text._prefix_dict_cache(jieba).exists()
