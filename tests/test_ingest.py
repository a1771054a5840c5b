"""Structure parsing and chunking of the real report; loader errors on bad files."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ReportFileError
from core.text import split_sentences
from ingest.chunker import ChunkerSettings, chunk_document
from ingest.loader import load_report
from ingest.structure import parse_structure

NUMERALS = "一二三四五六七八九"


def test_parser_finds_title_both_top_headings_and_nine_subsections(report_text):
    title, headings, paragraphs = parse_structure(report_text)
    assert title == "大连市2023年法治政府建设情况报告"
    tops = [h[0] for h in headings if len(h) == 1]
    assert tops == ["一、主要工作举措和成效", "二、2024年工作打算"]
    subs = [h[1] for h in headings if len(h) == 2]
    assert [s[1] for s in subs] == list(NUMERALS)
    assert subs[0] == "(一)优化政府机构职能,推动政府作用更好发挥"
    assert all(h[0] == "一、主要工作举措和成效" for h in headings if len(h) == 2)


def test_paragraph_offsets_slice_the_source_and_metadata_is_dropped(report_text):
    _, _, paragraphs = parse_structure(report_text)
    assert [p.number for p in paragraphs] == list(range(1, len(paragraphs) + 1))
    for p in paragraphs:
        assert report_text[p.start : p.end] == p.text
    assert not any("编辑" in p.text for p in paragraphs)
    # The shortcomings paragraph closes 一、, it is not part of (九).
    shortcomings = next(p for p in paragraphs if p.text.startswith("2023年,我市法治政府建设工作虽然"))
    assert shortcomings.section_path == ("一、主要工作举措和成效",)
    plans = paragraphs[-1]
    assert plans.section_path == ("二、2024年工作打算",)


def test_full_width_brackets_and_markdown_headings():
    text = "# 某市报告\n\n## 一、总体情况\n\n（一）便民服务\n\n建成服务站10个。开通热线。\n\n（二）执法。加强执法。\n\n## 二、明年打算\n\n继续推进。\n"
    title, headings, paragraphs = parse_structure(text)
    assert title == "某市报告"
    assert headings[:2] == [("一、总体情况",), ("一、总体情况", "（一）便民服务")]
    assert paragraphs[0].section_path == ("一、总体情况", "（一）便民服务")
    assert paragraphs[1].section_path == ("一、总体情况", "（二）执法")
    assert paragraphs[2].section_path == ("二、明年打算",)


def test_sentences_split_on_chinese_and_half_width_terminators():
    text = "第一句。第二句！第三句？第四句；fifth; sixth? 末尾"
    spans = split_sentences(text)
    assert [text[s.start : s.end] for s in spans] == ["第一句。", "第二句！", "第三句？", "第四句；", "fifth;", "sixth?", "末尾"]


def test_chunks_are_whole_sentences_within_one_section_and_slice_the_source(report_text, report_path):
    doc = load_report(report_path)
    chunks = chunk_document(doc)
    assert len(chunks) >= 12  # at least one chunk a paragraph
    for chunk in chunks:
        assert report_text[chunk.start : chunk.end] == chunk.text
        assert chunk.text[-1] in "。！？；!?;”"
        para = doc.paragraphs[chunk.paragraph - 1]
        assert para.start <= chunk.start and chunk.end <= para.end
        assert chunk.section_path == para.section_path
        assert "".join(chunk.sentence_text(s) for s in chunk.sentences) == chunk.text
        assert len(chunk.text) <= ChunkerSettings().max_chars or len(chunk.sentences) == 1
    assert any("1726" in c.text and "(一)" in c.section for c in chunks)


def test_chunk_ids_are_stable_and_unique(report_path):
    first = [c.chunk_id for c in chunk_document(load_report(report_path))]
    second = [c.chunk_id for c in chunk_document(load_report(report_path))]
    assert first == second
    assert len(set(first)) == len(first)
    # A different size is a different chunking, so different ids.
    assert first != [c.chunk_id for c in chunk_document(load_report(report_path), ChunkerSettings(max_chars=120))]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\n ", "empty"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8", "neither UTF-8 nor GB18030/GBK"),
        ("report.rtf", b"{\\rtf1}", "unsupported"),
        ("report.pdf", b"%PDF-1.4", "not a readable PDF"),
    ],
)
def test_bad_report_files_give_clear_errors(tmp_path: Path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ReportFileError) as err:
        load_report(path)
    assert expected in err.value.message
    assert name in err.value.message
    assert err.value.message_zh and err.value.message_zh != err.value.message


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_gbk_text_is_decoded(tmp_path: Path, report_text, encoding):
    """A GBK/GB18030 .txt (as government sites still publish) reads like its UTF-8 copy."""
    path = tmp_path / "report.txt"
    path.write_bytes(report_text.encode(encoding))
    doc = load_report(path)
    assert doc.title == "大连市2023年法治政府建设情况报告"
    assert doc.text == report_text
    assert [p.text for p in doc.paragraphs] == [p.text for p in parse_structure(report_text)[2]]
