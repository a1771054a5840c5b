"""Cross-encoder reranking: rescore the retriever's candidates by reading question and passage together.

The hybrid retriever embeds question and passage separately; a cross-encoder
(BAAI/bge-reranker-base and the like) reads each pair jointly, which is slower
per passage but sharper, so it reorders a short candidate list. Models load
strictly offline, as the embedder does: a model that is not on disk is a
``ModelUnavailable`` that says how to copy one here.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

import numpy as np

from core.errors import ModelUnavailable
from core.offline import LazyOfflineModel, load_offline, unavailable
from core.types import Hit, passage_text

EXAMPLE_RERANKER = "BAAI/bge-reranker-base"


@runtime_checkable
class Reranker(Protocol):
    """What the service needs from a reranker: a display name and a reordering."""

    name: str

    def rerank(self, question: str, hits: list[Hit], top_k: int) -> list[Hit]: ...


class CrossEncoderReranker(LazyOfflineModel):
    """A sentence-transformers ``CrossEncoder``, by hub name (from the local cache) or folder.

    ``rerank`` returns the best ``top_k`` hits with ``score`` replaced by the
    model's raw relevance logit (higher is better, unbounded): the logit rather
    than the model's sigmoid, which rounds confident pairs to 1.0 in float32
    and would turn their order into ties.
    """

    def __init__(self, model: str, batch_size: int = 16) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        self.model_ref = model
        self.name = f"cross-encoder:{model}"
        self.batch_size = batch_size
        super().__init__()

    def load(self) -> None:
        """Load the model now (e.g. before a server takes questions) rather than on the first question."""
        self._load()

    def _load_offline(self):
        from sentence_transformers import CrossEncoder

        model = load_offline(self.model_ref, lambda ref: CrossEncoder(ref, device="cpu", local_files_only=True),
                             self._unavailable)
        self._check_is_reranker(model)
        return model

    def _check_is_reranker(self, model) -> None:
        # subtle: CrossEncoder happily loads an embedding model (BertModel, XLMRobertaModel)
        # and bolts on a freshly initialised scoring head, so every score would be noise.
        architectures = getattr(model.config, "architectures", None) or []
        if len(model) == 1 and architectures and not any(
                a.endswith(("ForSequenceClassification", "ForCausalLM")) for a in architectures):
            raise self._unavailable(f"it is not a cross-encoder: its weights are a {architectures[0]} without a "
                                    "trained scoring head (an embedding model?)")
        if model.num_labels != 1:
            raise self._unavailable(f"it gives {model.num_labels} scores per pair (a classifier?); "
                                    "a reranker gives one relevance score")

    def _unavailable(self, why: str) -> ModelUnavailable:
        return unavailable(
            "Reranker model", self.model_ref, why, "REPORTQA_RERANKER", EXAMPLE_RERANKER,
            "to answer without reranking",
            f"无法加载重排序模型 {self.model_ref}：本机不能联网下载模型，请把模型文件夹拷贝到本机并设置 REPORTQA_RERANKER，"
            "或取消该设置以不使用重排序。",
        )

    def score(self, question: str, passages: Sequence[str]) -> np.ndarray:
        """One relevance logit per passage for ``question``, as float32 of shape (len(passages),)."""
        passages = list(passages)
        if not passages:
            return np.zeros(0, np.float32)
        import torch

        model = self._load()
        with self._lock:  # a fast tokenizer refuses concurrent calls ("Already borrowed")
            scores = model.predict([(question, p) for p in passages], batch_size=self.batch_size,
                                   activation_fn=torch.nn.Identity(), show_progress_bar=False,
                                   convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float32).reshape(len(passages))

    def rerank(self, question: str, hits: list[Hit], top_k: int) -> list[Hit]:
        """The ``top_k`` best of ``hits`` by cross-encoder score, best first; ties keep retrieval order.

        Each passage is scored with its section path, the text the embedder saw.
        """
        if top_k <= 0:
            raise ValueError(f"top_k must be > 0, got {top_k}")
        hits = list(hits)
        if not hits:
            return []
        scores = self.score(question, [passage_text(hit.chunk) for hit in hits])
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))[:top_k]
        return [replace(hits[i], score=float(scores[i])) for i in order]


def make_reranker(spec: str | None) -> Reranker | None:
    """Resolve the configured reranker: None when ``spec`` is empty (reranking off); loads nothing."""
    spec = (spec or "").strip()
    if not spec:
        return None
    if spec.startswith("cross-encoder:"):
        spec = spec.split(":", 1)[1]
    return CrossEncoderReranker(spec)
