"""Untrusted report files are converted in a child process with a memory cap and a time limit.

A .docx is a zip and a PDF holds compressed streams: a few megabytes can
unpack to gigabytes (a "decompression bomb"), and a crafted file can keep a
parser busy for minutes. The cheap checks (file size, declared unpacked size,
page count, characters) run before and after parsing (``ingest.formats``);
this process boundary is the backstop for everything they miss: the child
cannot take more than ``max_memory_bytes`` of address space, and it is killed
after ``max_seconds``. The server that builds the index at start-up then only
loses that one file, with the reason.

A scanned PDF is read by OCR (``ingest.ocr``) at several seconds a page, so its
time cap grows with the pages to read: the child says how many before it starts
("ocr", 0, pages), and the deadline moves by ``limits.ocr.seconds_per_page`` each.
"""
from __future__ import annotations

import multiprocessing
import resource
import time
from pathlib import Path
from typing import Callable

from core.errors import ReportFileError

from .formats import ConvertedText, ParseLimits, convert_report


def _child(conn, max_memory_bytes: int) -> None:
    """The converter process: receives (path, name, limits), answers ("ok", text) or ("error", messages),
    after any number of ("progress", event) messages (OCR pages)."""
    resource.setrlimit(resource.RLIMIT_AS, (max_memory_bytes, max_memory_bytes))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        path, name, limits = request
        try:
            converted = convert_report(Path(path), name, limits, lambda event: conn.send(("progress", event)))
            conn.send(("ok", converted))
        except ReportFileError as exc:
            conn.send(("error", (exc.message, exc.message_zh)))
        except MemoryError:
            conn.send(("error", _too_big(name, limits).args))
        except Exception as exc:  # noqa: BLE001 - any parser failure is this one file's problem
            conn.send(("error", (f"{name}: cannot be read ({type(exc).__name__})", f"{name}：无法读取该文件")))


def _too_big(name: str, limits: ParseLimits) -> ReportFileError:
    gib = limits.max_memory_bytes / 2**30
    return ReportFileError(f"{name}: reading it needed more than {gib:.1f} GiB of memory (a decompression bomb?); "
                           "skipped", f"{name}：文件解析所需内存过大，已跳过")


Progress = Callable[[str, tuple], None]  # (file name, ("ocr", pages done, pages to read))


class ConverterProcess:
    """One long-lived child process converting files in turn; restarted after a kill. Use as a context manager.

    ``progress`` hears of each OCR'd page of a scanned PDF (the staff page shows it per file).
    """

    def __init__(self, limits: ParseLimits = ParseLimits(), progress: Progress = lambda name, event: None):
        self.limits = limits
        self.progress = progress
        self._process = None
        self._conn = None

    def __enter__(self) -> "ConverterProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: none of the parent's threads or models
        self._conn, child_end = context.Pipe()
        self._process = context.Process(target=_child, args=(child_end, self.limits.max_memory_bytes),
                                        name="reportqa-converter", daemon=True)
        self._process.start()
        child_end.close()

    def convert(self, path: Path, name: str) -> ConvertedText:
        """``convert_report`` in the child; ReportFileError when the file is bad, too big or too slow."""
        if self._process is None or not self._process.is_alive():
            self._start()
        self._conn.send((str(path), name, self.limits))
        budget = self.limits.max_seconds
        deadline = time.monotonic() + budget
        while True:
            if not self._conn.poll(max(0.0, deadline - time.monotonic())):
                self.close()
                raise ReportFileError(f"{name}: reading it took longer than {budget:g} s; skipped",
                                      f"{name}：文件解析超时，已跳过")
            try:
                status, payload = self._conn.recv()
            except (EOFError, OSError):  # the child died: out of memory, or killed
                self.close()
                raise _too_big(name, self.limits) from None
            if status != "progress":
                break
            if payload[0] == "ocr" and payload[1] == 0:  # pages to read by OCR: each one adds to the budget
                extra = payload[2] * self.limits.ocr.seconds_per_page
                budget, deadline = budget + extra, deadline + extra
            self.progress(name, payload)
        if status == "error":
            raise ReportFileError(*payload)
        return payload

    def close(self) -> None:
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(5)
            self._conn.close()
        self._process = self._conn = None
