"""Read report files (.txt, .md, .html, .htm, .docx, .pdf) into parsed Documents, with clear errors."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Protocol

from core.errors import ReportFileError
from core.types import Document

from .formats import CONVERTERS, ConvertedText, ParseLimits, convert_report, over_limit
from .metadata import infer_title, merge, text_year, title_metadata
from .plaintext import read_plain_text
from .structure import TITLE_KIND, ParsedText, parse_text

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".docx", ".pdf")
# Bumped whenever parsing or conversion changes any report's Document: index parts made by an
# older parser are then rebuilt on the next ingest, not reused (ingest.build). 2: the corpus work
# (GBK, rejoined PDF text, front matter, appendices, table context).
PARSER_VERSION = 2
SIDECAR_SUFFIX = ".meta.json"
# Fields a sidecar may hold, with the type each must have.
SIDECAR_FIELDS = {"title": str, "issuer": str, "year": int, "url": str}


def _looks_like_report(name: str) -> bool:
    # ~$name.docx is Word's lock file, .name a hidden or editor temp file: never reports.
    return os.path.splitext(name)[1].lower() in SUPPORTED_SUFFIXES and not name.startswith(("~$", "."))


def _unsafe(path: Path | os.DirEntry) -> str | None:
    """Why ``path`` must not be read as a report (a link, not a regular file), or None when it may be."""
    if path.is_symlink():
        return f"{path.name}: a symbolic link (only regular files inside the reports folder are read)"
    if not (path.is_file(follow_symlinks=False) if isinstance(path, os.DirEntry) else path.is_file()):
        return f"{path.name}: not a regular file"
    return None


def scan_reports(paths: list[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The report files under ``paths``, sorted for stable ids, and (name, reason) for each left out.

    Only regular files are read: a symbolic link (to /etc/passwd, to the
    evaluation set) is left out with the reason, and so is a linked folder,
    which is not entered. Sidecars (``report.pdf.meta.json``) end in .json, so
    they are never taken for reports.
    """
    found, refused = _scan(paths)
    return [path for path, _ in found], refused


Listing = dict[str, os.DirEntry]  # a folder's entries by name, with the kind and stat the listing gave


def _scan(paths: list[Path]) -> tuple[list[tuple[Path, Listing | None]], list[tuple[str, str]]]:
    """``scan_reports``, each report with its folder's listing (None for a file given by itself)."""
    found: list[tuple[Path, Listing | None]] = []
    refused: list[tuple[str, str]] = []
    for path in paths:
        if path.is_dir():  # the folder given may itself be a link (the operator's choice); links in it are not
            _walk(path, found, refused)
        elif path.is_symlink() or path.exists():
            reason = _unsafe(path)
            refused.append((path.name, reason)) if reason else found.append((path, None))
        else:
            raise ReportFileError(f"No such file or folder: {path}", f"找不到文件或文件夹：{path}")
    return sorted(found, key=lambda f: f[0].parts), refused  # Path's order, without its slow __lt__


def _walk(folder: Path, found: list[tuple[Path, Listing | None]], refused: list[tuple[str, str]]) -> None:
    """os.walk's order and choices (links to folders listed, never followed; an unreadable folder skipped),
    with each entry's kind taken from the listing itself, not from a stat a file (10,000 reports: 0.1 s)."""
    try:
        with os.scandir(folder) as scanned:
            entries = list(scanned)
    except OSError:
        return
    listing = {entry.name: entry for entry in entries}
    dirs = [entry for entry in entries if _is_dir(entry)]
    for entry in sorted(dirs, key=lambda e: e.name):
        if entry.is_symlink():
            refused.append((entry.name, f"{entry.name}: a symbolic link to a folder (not followed)"))
    for entry in entries:
        if _looks_like_report(entry.name) and not _is_dir(entry):
            reason = _unsafe(entry)
            refused.append((entry.name, reason)) if reason else found.append((folder / entry.name, listing))
    for entry in dirs:
        if not entry.is_symlink():
            _walk(folder / entry.name, found, refused)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def report_stamps(paths: list[Path], stamp) -> list[tuple[Path, tuple[int, ...]]]:
    """Each report ``scan_reports`` finds with ``stamp(path)`` (ingest.build.file_stamp: size and mtime of the
    report and its sidecar), read from its folder's listing: one stat a file, cached by the listing, instead
    of the six a sidecar lookup and two stats make. A report whose sidecar is a link, or given by itself,
    gets ``stamp(path)``, which says why a linked sidecar is refused."""
    found, _ = _scan(paths)
    return [(path, (_listed_stamp(path.name, listing) if listing is not None else None) or stamp(path))
            for path, listing in found]


def _listed_stamp(name: str, listing: Listing) -> tuple[int, ...] | None:
    stats = [listing[name].stat(follow_symlinks=False)]
    for sidecar_name in (name + SIDECAR_SUFFIX, os.path.splitext(name)[0] + SIDECAR_SUFFIX):  # sidecar_path's order
        sidecar = listing.get(sidecar_name)
        if sidecar is None:
            continue
        if sidecar.is_symlink():
            return None
        if sidecar.is_file(follow_symlinks=False):
            stats.append(sidecar.stat(follow_symlinks=False))
            break
    return tuple(n for st in stats for n in (st.st_size, st.st_mtime_ns))


def find_reports(paths: list[Path]) -> list[Path]:
    """The report files ``scan_reports`` would read (those it leaves out are not listed)."""
    return scan_reports(paths)[0]


def sidecar_path(path: Path) -> Path | None:
    """``report.pdf.meta.json`` next to the report, else ``report.meta.json``; None when neither exists."""
    for candidate in (path.with_name(path.name + SIDECAR_SUFFIX), path.with_name(path.stem + SIDECAR_SUFFIX)):
        if candidate.is_symlink():
            raise ReportFileError(f"{candidate.name}: the sidecar is a symbolic link; replace it with the file itself",
                                  f"{candidate.name}：元数据文件是符号链接，已跳过")
        if candidate.is_file():
            return candidate
    return None


def _read_sidecar_fields(path: Path) -> dict:
    """Every field of the report's sidecar, checked; {} when it has none."""
    sidecar = sidecar_path(path)
    if sidecar is None:
        return {}
    fields = ", ".join(f"{k} ({t.__name__})" for k, t in SIDECAR_FIELDS.items())
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportFileError(f"{sidecar.name}: not valid UTF-8 JSON ({exc}); expected an object with {fields}",
                              f"{sidecar.name}：不是有效的 JSON 元数据文件") from None
    if not isinstance(meta, dict):
        raise ReportFileError(f"{sidecar.name}: expected a JSON object with {fields}, got {type(meta).__name__}",
                              f"{sidecar.name}：元数据应为 JSON 对象")
    for key, value in meta.items():
        expected = SIDECAR_FIELDS.get(key)
        if expected is None:
            raise ReportFileError(f"{sidecar.name}: unknown field {key!r}; allowed: {fields}",
                                  f"{sidecar.name}：未知字段 {key}")
        # bool is an int in Python, but "year": true is a mistake.
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ReportFileError(f"{sidecar.name}: {key} must be {expected.__name__}, got {value!r}",
                                  f"{sidecar.name}：字段 {key} 的类型不对")
    return meta


def read_sidecar(path: Path) -> dict:
    """The report's sidecar metadata besides its title ({"issuer", "year", "url"}, whichever are given).

    Raises ReportFileError naming the sidecar when it is not JSON or a field has the wrong type.
    """
    return {k: v for k, v in _read_sidecar_fields(path).items() if k != "title"}


class Converter(Protocol):
    """Turns an .html/.docx/.pdf file into text: in this process, or in a capped child (ingest.sandbox)."""

    def convert(self, path: Path, name: str) -> ConvertedText: ...


class InProcess:
    """``convert_report`` in this process: tests, and callers reading one trusted file."""

    def __init__(self, limits: ParseLimits = ParseLimits()):
        self.limits = limits

    def convert(self, path: Path, name: str) -> ConvertedText:
        return convert_report(path, name, self.limits)


def _title_and_metadata(parsed: ParsedText, converted: ConvertedText, sidecar: dict,
                        path: Path) -> tuple[str, dict]:
    """The report's title and its issuer/year/url, each from the first source that has it (ingest.metadata).

    A text without a title line (a PDF whose title is only in an image, a work report that opens
    with 各位代表：) is given one from the file's own title metadata, else from its place, year and
    kind (黔东南苗族侗族自治州 + 2023 + 统计公报), else the file name.
    """
    front = tuple(parsed.front_matter)
    first = parsed.paragraphs[0].text if parsed.paragraphs else ""
    year = text_year(parsed.headings, first, path.name)
    title = sidecar.get("title") or parsed.title
    if not title:
        hint = converted.meta.get("title_hint", "")
        title = hint if TITLE_KIND.search(hint) else infer_title(converted.text, front, year, hint)
    title = title or path.stem
    return title, merge(sidecar, converted.meta, title_metadata(title, front), {"year": year})


def load_report(path: Path, root: Path | None = None, limits: ParseLimits = ParseLimits(),
                converter: Converter | None = None) -> Document:
    """Read, convert and parse one report; raise ReportFileError when it is unusable.

    ``Document.text`` is the text the parser read: the file itself as decoded for .txt/.md
    (UTF-8 or GB18030/GBK), unless its lines were hard-wrapped or a sentence was split by a
    blank line, when it is rejoined (ingest.plaintext); the converted text (one paragraph a
    line) for .html/.docx/.pdf. The index stores this text; offsets point into it,
    and ``Document.pages`` maps them to PDF pages. A sidecar ``<file>.meta.json``
    overrides the parsed title, and gives issuer, year and URL (see ingest.metadata).
    A file over one of ``limits`` is refused; ``converter`` converts .html/.docx/.pdf
    (default: in this process).
    """
    name = str(path.relative_to(root)) if root and path.is_relative_to(root) else path.name
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ReportFileError(
            f"{name}: unsupported file type {path.suffix!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}",
            f"{name}：不支持的文件类型 {path.suffix}，目前支持 {'、'.join(SUPPORTED_SUFFIXES)}",
        )
    if reason := _unsafe(path):
        raise ReportFileError(reason, f"{name}：不是普通文件（如符号链接），已跳过")
    if (size := path.stat().st_size) > limits.max_file_bytes:
        raise over_limit(name, "file size (bytes)", size, limits.max_file_bytes, "文件大小")
    meta = _read_sidecar_fields(path)
    raw = path.read_bytes()
    if suffix in CONVERTERS:
        converted = (converter or InProcess(limits)).convert(path, name)
    else:
        converted = read_plain_text(raw, name)
    if len(converted.text) > limits.max_chars:
        raise over_limit(name, "characters of text", len(converted.text), limits.max_chars, "文字数量")
    parsed = parse_text(converted.text)
    if not parsed.paragraphs:
        raise ReportFileError(
            f"{name}: no text to index (the file is empty or holds only headings)",
            f"{name}：文件为空或没有正文，无法导入",
        )
    title, found = _title_and_metadata(parsed, converted, meta, path)
    return Document(
        source=name,
        title=title,
        text=converted.text,
        sha256=hashlib.sha256(raw).hexdigest(),
        headings=tuple(parsed.headings),
        paragraphs=tuple(parsed.paragraphs),
        pages=tuple(converted.pages),
        issuer=found.get("issuer"),
        year=found.get("year"),
        url=found.get("url"),
        ocr=tuple(converted.ocr),
    )
