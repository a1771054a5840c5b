"""HTML, Word and PDF versions of the real report parse to the same sections as the .txt."""
from __future__ import annotations

import json
import shutil
from html import escape
from pathlib import Path

import pytest

from core.errors import ReportFileError
from ingest.build import build_index
from ingest.chunker import chunk_document
from ingest.formats import page_of
from ingest.loader import find_reports, load_report, read_sidecar

NUMERALS = "一二三四五六七八九"
TITLE = "大连市2023年法治政府建设情况报告"
TOPS = ["一、主要工作举措和成效", "二、2024年工作打算"]
CHROME = ["首页", "政务公开", "政务服务", "互动交流", "走进大连", "版权所有", "网站地图", "联系我们", "辽ICP备",
          "相关链接", "热点专题", "当前位置", "字号"]


def _blocks(report_text: str) -> list[str]:
    return [line.strip() for line in report_text.splitlines() if line.strip()]


def _assert_report_structure(doc, report_path):
    expected = load_report(report_path)
    assert doc.title == TITLE
    assert [h[0] for h in doc.headings if len(h) == 1] == TOPS
    subs = [h[1] for h in doc.headings if len(h) == 2]
    assert [s[1] for s in subs] == list(NUMERALS)
    assert doc.headings == expected.headings
    assert [p.section_path for p in doc.paragraphs] == [p.section_path for p in expected.paragraphs]
    assert [p.text for p in doc.paragraphs] == [p.text for p in expected.paragraphs]
    for p in doc.paragraphs:
        assert doc.text[p.start : p.end] == p.text


# --- builders of the other formats, from the real report text -----------------------

def write_portal_html(report_text: str, path: Path) -> Path:
    lines = _blocks(report_text)
    title, body = lines[0], lines[1:]
    paras = "\n".join(f'<p style="text-indent:2em">{escape(line)}</p>' for line in body)
    path.write_text(f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}_政务公开_大连市人民政府</title>
<style>.nav li {{ float: left }}</style><script>var _hmt = _hmt || []; console.log("统计代码");</script></head>
<body>
<div class="header"><div class="logo">大连市人民政府</div><div class="search"><input placeholder="请输入关键词"></div></div>
<div class="nav"><ul><li><a href="/">首页</a></li><li><a href="/gk">政务公开</a></li><li><a href="/fw">政务服务</a></li>
<li><a href="/hd">互动交流</a></li><li><a href="/zj">走进大连</a></li></ul></div>
<div class="wrap">
  <div class="position">当前位置：<a href="/">首页</a> &gt; <a href="/gk">政务公开</a> &gt; 法治政府建设</div>
  <div class="sidebar"><h3>热点专题</h3><ul><li><a href="/a">优化营商环境</a></li><li><a href="/b">相关链接</a></li></ul></div>
  <div class="main">
    <h1 class="article-title">{title}</h1>
    <div class="info">发布时间：2024-03-28 来源：大连市司法局 字号：[大 中 小]</div>
    <div class="TRS_Editor" id="zoom">
{paras}
    </div>
    <div class="share">分享到：微信 微博</div>
  </div>
</div>
<div class="footer"><p><a href="/map">网站地图</a> | <a href="/lx">联系我们</a></p>
<p>大连市人民政府办公室 版权所有 辽ICP备05001357号</p></div>
</body></html>""", encoding="utf-8")
    return path


def write_docx(report_text: str, path: Path) -> Path:
    import docx

    document = docx.Document()
    lines = _blocks(report_text)
    document.add_heading(lines[0], level=1)
    for line in lines[1:]:
        if line[0] in NUMERALS and line[1] == "、":
            document.add_heading(line, level=2)
        else:
            document.add_paragraph(line)
    document.save(str(path))
    return path


def _cid_font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


def write_pdf(report_text: str, path: Path, space_after: float = 8, first_line_indent: float = 0) -> Path:
    """A PDF with wrapped paragraphs; with space_after=0 only the indent and short lines mark paragraphs."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    font = _cid_font()
    body = ParagraphStyle("body", fontName=font, fontSize=12, leading=18, spaceAfter=space_after,
                          firstLineIndent=first_line_indent, wordWrap="CJK")
    heading = ParagraphStyle("title", parent=body, fontSize=16, leading=24, firstLineIndent=0)
    lines = _blocks(report_text)
    story = [Paragraph(escape(lines[0]), heading)] + [Paragraph(escape(line), body) for line in lines[1:]]

    def page_number(canvas, doc):
        canvas.setFont(font, 9)
        canvas.drawCentredString(A4[0] / 2, 30, f"- {doc.page} -")

    SimpleDocTemplate(str(path), pagesize=A4).build(story, onFirstPage=page_number, onLaterPages=page_number)
    return path


def write_image_only_pdf(path: Path) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    page = canvas.Canvas(str(path), pagesize=A4)
    page.rect(72, 400, 300, 200, fill=1)
    page.showPage()
    page.save()
    return path


# --- formats ---------------------------------------------------------------------------

def test_portal_html_yields_the_article_without_navigation_or_footer(report_text, report_path, tmp_path):
    doc = load_report(write_portal_html(report_text, tmp_path / "report.html"))
    _assert_report_structure(doc, report_path)
    chrome = [word for word in CHROME if word not in report_text]  # 政务服务 is also in the report
    assert len(chrome) >= 10
    for p in doc.paragraphs:
        assert not any(word in p.text for word in chrome), p.text
    assert "统计代码" not in doc.text and "发布时间" not in doc.text


def test_gbk_html_with_meta_charset_decodes(report_text, report_path, tmp_path):
    html = write_portal_html(report_text, tmp_path / "utf8.html").read_text(encoding="utf-8")
    gbk = tmp_path / "report.htm"
    gbk.write_bytes(html.replace('charset="utf-8"', 'charset="gbk"').encode("gbk", errors="replace"))
    doc = load_report(gbk)
    assert doc.title == TITLE
    assert len([h for h in doc.headings if len(h) == 2]) == 9


def test_docx_headings_give_the_same_section_paths(report_text, report_path, tmp_path):
    doc = load_report(write_docx(report_text, tmp_path / "report.docx"))
    _assert_report_structure(doc, report_path)


def test_docx_title_style_and_unnumbered_headings(tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("某区年度工作报告", level=0)  # the Title style
    document.add_heading("工作成效", level=1)
    document.add_paragraph("建成服务站10个。")
    document.add_heading("便民服务", level=2)
    document.add_paragraph("开通热线。")
    document.save(str(tmp_path / "r.docx"))
    doc = load_report(tmp_path / "r.docx")
    assert doc.title == "某区年度工作报告"
    assert doc.headings == (("工作成效",), ("工作成效", "便民服务"))
    assert [p.section_path for p in doc.paragraphs] == [("工作成效",), ("工作成效", "便民服务")]


@pytest.mark.parametrize("layout", [{"space_after": 8}, {"space_after": 0, "first_line_indent": 24}],
                         ids=["spaced-paragraphs", "indented-paragraphs"])
def test_pdf_joins_wrapped_lines_and_knows_pages(report_text, report_path, tmp_path, layout):
    path = write_pdf(report_text, tmp_path / "report.pdf", **layout)
    doc = load_report(path)
    _assert_report_structure(doc, report_path)
    assert not any(p.text.startswith("-") for p in doc.paragraphs)  # page numbers dropped
    pages = {p.section_path[-1][:3]: page_of(doc.pages, p.start) for p in doc.paragraphs
             if p.section_path}
    assert pages["(一)"] == 1
    assert pages["(九)"] > pages["(一)"]
    assert max(n for _, n in doc.pages) >= 2
    # Chunks carry the page they start on, for citations.
    chunks = chunk_document(doc)
    by_section = {c.section_path[-1][:3]: c.page for c in chunks if c.section_path}
    assert by_section["(一)"] == 1 and by_section["(九)"] == pages["(九)"]


def test_page_of_is_none_without_pages_and_follows_the_map():
    assert page_of([], 10) is None
    assert [page_of([(0, 1), (100, 2)], o) for o in (0, 99, 100, 5000)] == [1, 1, 2, 2]


# --- unreadable files ------------------------------------------------------------------

def _error(path: Path) -> ReportFileError:
    with pytest.raises(ReportFileError) as info:
        load_report(path)
    assert path.name in info.value.message and path.name in info.value.message_zh
    return info.value


def test_corrupt_docx_and_pdf_are_reported(tmp_path, report_text):
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 this is not really a zip")
    assert "docx" in _error(tmp_path / "broken.docx").message
    good = write_pdf(report_text, tmp_path / "good.pdf").read_bytes()
    (tmp_path / "broken.pdf").write_bytes(good[: len(good) // 3])
    (tmp_path / "garbage.pdf").write_bytes(b"%PDF-1.4\n garbage")
    for name in ("broken.pdf", "garbage.pdf"):
        try:
            doc = load_report(tmp_path / name)
        except ReportFileError as exc:
            assert name in exc.message
        else:  # pypdf recovers what it can from a truncated file: then it must still be sane text
            assert doc.paragraphs


def test_scanned_pdf_asks_for_ocr(tmp_path):
    error = _error(write_image_only_pdf(tmp_path / "scan.pdf"))
    assert "no text layer" in error.message and "OCR" in error.message
    assert "扫描" in error.message_zh


def test_navigation_only_html_is_reported(tmp_path):
    path = tmp_path / "index.html"
    path.write_text("<html><head><title>大连市人民政府</title></head><body><nav><a href='/'>首页</a>"
                    "<a href='/gk'>政务公开</a></nav><div class='menu'><a href='/x'>互动交流</a></div>"
                    "<footer>版权所有</footer></body></html>", encoding="utf-8")
    assert "no article text" in _error(path).message


# --- sidecar metadata ------------------------------------------------------------------

def test_sidecar_overrides_title_and_gives_the_rest(report_text, tmp_path):
    path = write_docx(report_text, tmp_path / "r.docx")
    meta = {"title": "大连市法治政府建设年度报告（2023）", "issuer": "大连市人民政府", "year": 2023,
            "url": "https://www.dl.gov.cn/art/2024/3/28/art_1.html"}
    (tmp_path / "r.docx.meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    assert load_report(path).title == meta["title"]
    assert read_sidecar(path) == {k: v for k, v in meta.items() if k != "title"}
    assert find_reports([tmp_path]) == [path]  # the sidecar is not a report
    assert read_sidecar(tmp_path / "other.txt") == {}


def test_stamps_from_the_folder_listing_are_those_of_file_stamp(tmp_path):
    """report_stamps reads size and mtime from os.scandir's listing; they must be file_stamp's, sidecar
    included (either name form, the report's own name first), in scan_reports' order, a subfolder too."""
    import os

    from ingest.build import file_stamp
    from ingest.loader import report_stamps, scan_reports

    (tmp_path / "sub").mkdir()
    files = {"a.txt": "甲", "b.pdf": "乙乙", "c.md": "丙", "sub/d.txt": "丁丁丁"}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "b.pdf.meta.json").write_text('{"year": 2023}', encoding="utf-8")
    (tmp_path / "b.meta.json").write_text('{"year": 2024, "title": "not this one"}', encoding="utf-8")
    (tmp_path / "c.meta.json").write_text('{"year": 2022}', encoding="utf-8")
    os.utime(tmp_path / "c.meta.json", ns=(1, 1_000_000_000))
    stamps = report_stamps([tmp_path], file_stamp)
    assert [p for p, _ in stamps] == scan_reports([tmp_path])[0] == sorted(tmp_path / n for n in files)
    assert all(stamp == file_stamp(path) for path, stamp in stamps)
    assert dict(stamps)[tmp_path / "b.pdf"][2] == len('{"year": 2023}')  # the .pdf.meta.json sidecar
    assert dict(stamps)[tmp_path / "c.md"][3] == 1_000_000_000  # the sidecar's own mtime
    (tmp_path / "c.meta.json").unlink()
    (tmp_path / "c.meta.json").symlink_to(tmp_path / "b.meta.json")
    with pytest.raises(ReportFileError):  # a linked sidecar: refused, as file_stamp refuses it
        report_stamps([tmp_path], file_stamp)


@pytest.mark.parametrize("content", ["{not json", '["a list"]', '{"year": "2023"}', '{"title": 5}',
                                     '{"year": true}', '{"auther": "x"}'])
def test_bad_sidecar_is_reported_by_name(report_path, tmp_path, content):
    path = tmp_path / "r.txt"
    shutil.copy(report_path, path)
    (tmp_path / "r.txt.meta.json").write_text(content, encoding="utf-8")
    for read in (load_report, read_sidecar):
        with pytest.raises(ReportFileError) as info:
            read(path)
        assert "r.txt.meta.json" in info.value.message


# --- end to end ------------------------------------------------------------------------

@pytest.mark.slow
def test_build_indexes_every_format(report_text, report_path, tmp_path):
    from core.embedding import make_embedder
    from index.parts import report_text as indexed_text
    from index.store import load_index

    folder = tmp_path / "raw"
    folder.mkdir()
    shutil.copy(report_path, folder / "report.txt")
    write_portal_html(report_text, folder / "report.html")
    write_docx(report_text, folder / "report.docx")
    write_pdf(report_text, folder / "report.pdf")
    write_image_only_pdf(folder / "scan.pdf")
    (folder / "report.pdf.meta.json").write_text('{"issuer": "大连市人民政府", "year": 2023}', encoding="utf-8")
    result = build_index([folder], folder, tmp_path / "index", make_embedder())
    indexed = {s.source: s for s in result.manifest.sources if s.status == "indexed"}
    assert set(indexed) == {"report.txt", "report.html", "report.docx", "report.pdf"}
    assert len({s.chunks for s in indexed.values()}) == 1  # same paragraphs, same chunks
    assert all(s.title == TITLE for s in indexed.values())
    assert [name for name, _ in result.skipped] == ["scan.pdf"]
    assert indexed["report.pdf"].issuer == "大连市人民政府" and indexed["report.html"].issuer == "大连市"

    # The text a citation's offsets point into (the 报告原文 tab, the evaluation's evidence check) is
    # the converted text the index keeps, not the .docx/.pdf bytes.
    index = load_index(tmp_path / "index")
    for source in indexed.values():
        text = indexed_text(tmp_path / "index", source)
        for chunk in (c for c in index.chunks if c.source == source.source):
            assert text[chunk.start:chunk.end] == chunk.text


def test_html_without_content_markup_takes_the_block_with_most_text(report_text, report_path, tmp_path):
    body = "".join(f"<p>{escape(line)}</p>" for line in _blocks(report_text))
    links = "".join(f"<a href='/{i}'>频道导航{i}</a><br>" for i in range(30))
    path = tmp_path / "bare.html"
    path.write_text(f"<html><body><div class='content'><div>{links}</div><div>{body}</div>"
                    f"<div>联系电话：0411-12345678</div></div></body></html>", encoding="utf-8")
    doc = load_report(path)
    _assert_report_structure(doc, report_path)
    assert "频道导航" not in doc.text and "频道导航" not in report_text


def test_tables_that_lay_out_text_stay_prose(report_text, report_path, tmp_path):
    """A page or document that puts its whole text in a one-cell table is read as paragraphs, not one row."""
    import docx

    lines = _blocks(report_text)
    cells = "".join(f"<p>{escape(line)}</p>" for line in lines)
    (tmp_path / "layout.html").write_text(f"<html><body><table><tr><td>{cells}</td></tr></table></body></html>",
                                          encoding="utf-8")
    _assert_report_structure(load_report(tmp_path / "layout.html"), report_path)

    document = docx.Document()
    table = document.add_table(rows=1, cols=1)
    table.cell(0, 0).text = lines[1]
    document.add_paragraph(lines[0])
    document.save(str(tmp_path / "layout.docx"))
    doc = load_report(tmp_path / "layout.docx")
    assert [p.text for p in doc.paragraphs][:1] == [lines[1]] and not doc.paragraphs[0].context
