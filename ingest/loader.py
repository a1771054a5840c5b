"""Read report files (.txt, .md) into parsed Documents, with clear errors."""
from __future__ import annotations

import hashlib
from pathlib import Path

from reportqa.errors import ReportFileError

from .models import Document
from .structure import parse_structure

SUPPORTED_SUFFIXES = (".txt", ".md")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_reports(paths: list[Path]) -> list[Path]:
    """Expand folders into the report files they hold, sorted for stable ids."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        elif path.exists():
            found.append(path)
        else:
            raise ReportFileError(f"No such file or folder: {path}", f"找不到文件或文件夹：{path}")
    return found


def load_report(path: Path, root: Path | None = None) -> Document:
    """Decode and parse one report; raise ReportFileError when it is unusable."""
    name = str(path.relative_to(root)) if root and path.is_relative_to(root) else path.name
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ReportFileError(
            f"{name}: unsupported file type {path.suffix!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}",
            f"{name}：不支持的文件类型 {path.suffix}，目前支持 {'、'.join(SUPPORTED_SUFFIXES)}",
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReportFileError(
            f"{name}: not valid UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8 (e.g. `iconv -f GBK -t UTF-8`) and ingest again",
            f"{name}：不是 UTF-8 编码的文本，请另存为 UTF-8 后重新导入",
        ) from None
    title, headings, paragraphs = parse_structure(text)
    if not paragraphs:
        raise ReportFileError(
            f"{name}: no text to index (the file is empty or holds only headings)",
            f"{name}：文件为空或没有正文，无法导入",
        )
    return Document(
        source=name,
        title=title or path.stem,
        text=text,
        sha256=hashlib.sha256(raw).hexdigest(),
        headings=tuple(headings),
        paragraphs=tuple(paragraphs),
    )
