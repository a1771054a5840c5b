"""Staff run the reports folder from the page: upload, correct metadata, remove, re-ingest, with a live swap.

An upload is copied into a staging folder (``DATA_DIR/staging/<id>/``, never the reports folder) under a
checked file name, and parsed there in the capped converter process, OCR included, so staff see what
it holds (title, issuer, year, sections, passages, OCR'd pages) or why it cannot go in. Only a file
that parsed goes into the reports folder, when staff import it; a failed upload changes nothing.

Every change to the folder (import, new metadata, removal, re-ingest) is one job of a single worker
thread: apply the change, rebuild the index (``ingest.build``: only what changed is parsed and
embedded), and swap the new version into the running service (``ReportQA.reload``). Citizens keep
asking throughout: questions in flight finish on the version they started with, and the rebuild
embeds in small batches so their questions are embedded between them. When a rebuild fails, the
change is undone and the live index was never touched. One job runs at a time.
"""
from __future__ import annotations

import logging
import queue
import secrets
import shutil
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.errors import ReportFileError, ReportQAError
from core.files import replace_atomically
from core.types import ReportInfo
from index.parts import PARTS
from index.store import read_manifest
from ingest.build import BuildResult, build_index
from ingest.chunker import chunk_document
from ingest.loader import SIDECAR_SUFFIX, SUPPORTED_SUFFIXES, load_report, scan_reports
from ingest.ocr import file_digest, page_summary
from ingest.sandbox import ConverterProcess

logger = logging.getLogger(__name__)

MAX_NAME_CHARS = 120
MAX_STAGED = 50  # uploads waiting at once
EMBED_BATCH = 16  # texts embedded per turn of the model's lock during a rebuild (~0.5 s)
FIELDS_ZH = {"title": "标题", "issuer": "发布机关", "year": "年份", "url": "发布页面网址"}
STATE_ZH = {"waiting": "等待解析", "parsing": "正在解析", "ready": "可以导入", "failed": "无法导入",
            "importing": "正在导入", "imported": "已导入"}


def safe_report_name(name: str | None) -> str:
    """A file name as it may go into the reports folder; ReportFileError (Chinese message) when it may not.

    Refused: path separators or parent folders (``../x.pdf``), control characters, hidden or
    lock-file names, names over 120 characters, and types ReportQA does not read.
    """
    name = unicodedata.normalize("NFC", name or "").strip()
    shown = name[:60] or "（空）"
    if not name or "/" in name or "\\" in name or any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise ReportFileError(f"file name {name!r} is not a plain file name", f"文件名“{shown}”不合规：不能包含路径或控制字符")
    if name in (".", "..") or name.startswith((".", "~$")):
        raise ReportFileError(f"file name {name!r} is hidden or a lock file", f"文件名“{shown}”不合规：不能以 . 或 ~$ 开头")
    if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ReportFileError(f"{name}: unsupported file type; supported: {', '.join(SUPPORTED_SUFFIXES)}",
                              f"{shown}：不支持的文件类型，目前支持 {'、'.join(SUPPORTED_SUFFIXES)}")
    if len(name) > MAX_NAME_CHARS:
        raise ReportFileError(f"file name longer than {MAX_NAME_CHARS} characters",
                              f"文件名太长（最多 {MAX_NAME_CHARS} 个字符），请改短后再上传")
    return name


def check_metadata(title: str | None, issuer: str | None, year, url: str | None) -> dict:
    """The sidecar fields staff entered, checked (empty ones left out); ReportFileError naming the bad field."""
    fields: dict = {}
    for key, value, limit in (("title", title, 200), ("issuer", issuer, 100)):
        value = " ".join(str(value or "").split())
        if len(value) > limit:
            raise ReportFileError(f"{key} longer than {limit} characters", f"{FIELDS_ZH[key]}太长（最多 {limit} 字）")
        if value:
            fields[key] = value
    text = str(year if year is not None else "").strip()
    if text.endswith(".0"):  # a number box sends 2023.0
        text = text[:-2]
    if text:
        if not (text.isascii() and text.isdigit() and 1949 <= int(text) <= 2100):
            raise ReportFileError(f"year {text!r} is not a year", "年份应为四位数字，例如 2023")
        fields["year"] = int(text)
    url = str(url or "").strip()
    if url:
        if not url.startswith(("http://", "https://")) or len(url) > 500 or any(ch.isspace() for ch in url):
            raise ReportFileError(f"url {url!r} is not an http(s) address", "发布页面网址应以 http:// 或 https:// 开头")
        fields["url"] = url
    return fields


@dataclass
class Staged:
    """An upload waiting in the staging folder: what parsing found in it, or why it cannot go in."""

    id: str
    name: str  # its file name in the reports folder
    size: int
    state: str = "waiting"  # waiting, parsing, ready, failed, importing, imported
    detail_zh: str = ""  # progress (OCR 第 2/5 页) or the reason it failed
    title: str | None = None
    issuer: str | None = None
    year: int | None = None
    url: str | None = None
    sections: int = 0
    paragraphs: int = 0
    chunks: int = 0
    ocr_pages: list = field(default_factory=list)  # (page, lines, mean confidence, lowest confidence)
    replaces: bool = False  # a report of that name is in the folder already
    corrected: dict = field(default_factory=dict)  # the fields staff set (its sidecar)

    @property
    def state_zh(self) -> str:
        return STATE_ZH.get(self.state, self.state)


@dataclass(frozen=True)
class ReportRow:
    """One report file of the folder as the staff page lists it."""

    source: str
    status: str  # indexed, skipped, pending (not in the live index yet)
    title: str | None = None
    issuer: str | None = None
    year: int | None = None
    url: str | None = None
    chunks: int = 0
    ocr_pages: list = field(default_factory=list)  # (page, lowest confidence of its passages)
    reason: str | None = None
    has_sidecar: bool = False


@dataclass(frozen=True)
class WorkStatus:
    """What the worker is doing or did last, for the page to show."""

    busy: bool = False
    message_zh: str = ""
    ok: bool = True
    finished: int = 0  # jobs finished so far: the page reloads its tables when this moves


class _Batched:
    """The service's embedder, a few texts per call: a rebuild then holds the model's lock for ~0.5 s at a
    time, and a citizen's question is embedded in between instead of waiting for the whole report."""

    def __init__(self, embedder, batch: int = EMBED_BATCH):
        self.embedder, self.batch = embedder, batch
        self.name = embedder.name

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def _each(self, encode, texts: list[str]) -> np.ndarray:
        parts = []
        for i in range(0, len(texts), self.batch):
            parts.append(encode(texts[i:i + self.batch]))
            time.sleep(0.002)  # let a waiting question take the lock
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._each(self.embedder.encode_passages, list(texts))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode_queries(texts)


class ReportLibrary:
    """The reports folder as staff manage it; ``qa`` is the running service (reportqa.service.ReportQA)."""

    def __init__(self, qa, examples=None, on_change: Callable[[], None] = lambda: None):
        self.qa = qa
        self.examples = examples  # reportqa.examples.ExampleBook: a removed report's choice goes with it
        self.on_change = on_change
        settings = qa.settings
        self.raw = settings.raw_path
        self.staging = settings.staging_path
        self.trash = settings.staging_path / ".undo"
        self._staged: dict[str, Staged] = {}
        self._lock = threading.Lock()
        self._jobs: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._status = WorkStatus()
        self._queued = 0
        shutil.rmtree(self.staging, ignore_errors=True)  # uploads of an earlier run were never imported

    # ------------------------------------------------------------ the worker

    def status(self) -> WorkStatus:
        return self._status

    def _say(self, message_zh: str, ok: bool = True, busy: bool = True) -> None:
        """A job's news for the page; ``busy=False`` (the job is done) still reads busy while others wait."""
        with self._lock:
            self._status = replace(self._status, message_zh=message_zh, ok=ok, busy=busy or self._queued > 1)

    def _submit(self, job: Callable[[], None], message_zh: str) -> None:
        # The status and the count of queued jobs change together, under the lock: a page that reads "not busy"
        # knows every job queued before it has finished (ui.staff_reports.library_view relies on it).
        with self._lock:
            self._queued += 1
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="reportqa-library", daemon=True)
                self._worker.start()
            if not self._status.busy:
                self._status = replace(self._status, message_zh=message_zh, ok=True, busy=True)
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except ReportQAError as exc:
                logger.warning("staff report job failed: %s", exc.message)
                self._say(exc.message_zh, ok=False)
            except Exception:
                logger.exception("staff report job failed")
                self._say("操作失败（服务器内部错误），原有报告和索引保持不变。", ok=False)
            with self._lock:
                self._queued -= 1
                self._status = replace(self._status, busy=self._queued > 0, finished=self._status.finished + 1)
            self.on_change()

    def wait(self, timeout_s: float = 600.0) -> WorkStatus:
        """Until no job is queued or running (tests, and the CLI-like callers); returns the last status."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._queued == 0:
                    return self._status
            time.sleep(0.05)
        raise TimeoutError(f"report jobs still running after {timeout_s:g} s")

    def _rebuild(self, doing_zh: str) -> BuildResult:
        """Rebuild the index from the folder and swap it into the service; raises like ``build_index``."""
        s = self.qa.settings

        def on_file(done: int, total: int, name: str) -> None:
            self._say(f"{doing_zh}：正在重建索引（{done}/{total}）")

        self._say(f"{doing_zh}：正在重建索引…")
        result = build_index([self.raw], self.raw, s.index_path, _Batched(self.qa.embedder), s.chunker,
                             vectors=s.vector_store, on_file=on_file, limits=s.parse_limits)
        self.qa.reload()
        self.qa.stale_reasons = []
        return result

    # ------------------------------------------------------------ uploads

    def staged(self) -> list[Staged]:
        with self._lock:
            return [replace(s) for s in self._staged.values() if s.state != "imported"]

    def stage(self, uploads: list[tuple[Path, str]]) -> list[Staged]:
        """Copy each (temporary file, its original name) into the staging folder and queue it for parsing.

        A bad name, a file over the size cap or one that is not a regular file is listed as failed
        with the reason, and nothing of it is kept.
        """
        limit = self.qa.settings.parse_limits.max_file_bytes
        added = []
        for temp, original in uploads:
            item = Staged(secrets.token_hex(8), str(original or "")[:MAX_NAME_CHARS + 20], 0)
            try:
                if len(self.staged()) >= MAX_STAGED:
                    raise ReportFileError("too many uploads waiting", f"待导入的文件已有 {MAX_STAGED} 个，请先导入或移除")
                item.name = safe_report_name(original)
                temp = Path(temp)
                if temp.is_symlink() or not temp.is_file():
                    raise ReportFileError(f"{item.name}: not a regular file", f"{item.name}：不是普通文件")
                item.size = temp.stat().st_size
                if item.size > limit:
                    raise ReportFileError(f"{item.name}: {item.size} bytes, over {limit}",
                                          f"{item.name}：文件太大（上限 {limit / 2**20:g} MB）")
                folder = self.staging / item.id
                folder.mkdir(parents=True)
                with open(temp, "rb") as source, open(folder / item.name, "xb") as copy:  # x: never through a link
                    shutil.copyfileobj(source, copy)
                item.replaces = (self.raw / item.name).exists() or (self.raw / item.name).is_symlink()
            except ReportFileError as exc:
                item.state, item.detail_zh = "failed", exc.message_zh
            except OSError as exc:
                item.state, item.detail_zh = "failed", f"无法保存上传的文件：{exc.strerror or exc}"
            with self._lock:
                self._staged[item.id] = item
            added.append(replace(item))
            if item.state == "waiting":
                self._submit(lambda item_id=item.id: self._parse(item_id), f"正在解析 {item.name}…")
        return added

    def _staged_path(self, item: Staged) -> Path:
        return self.staging / item.id / item.name

    def _parse(self, item_id: str) -> None:
        item = self._staged.get(item_id)
        if item is None or item.state != "waiting":
            return
        item.state, item.detail_zh = "parsing", "正在解析…"
        self._say(f"正在解析 {item.name}…")
        s = self.qa.settings

        def progress(name: str, event: tuple) -> None:
            if event[0] == "ocr" and event[2]:
                item.detail_zh = f"正在文字识别（OCR）第 {min(event[1] + 1, event[2])}/{event[2]} 页"
                self._say(f"{item.name}：{item.detail_zh}")

        try:
            with ConverterProcess(s.parse_limits, progress) as converter:
                doc = load_report(self._staged_path(item), self.staging / item.id, s.parse_limits, converter)
            chunks = chunk_document(doc, s.chunker)
        except ReportFileError as exc:
            item.state, item.detail_zh = "failed", exc.message_zh
            self._say(f"{item.name}：无法导入（{exc.message_zh}）", ok=False)
            shutil.rmtree(self.staging / item.id, ignore_errors=True)
            return
        except BaseException:  # a bug of ours: the file is refused, not left 正在解析 for ever; the worker logs it
            item.state, item.detail_zh = "failed", "解析时出错（服务器内部错误），请重试或换一种文件格式"
            shutil.rmtree(self.staging / item.id, ignore_errors=True)
            raise
        item.title, item.issuer, item.year, item.url = doc.title, doc.issuer, doc.year, doc.url
        item.sections, item.paragraphs, item.chunks = len(doc.headings), len(doc.paragraphs), len(chunks)
        item.ocr_pages = page_summary(doc.pages, doc.ocr)
        item.state, item.detail_zh = "ready", ""
        self._say(f"{item.name} 解析完成，可以导入。")

    def correct_staged(self, item_id: str, title, issuer, year, url) -> Staged:
        """Staff's metadata for an upload before it goes in (its sidecar); ReportFileError for a bad field."""
        fields = check_metadata(title, issuer, year, url)
        with self._lock:
            item = self._staged.get(item_id)
            if item is None or item.state not in ("ready", "failed", "waiting", "parsing"):
                raise ReportFileError("no such upload", "没有这个待导入的文件")
            if item.state != "ready":
                raise ReportFileError("not parsed yet", f"{item.name} 还没有解析完成，请稍候")
            item.corrected = fields
            for key in ("title", "issuer", "year", "url"):
                if key in fields:
                    setattr(item, key, fields[key])
            sidecar = self.staging / item.id / (item.name + SIDECAR_SUFFIX)
            replace_atomically(sidecar, _sidecar_json(fields)) if fields else sidecar.unlink(missing_ok=True)
            return replace(item)

    def discard(self, item_id: str) -> None:
        """Drop an upload that has not been imported."""
        with self._lock:
            item = self._staged.get(item_id)
            if item is None or item.state in ("parsing", "importing"):
                raise ReportFileError("upload busy", "该文件正在处理中，请稍候")
            del self._staged[item_id]
        shutil.rmtree(self.staging / item_id, ignore_errors=True)

    def import_ready(self) -> list[str]:
        """Queue every parsed upload for import; returns their names (none ready: ReportFileError)."""
        with self._lock:
            ready = [s for s in self._staged.values() if s.state == "ready"]
            if not ready:
                raise ReportFileError("nothing ready to import", "没有可导入的文件（请先上传，并等待解析完成）")
            for item in ready:
                item.state, item.detail_zh = "importing", "等待重建索引"
        ids = [s.id for s in ready]
        self._submit(lambda: self._import(ids), "正在导入…")
        return [s.name for s in ready]

    def _import(self, ids: list[str]) -> None:
        items = [self._staged[i] for i in ids if i in self._staged]
        undo = _Undo(self.trash)
        try:
            for item in items:  # a report of the same name is replaced, metadata and all
                undo.set_aside(self.raw / item.name)
                undo.set_aside(self.raw / (item.name + SIDECAR_SUFFIX))
                undo.place(self._staged_path(item), self.raw / item.name)
                sidecar = self.staging / item.id / (item.name + SIDECAR_SUFFIX)
                if sidecar.is_file():
                    undo.place(sidecar, self.raw / (item.name + SIDECAR_SUFFIX))
            names = "、".join(i.name for i in items)
            result = self._rebuild(f"导入 {names}")
        except BaseException as exc:
            undo.revert()
            for item in items:
                item.state, item.detail_zh = "ready", "导入失败，可重试"
            if isinstance(exc, ReportQAError):
                raise ReportQAError(exc.message, f"导入失败，原有报告和索引保持不变：{exc.message_zh}") from None
            raise
        skipped = dict(result.skipped)
        failed = [i for i in items if i.name in skipped]
        failed_ids = {i.id for i in failed}
        if failed:  # parsed in staging but not in the folder (a limit differs?): take those out again
            undo.revert(only=[self.raw / i.name for i in failed] + [self.raw / (i.name + SIDECAR_SUFFIX)
                                                                     for i in failed])
            for item in failed:
                item.state, item.detail_zh = "failed", skipped[item.name]
            self._rebuild("撤回未能导入的文件")
        undo.forget()
        for item in items:
            if item.id not in failed_ids:
                with self._lock:
                    self._staged.pop(item.id, None)
                shutil.rmtree(self.staging / item.id, ignore_errors=True)
        done = [i.name for i in items if i.id not in failed_ids]
        self._say(f"已导入：{'、'.join(done)}。新的索引已生效（{len(self.qa.reports())} 份报告）。" if done else
                  "没有文件导入成功。", ok=bool(done), busy=False)

    # ------------------------------------------------------------ the reports in the folder

    def reports(self) -> list[ReportRow]:
        """Every report file in the folder, with what the live index says of it."""
        files, refused = scan_reports([self.raw]) if self.raw.is_dir() else ([], [])
        try:
            manifest = read_manifest(self.qa.settings.index_path)
            known = {r.source: r for r in manifest.sources}
        except ReportQAError:
            known = {}
        ocr = self._ocr_pages()
        rows = []
        for path in files:
            source = str(path.relative_to(self.raw))
            info: ReportInfo | None = known.get(source)
            has_sidecar = (path.with_name(path.name + SIDECAR_SUFFIX)).is_file()
            if info is None:
                rows.append(ReportRow(source, "pending", has_sidecar=has_sidecar))
            else:
                rows.append(ReportRow(source, info.status, info.title, info.issuer, info.year, info.url, info.chunks,
                                      ocr.get(source, []), info.reason, has_sidecar))
        rows += [ReportRow(name, "skipped", reason=reason) for name, reason in refused]
        return rows

    def _ocr_pages(self) -> dict[str, list[tuple[int, float]]]:
        """Per report, the OCR'd pages of the loaded index and the lowest confidence of their passages."""
        try:
            chunks = self.qa.index.chunks
        except ReportQAError:
            return {}
        pages: dict[str, dict[int, float]] = {}
        for chunk in chunks:
            if chunk.ocr is not None:
                by_page = pages.setdefault(chunk.source, {})
                page = chunk.page or 0
                by_page[page] = min(by_page.get(page, 1.0), chunk.ocr)
        return {source: sorted(by_page.items()) for source, by_page in pages.items()}

    def _report_file(self, source: str | None) -> Path:
        if not source:
            raise ReportFileError("no report chosen", "请先选择报告")
        path = self.raw / source
        if source not in {str(p.relative_to(self.raw)) for p in scan_reports([self.raw])[0]}:
            raise ReportFileError(f"{source}: not a report in the folder", f"报告文件夹中没有 {source}")
        return path

    def set_metadata(self, source: str, title, issuer, year, url) -> None:
        """Write the report's sidecar (checked) and queue the rebuild that takes it in."""
        fields = check_metadata(title, issuer, year, url)
        path = self._report_file(source)
        self._submit(lambda: self._set_metadata(path, fields), f"正在更新 {source} 的元数据…")

    def _set_metadata(self, path: Path, fields: dict) -> None:
        undo = _Undo(self.trash)
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        try:
            undo.set_aside(sidecar, keep_copy=True)
            if fields:
                replace_atomically(sidecar, _sidecar_json(fields))
            else:
                sidecar.unlink(missing_ok=True)
            self._rebuild(f"更新 {path.name} 的元数据")
        except BaseException:
            sidecar.unlink(missing_ok=True)
            undo.revert()
            raise
        undo.forget()
        self._say(f"{path.name} 的元数据已更新，新的索引已生效。", busy=False)

    def remove(self, source: str) -> None:
        """Queue taking a report out of the folder and the index (not the last one)."""
        path = self._report_file(source)
        indexed = [r for r in self.reports() if r.status == "indexed"]
        if [r.source for r in indexed] == [source]:
            raise ReportFileError("the last report", "这是唯一一份已收录的报告，不能删除（至少保留一份）")
        self._submit(lambda: self._remove(path, source), f"正在删除 {source}…")

    def _remove(self, path: Path, source: str) -> None:
        undo = _Undo(self.trash)
        digest = file_digest(path) if path.suffix.lower() == ".pdf" else None
        try:
            undo.set_aside(path)
            undo.set_aside(path.with_name(path.name + SIDECAR_SUFFIX))
            self._rebuild(f"删除 {source}")
        except BaseException:
            undo.revert()
            raise
        undo.forget()
        if digest:
            (self.qa.settings.ocr_cache_path / f"{digest}.json").unlink(missing_ok=True)
        if self.examples is not None:
            self.examples.reset(source)
        self._say(f"已删除 {source}，新的索引已生效。", busy=False)

    def reingest(self, source: str) -> None:
        """Queue parsing and embedding a report again from scratch (its part and OCR'd pages dropped)."""
        path = self._report_file(source)
        self._submit(lambda: self._reingest(path, source), f"正在重新导入 {source}…")

    def _reingest(self, path: Path, source: str) -> None:
        index_dir = self.qa.settings.index_path
        try:
            info = next((r for r in read_manifest(index_dir).sources if r.source == source), None)
        except ReportQAError:
            info = None
        undo = _Undo(self.trash)
        if path.suffix.lower() == ".pdf":
            undo.set_aside(self.qa.settings.ocr_cache_path / f"{file_digest(path)}.json")
        if info is not None and info.part:
            undo.set_aside(index_dir / PARTS / info.part)
        try:
            result = self._rebuild(f"重新导入 {source}")
        except BaseException:
            undo.revert()
            raise
        undo.forget()
        reason = dict(result.skipped).get(source)
        self._say(f"{source} 已重新导入，新的索引已生效。" if reason is None else f"{source} 重新导入后被跳过：{reason}",
                  ok=reason is None, busy=False)


def _sidecar_json(fields: dict) -> str:
    import json

    return json.dumps(fields, ensure_ascii=False, indent=1) + "\n"


class _Undo:
    """Files moved aside or placed while a job runs, so a failed job puts everything back."""

    def __init__(self, trash: Path):
        self.folder = trash / secrets.token_hex(6)
        self.aside: list[tuple[Path, Path]] = []  # (original place, where it waits)
        self.placed: list[Path] = []

    def set_aside(self, path: Path, keep_copy: bool = False) -> None:
        """Move ``path`` (a file, a link or a folder) out of the way; ``keep_copy``: copy it instead."""
        if not (path.exists() or path.is_symlink()):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = self.folder / f"{len(self.aside)}-{path.name}"
        if keep_copy and path.is_file() and not path.is_symlink():
            shutil.copy2(path, kept)
        else:
            shutil.move(str(path), kept)
        self.aside.append((path, kept))

    def place(self, source: Path, target: Path) -> None:
        """Move ``source`` to ``target`` atomically (a hidden temporary name in the target's folder first,
        which the reports scan skips), keeping its modification time."""
        tmp = target.with_name(f".upload-{secrets.token_hex(4)}-{target.name}")
        shutil.copy2(source, tmp)
        tmp.replace(target)
        self.placed.append(target)

    def revert(self, only: list[Path] | None = None) -> None:
        for target in reversed(self.placed):
            if only is None or target in only:
                target.unlink(missing_ok=True)
        for original, kept in reversed(self.aside):
            if (only is None or original in only) and (kept.exists() or kept.is_symlink()):
                if original.is_dir() and not original.is_symlink():
                    shutil.rmtree(original, ignore_errors=True)
                shutil.move(str(kept), original)
        if only is None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def forget(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
