"""Every real report of the shared corpus ingests faithfully: title, issuer, year, sections, tables, notes.

The reports are third-party text read from ../shared/corpus (see its SOURCES.md for each file's
hazards); only short expected strings (titles, headings, a cell) appear here. The tests skip when
the folder is absent (a clone without the shared corpus).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest

from ingest.build import passage_text
from ingest.chunker import chunk_document
from ingest.formats import page_of
from ingest.loader import load_report

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared corpus folder {CORPUS} is absent")
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "raw" / "dalian-2023-law-based-government-report.txt"


@lru_cache(maxsize=None)
def ingest(name: str):
    """The report's Document and its chunks (each file is parsed once per test session)."""
    doc = load_report(CORPUS / name)
    return doc, chunk_document(doc)


def paragraphs_in(doc, *path: str) -> list:
    return [p for p in doc.paragraphs if p.section_path == path]


# --- per file: title, issuer, year and a few section paths -------------------------------

EXPECTED = {
    "gwr-2015-national-gbk.txt": dict(
        title="政府工作报告——2015年3月5日在第十二届全国人民代表大会第三次会议上国务院总理李克强",
        issuer="国务院", year=2015,
        sections=[("一、2014年工作回顾",), ("二、2015年工作总体部署",), ("六、切实加强政府自身建设",)]),
    "gwr-2022-national-crlf.txt": dict(
        title="2022年政府工作报告", issuer="国务院", year=2022,
        sections=[("一、2021年工作回顾",), ("三、2022年政府工作任务", "（一）着力稳定宏观经济大盘，保持经济运行在合理区间"),
                  ("三、2022年政府工作任务", "（九）切实保障和改善民生，加强和创新社会治理")]),
    "gwr-2024-national.txt": dict(
        title="政府工作报告——2024年3月5日在第十四届全国人民代表大会第二次会议上国务院总理李强",
        issuer="国务院", year=2024,
        sections=[("一、2023年工作回顾",), ("三、2024年政府工作任务", "（一）大力推进现代化产业体系建设，加快发展新质生产力"),
                  ("三、2024年政府工作任务", "（十）切实保障和改善民生，加强和创新社会治理")]),
    "gwr-2025-yunnan.docx": dict(
        title="2025年云南省政府工作报告", issuer="云南省人民政府", year=2025,
        sections=[("一、2024年工作回顾", "（一）经济运行稳进提质"), ("三、2025年重点任务", "（一）统筹消费和投资，加快释放内需潜力"),
                  ("名词解释",), ("附件：2025年10件惠民实事", "一、稳定和扩大就业"),
                  ("附件：2025年10件惠民实事", "十、实施交通惠民工程")]),
    "gwr-2025-guangdong.docx": dict(
        title="2025年广东省政府工作报告", issuer="广东省人民政府", year=2025,
        sections=[("一、2024年工作回顾",), ("二、2025年工作安排", "（十二）全面加强政府自身建设，努力建设人民满意的政府"),
                  ("附件1 2025年省十件民生实事", "一、为老年人提供健康管理、医养结合服务和提升养老机构服务水平"),
                  ("附件2 名词解释",)]),
    "shenji-2024-national-pdftext.md": dict(
        title="国务院关于2024年度中央预算执行和其他财政收支的审计工作报告", issuer="国务院", year=2024,
        sections=[("一、中央财政管理审计情况", "（六）中央决算草案等部分事项编制不准确"), ("七、审计建议",),
                  ("三、重大项目和重大风险审计情况", "（五）重大经济领域风险审计情况"), ("注释",)]),
    "tongji-2016-qiandongnan.docx": dict(
        title="黔东南苗族侗族自治州2016年国民经济和社会发展统计公报", issuer="黔东南州统计局", year=2016,
        sections=[("一、综合",), ("八、金融",), ("十三、环境保护和安全生产",), ("注释",)]),
    "tongji-2023-luoyang.txt": dict(
        title="2023年洛阳市国民经济和社会发展统计公报", issuer="洛阳市统计局", year=2023,
        sections=[("一、综合",), ("八、财政金融",), ("十二、环境保护",), ("注释",), ("资料来源",)]),
    "tongji-2023-qiandongnan.pdf": dict(
        title="黔东南苗族侗族自治州2023年国民经济和社会发展统计公报", issuer="黔东南州统计局", year=2023,
        sections=[("一、综合",), ("四、固定资产投资",), ("十二、环境保护和生产安全",), ("注释",)]),
    "tongji-2023-zhoukou.pdf": dict(
        title="2023年周口市国民经济和社会发展统计公报", issuer="周口市统计局", year=2023,
        sections=[("一、综合",), ("二、农业",), ("十一、环境保护和安全生产",), ("注释",)]),
    "xxgk-2023-hongze.pdf": dict(
        title="洪泽区人民政府2023年政府信息公开工作年度报告", issuer="洪泽区人民政府", year=2023,
        sections=[("一、总体情况", "（一）主动公开情况"), ("二、主动公开政府信息情况",),
                  ("三、收到和处理政府信息公开申请情况", "（三）不予公开"), ("六、其他需要报告的事项",)]),
    "xxgk-2023-shuyang-fgj.html": dict(
        title="沭阳县发展和改革局2023年政府信息公开年度报告", issuer="沭阳县发展和改革局", year=2023,
        sections=[("一、总体情况", "（五）及时回应关切，自觉接受监督"), ("四、政府信息公开行政复议、行政诉讼情况",),
                  ("五、存在的主要问题及整改措施", "（二）整改措施")]),
    # The file is an OCR'd copy that reads 沐阳 for 沭阳 throughout: the title and issuer keep the
    # file's spelling (a citation must match the text); a question naming 沭阳 needs a place alias.
    "xxgk-2025-shuyang.txt": dict(
        title="沐阳县人民政府2025年政府信息公开工作年度报告", issuer="沐阳县人民政府", year=2025,
        sections=[("一、总体情况", "(一)系统化推进主动公开"), ("一、总体情况", "（三）精细化建设公开平台"),
                  ("二、主动公开政府信息情况", "第二十条第（一）项"), ("六、其他需要报告的事项",)]),
}


def test_the_corpus_holds_the_thirteen_reports():
    assert sorted(p.name for p in CORPUS.iterdir() if p.name != "SOURCES.md") == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_title_issuer_year_and_sections(name):
    doc, chunks = ingest(name)
    expected = EXPECTED[name]
    assert (doc.title, doc.issuer, doc.year) == (expected["title"], expected["issuer"], expected["year"])
    for path in expected["sections"]:
        assert path in doc.headings, path
        assert any(c.section_path == path for c in chunks), f"no chunk in {path}"
    # Every chunk carries the report's metadata, for citations and a narrowed search.
    assert {(c.doc_title, c.issuer, c.year) for c in chunks} == {(doc.title, doc.issuer, doc.year)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chunks_slice_the_stored_text_and_names_read_cleanly(name):
    doc, chunks = ingest(name)
    assert chunks and len({c.chunk_id for c in chunks}) == len(chunks)
    for chunk in chunks:
        assert doc.text[chunk.start:chunk.end] == chunk.text
        assert "".join(chunk.sentence_text(s) for s in chunk.sentences) == re.sub(r"(?<=[。！？；!?;])\s+", "", chunk.text)
    for p in doc.paragraphs:
        assert doc.text[p.start:p.end] == p.text
        assert not re.fullmatch(r"[-—–]\s*\d+\s*[-—–]", p.text), "a page number is no paragraph"
    for name_ in {n for path in doc.headings for n in path} | {doc.title}:
        # Titles and section names: no escapes, Markdown marks or letter spacing (一、综 合, 周 口 市).
        assert "<U+" not in name_ and not name_.startswith("#"), name_
        assert not re.search(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", name_), name_


# --- encodings and line ends ---------------------------------------------------------------

def test_gbk_file_with_cr_cr_lf_decodes_and_its_escapes_stay_out_of_the_title():
    doc, _ = ingest("gwr-2015-national-gbk.txt")
    raw = (CORPUS / "gwr-2015-national-gbk.txt").read_bytes()
    assert b"\r\r\n" in raw
    assert doc.text == raw.decode("gbk")  # plain text is kept as decoded: offsets point into the file
    assert "<U+00A0>" in doc.text and "<U+" not in doc.title
    # The photo caption and the dateline before the title are no paragraphs.
    assert not any("新华社" in p.text for p in doc.paragraphs)
    assert doc.paragraphs[0].text.startswith("各位代表：")
    # 一是…五是 sub-points stay in their section.
    assert any(p.text.startswith("五是") for p in paragraphs_in(doc, "一、2014年工作回顾"))


def test_crlf_report_without_title_line():
    doc, _ = ingest("gwr-2022-national-crlf.txt")
    assert "\r\n" in doc.text
    assert doc.title != "各位代表："
    assert not any(p.text.endswith("\r") for p in doc.paragraphs)


# --- structure -----------------------------------------------------------------------------

def test_inline_subsection_headings_scope_the_paragraphs_after_them():
    doc, _ = ingest("gwr-2024-national.txt")
    first = ("三、2024年政府工作任务", "（一）大力推进现代化产业体系建设，加快发展新质生产力")
    assert len(paragraphs_in(doc, *first)) >= 3  # the heading paragraph and those under it
    # 各位代表！ on its own line closes the last subsection.
    last = next(i for i, p in enumerate(doc.paragraphs) if p.section_path[-1:] == ("（十）切实保障和改善民生，加强和创新社会治理",))
    after = [p for p in doc.paragraphs[last:] if p.text == "各位代表！"]
    assert after and all(len(p.section_path) == 1 for p in doc.paragraphs if p.number > after[0].number)


def test_consecutive_inline_subsections_scope_only_themselves():
    """Yunnan's review (一)…(八) are one paragraph each; the paragraphs after them belong to 一、."""
    doc, _ = ingest("gwr-2025-yunnan.docx")
    assert len(paragraphs_in(doc, "一、2024年工作回顾", "（八）安全底板加固筑牢")) == 1
    assert any(p.text.startswith("在总结成绩的同时") for p in paragraphs_in(doc, "一、2024年工作回顾"))


def test_appendices_do_not_collide_with_the_body():
    doc, _ = ingest("gwr-2025-yunnan.docx")
    body_one = [h for h in doc.headings if h[0].startswith("一、")]
    appendix_one = [h for h in doc.headings if h[0].startswith("附件") and len(h) == 2 and h[1].startswith("一、")]
    assert body_one and appendix_one and not set(body_one) & set(appendix_one)
    targets = paragraphs_in(doc, "附件：2025年10件惠民实事", "一、稳定和扩大就业")
    assert [p.text[:5] for p in targets] == ["年度目标：", "主办单位："]
    glossary = paragraphs_in(doc, "名词解释")
    assert len(glossary) == 44 and glossary[0].text.startswith("1.")


def test_docx_without_heading_styles_finds_bold_and_numbered_headings():
    doc, _ = ingest("gwr-2025-guangdong.docx")
    tops = [h[0] for h in doc.headings if len(h) == 1]
    assert tops == ["一、2024年工作回顾", "二、2025年工作安排", "附件1 2025年省十件民生实事", "附件2 名词解释"]
    subs = [h[1] for h in doc.headings if h[0] == "二、2025年工作安排" and len(h) == 2]
    assert [re.match(r"（(.+?)）", s).group(1) for s in subs] == list("一二三四五六七八九十") + ["十一", "十二"]
    # 一是…九是 are sub-points of the review, not sections.
    review = paragraphs_in(doc, "一、2024年工作回顾")
    assert sum(p.text[1:2] == "是" for p in review) == 9
    assert len(paragraphs_in(doc, "附件2 名词解释")) == 18


def test_markdown_levels_and_sub_points():
    doc, _ = ingest("xxgk-2025-shuyang.txt")
    assert not any("是" == h[-1][1:2] for h in doc.headings), "### 三是… is a sub-point, not a section"
    section = paragraphs_in(doc, "一、总体情况", "(一)系统化推进主动公开")
    assert "三是提高解读效能。" in [p.text for p in section]
    # A sentence split by a stray blank line (a page break) is one paragraph again.
    assert any("“看得懂、用得上、易监督”" in p.text for p in section)
    assert ("六、其他需要报告的事项",) in doc.headings  # the closing 六、 is not marked as a heading


def test_letter_spaced_headings_and_issuer_read_without_spaces():
    doc, _ = ingest("tongji-2023-zhoukou.pdf")
    assert ("一、综合",) in doc.headings and ("二、农业",) in doc.headings
    assert not any(h[0] == "一、食品烟酒" for h in doc.headings), "a table row is no heading"
    doc, _ = ingest("tongji-2016-qiandongnan.docx")
    assert ("八、金融",) in doc.headings  # 八、金 \xa0融 in the file


# --- PDF text: page furniture, rejoined lines, footnotes --------------------------------------

def test_running_headers_and_page_numbers_are_dropped():
    doc, _ = ingest("tongji-2023-luoyang.txt")
    assert doc.text.count("洛阳市2023年国民经济和社会发展统计公报") >= 10
    assert not any(p.text.strip() == "洛阳市2023年国民经济和社会发展统计公报" for p in doc.paragraphs)
    assert ("八、财政金融",) in doc.headings  # the one indented heading
    for name in ("tongji-2023-qiandongnan.pdf", "tongji-2023-zhoukou.pdf", "xxgk-2023-hongze.pdf"):
        doc, chunks = ingest(name)
        assert not any(re.search(r"[-—]\s*\d+\s*[-—]", p.text) for p in doc.paragraphs), name
        assert max(page_of(doc.pages, c.start) for c in chunks) >= 5


def test_hard_wrapped_pdf_text_is_rejoined_into_sentences():
    doc, chunks = ingest("shenji-2024-national-pdftext.md")
    raw = (CORPUS / "shenji-2024-national-pdftext.md").read_text(encoding="utf-8")
    assert raw.count("\n") > 500 and len(doc.paragraphs) < 120
    assert not any("— " in p.text and re.search(r"— \d+ —", p.text) for p in doc.paragraphs)
    assert any("中央本级一般公共预算支出同比增长 6.5%" in c.text for c in chunks)  # wrapped after 中央本级
    # The markers became the page map: 27 pages, each chunk knows its page.
    assert max(n for _, n in doc.pages) == 27 and chunks[-1].page == 27
    # The stored text is the rejoined one (the index keeps it; citations point into it).
    assert doc.text != raw and "中央本级一般公共预算支出同比增长 6.5%" in doc.text


def test_footnote_bodies_land_in_a_notes_section_and_markers_stay():
    doc, _ = ingest("shenji-2024-national-pdftext.md")
    notes = paragraphs_in(doc, "注释")
    assert len(notes) == 1 and notes[0].text.startswith("*本报告对省级行政区统称为省")
    assert any("区各部门*坚持" in p.text for p in doc.paragraphs)  # the marker stays in its sentence

    doc, _ = ingest("tongji-2023-luoyang.txt")
    assert any("生产总值②达到5481.6亿元" in p.text for p in doc.paragraphs)
    assert [p.text[0] for p in paragraphs_in(doc, "注释")] == ["①", "②", "③", "④"]

    doc, _ = ingest("tongji-2023-qiandongnan.pdf")
    assert any("生产总值[2]1329.65亿元" in p.text for p in doc.paragraphs)  # the raised mark joins its line
    assert [p.text[:3] for p in paragraphs_in(doc, "注释")] == [f"[{n}]" for n in range(1, 8)]

    doc, _ = ingest("tongji-2016-qiandongnan.docx")
    notes = paragraphs_in(doc, "注释")
    assert len(notes) == 8 and notes[0].text.startswith("注:1.")


def test_title_missing_from_the_text_layer_is_built_from_metadata_and_text():
    doc, _ = ingest("tongji-2023-qiandongnan.pdf")
    assert "黔东南州统计局" not in [p.text for p in doc.paragraphs]  # the issuer line is front matter
    assert doc.paragraphs[0].text.startswith("2023年，")


# --- tables ----------------------------------------------------------------------------------

def _row(chunks, text: str):
    return next(c for c in chunks if text in c.text)


def test_docx_table_rows_carry_caption_and_column_headers():
    doc, chunks = ingest("tongji-2016-qiandongnan.docx")
    rows = [c for c in chunks if c.context]
    assert len({c.context.split("\n")[0] for c in rows}) == 11  # 表1…表11
    tea = _row(chunks, "| 茶叶 | 13910 | 27.4 |")
    assert tea.context == "表3 主要农产品产量\n| 产量（吨） | 比上年增长（%）"
    assert "产量（吨）" in passage_text(tea) and "茶叶" in passage_text(tea)
    assert tea.section_path == ("二、农业",)


def test_markdown_table_rows_carry_headers_and_generic_columns_are_named():
    _, chunks = ingest("xxgk-2025-shuyang.txt")
    permit = _row(chunks, "| 行政许可 | 517645 |")
    assert permit.context == "第二十条第（五）项\n信息内容 | 本年处理决定数量"
    granted = _row(chunks, "| 予以公开 | 290 |")
    assert "自然人" in granted.context and "数据1" not in granted.context  # 数据1…数据6 are the template's columns
    review = _row(chunks, "| 27 | 10 | 9 | 15 | 61 |")
    assert review.context.startswith("行政复议\n结果维持")


def test_flattened_pdf_table_rows_carry_caption_and_headers():
    _, chunks = ingest("tongji-2023-zhoukou.pdf")
    town = _row(chunks, "其中：城镇 392.66 45.31")
    assert town.context.startswith("表1 2023年末周口市常住人口数及其构成\n") and "年末数（万人）" in town.context
    _, chunks = ingest("xxgk-2023-hongze.pdf")
    rules = _row(chunks, "规章 0 0 0")
    assert rules.context == "第二十条第（一）项\n信息内容 本年制发件数 本年废止件数 现行有效件数"
    secret = _row(chunks, "1.属于国家秘密 1 0 0 0 0 0 1")
    assert secret.section_path[-1] == "（三）不予公开" and "自然人" in secret.context and "总计" in secret.context
    assert "行政复议·结果维持" in _row(chunks, "10 1 0 0 0 0 0 0 0 0 5 0 0 0 0").context


def test_portal_page_tables_numbers_and_wrapper():
    doc, chunks = ingest("xxgk-2023-shuyang-fgj.html")
    assert "采集时间" not in doc.text and "政府信息公开" in doc.title  # the scraper's wrapper is not the report
    assert "沭阳县发改局" not in doc.text  # nor is the site's heading
    assert not re.search(r"20 23|2 023", doc.text), "numbers split across <span>s join without a space"
    secret = _row(chunks, "1.属于国家秘密")
    assert secret.text.startswith("| 三、本年度办理结果 | （三）不予公开 | 1.属于国家秘密 |")  # rowspan labels repeat
    assert "自然人" in secret.context
    review = next(c for c in chunks if c.section_path == ("四、政府信息公开行政复议、行政诉讼情况",) and c.context)
    assert "行政诉讼 复议后起诉 总计" in review.context and review.text.count("|") == 16
    # The signature and date at the end are no paragraphs.
    assert doc.paragraphs[-1].text.startswith("2023年度，县发展和改革局")


# --- the shipped report is unchanged --------------------------------------------------------

SHIPPED_CHUNK_IDS = [
    "1c56f4f803e13ac5", "a1498cde74741eac", "cc8499931d0f0714", "b47ffbcbf22610cf", "8b0e54ba8ef39ba6",
    "169585947551cdbb", "0f957030173f60d1", "0ebb8f24dec711f1", "7fd582af8a51d21c", "253bfc4362bc8ccb",
    "4e4b5f68d3a197f6", "afadbb0cf44ba4ae", "127afc6eca50a5bf", "89d5f1620ca65dbc", "0012eb3a6bc1c57a",
    "35e91cb0d3b3d5d0", "f4331b3244604778", "1b8aac66f34218f6", "fe578e5c22721050", "6678cd4fbda956ad",
]


def test_shipped_report_gives_exactly_the_same_chunks():
    doc = load_report(SHIPPED)
    chunks = chunk_document(doc)
    assert [c.chunk_id for c in chunks] == SHIPPED_CHUNK_IDS
    assert sum(len(c.sentences) for c in chunks) == 85
    assert (doc.title, doc.issuer, doc.year) == ("大连市2023年法治政府建设情况报告", "大连市", 2023)
    assert doc.text == SHIPPED.read_text(encoding="utf-8")
    assert all(c.context == "" for c in chunks)
    assert all(passage_text(c) == (f"{c.section}\n{c.text}" if c.section_path else c.text) for c in chunks)
