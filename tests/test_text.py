"""core.text's shortcuts give what the slow way gives: the place check that skips jieba's tagger, and
jieba's prefix dictionary read from ReportQA's cache."""
from __future__ import annotations

import json
import marshal
from pathlib import Path

import pytest

from core import text
from core.places import KNOWN_PLACES, PLACE_SUFFIXES
from ingest.chunker import chunk_document
from ingest.loader import load_report

EVALS = Path(__file__).resolve().parent.parent / "data" / "evals"


def _questions() -> list[str]:
    files = [EVALS / "qa.jsonl", *sorted((EVALS / "corpus").glob("*.jsonl"))]
    return [json.loads(line)["question"] for f in files for line in f.open(encoding="utf-8") if line.strip()]


def _tagger_places(folded: str) -> list[str]:
    """The places jieba's part-of-speech tagger finds: what place_names did before it read the dictionary's
    place words instead (the oracle here)."""
    import jieba.posseg as posseg

    found = []
    for word in posseg.lcut(folded):
        name = word.word
        base = name[:-1] if name.endswith(PLACE_SUFFIXES) and len(name) > 2 else name
        if base in KNOWN_PLACES or (word.flag == "ns" and name.endswith(PLACE_SUFFIXES) and len(name) > 2):
            found.append(base)
    return found


def test_place_names_agree_with_jiebas_tagger(report_path):
    """Every development-set question and every sentence of the shipped report: texts the shortcut skips hold
    no place for the tagger, and the others get the tagger's places but for words the dictionary lacks (the
    tagger guesses those: 孟连县 in one corpus report)."""
    import jieba

    chunks = chunk_document(load_report(report_path))
    texts = _questions() + [c.sentence_text(s) for c in chunks for s in c.sentences]
    assert len(texts) > 1000
    skipped, differ = 0, []
    for t in texts:
        folded = text.fold(t)
        want, got = _tagger_places(folded), text.place_names(t)
        if not text._may_name_place(folded):
            skipped += 1
            assert want == got == [], t
        elif want != got:
            differ.append(t)
            unknown = all(not jieba.dt.FREQ.get(w + suffix) for w in set(want) ^ set(got) for suffix in PLACE_SUFFIXES)
            assert unknown, (t, want, got)
    assert len(differ) <= len(texts) * 0.005, differ
    # The shortcut must be worth having: a good share of texts is never cut into words.
    assert skipped > len(texts) * 0.2, skipped
    assert text.place_names("沈阳市2023年新增多少就业岗位？") == ["沈阳"]
    assert text.place_names("西岗区有多少个便民服务站？") == ["西岗"]
    assert text.place_names("台风天上门服务吗？") == []


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


def test_a_questions_topic_words_come_in_the_same_order_in_every_process():
    """Coverage sums the words' weights in this order and its ties break on those sums: in a set's order, which
    follows each process's hash seed, a restarted server (or a second evaluation run) could reply otherwise."""
    import os
    import subprocess
    import sys

    script = ("import json, sys; from core.text import content_terms; "
              "print(json.dumps([content_terms(q) for q in json.load(sys.stdin)], ensure_ascii=False))")
    orders = []
    for seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", script], input=json.dumps(_questions()), capture_output=True,
                              text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed},
                              cwd=Path(__file__).resolve().parent.parent)
        orders.append(json.loads(done.stdout))
    assert sum(len(terms) > 3 for terms in orders[0]) > 500  # questions with words enough to order
    assert orders[0] == orders[1]
