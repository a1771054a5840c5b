"""The systems an evaluation compares: our pipeline in three retrieval modes and a plain LangChain recipe."""
from __future__ import annotations

import re
import time
import warnings
from typing import Protocol

from core.errors import ReportQAError

from .dataset import EvalItem
from .models import CitedPassage, Passage, Response

SYSTEM_NAMES: tuple[str, ...] = ("ours", "bm25", "dense", "langchain")
RANKING_DEPTH = 10


class System(Protocol):
    """What the runner needs from a system under evaluation."""

    name: str

    def passages(self) -> list[Passage]:
        """Every passage the system can retrieve (the denominator of nDCG)."""
        ...

    def rank(self, item: EvalItem, k: int = RANKING_DEPTH) -> list[Passage]:
        """The system's top-``k`` retrieval for an item's question (in its conversation), best first."""
        ...

    def respond(self, item: EvalItem) -> Response:
        """Answer one item the way a citizen would be answered, timed."""
        ...


class PipelineSystem:
    """ReportQA itself, answering through ``ask`` exactly as the CLI and the chat do.

    ``qa`` is the application's service (reportqa.service.ReportQA): anything with
    ``index``, ``retrieve``, ``ask``, ``reports``, ``report_text`` and ``with_retrieval_mode``.
    """

    def __init__(self, name: str, qa):
        self.name = name
        self.qa = qa

    def passages(self) -> list[Passage]:
        return [Passage(c.text, c.source, c.start, c.end) for c in self.qa.index.chunks]

    def rank(self, item: EvalItem, k: int = RANKING_DEPTH) -> list[Passage]:
        try:
            hits = self.qa.retrieve(item.question, top_k=k, history=_history(item))
        except ReportQAError:  # a rejected question retrieves nothing
            return []
        return [Passage(h.chunk.text, h.chunk.source, h.chunk.start, h.chunk.end) for h in hits]

    def respond(self, item: EvalItem) -> Response:
        started = time.perf_counter()
        try:
            answer = self.qa.ask(item.question, history=_history(item))
        except ReportQAError as exc:  # a question ReportQA rejects is a refusal as far as a citizen can tell
            return Response(exc.message_zh, True, [], (time.perf_counter() - started) * 1000, error=exc.message)
        latency = (time.perf_counter() - started) * 1000
        citations = [
            CitedPassage(Passage(c.chunk.text, c.chunk.source, c.chunk.start, c.chunk.end), c.quote)
            for c in answer.citations
        ]
        return Response(answer.text, answer.refused, citations, latency, resolved_question=answer.resolved_question)


def _history(item: EvalItem) -> list[dict]:
    return [turn.to_dict() for turn in item.history]


FIRST_SENTENCE = re.compile(r"[^。！？；]*[。！？；]?")


def first_sentence(text: str) -> str:
    """The text up to and including the first 。！？； (the whole text if there is none), stripped."""
    for match in FIRST_SENTENCE.finditer(text.strip()):
        if match.group().strip():
            return match.group().strip()
    return ""


class LangChainBaseline:
    """The plain LangChain recipe: 500-character recursive splits, FAISS, top 4, first sentence of the best.

    It never refuses. It uses the same embedding model as ours, so the
    difference measured is chunking, retrieval and answer selection.
    """

    name = "langchain"
    top_k = 4

    def __init__(self, sources: dict[str, str], embeddings):
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        with warnings.catch_warnings():  # langchain-community announces its own sunset on import
            warnings.simplefilter("ignore", DeprecationWarning)
            from langchain_community.vectorstores import FAISS

        # add_start_index finds each chunk in its source text: the offsets citation metrics need.
        splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50, add_start_index=True)
        names = sorted(sources)
        self._documents = splitter.create_documents([sources[n] for n in names], metadatas=[{"source": n} for n in names])
        from core.embedding import as_langchain

        embeddings = as_langchain(embeddings)
        self._store = FAISS.from_documents(self._documents, embeddings)
        self._embeddings = embeddings

    @staticmethod
    def _passage(document) -> Passage:
        start = document.metadata.get("start_index", -1)
        start = start if start >= 0 else None
        end = start + len(document.page_content) if start is not None else None
        return Passage(document.page_content, document.metadata["source"], start, end)

    def passages(self) -> list[Passage]:
        return [self._passage(d) for d in self._documents]

    def rank(self, item: EvalItem, k: int = RANKING_DEPTH) -> list[Passage]:
        return [self._passage(d) for d, _ in self._store.similarity_search_with_score(item.question, k=k)]

    def respond(self, item: EvalItem) -> Response:
        started = time.perf_counter()
        found = self._store.similarity_search_with_score(item.question, k=self.top_k)
        answer = first_sentence(found[0][0].page_content) if found else ""
        latency = (time.perf_counter() - started) * 1000
        citations = [CitedPassage(self._passage(d), first_sentence(d.page_content)) for d, _ in found]
        return Response(answer, False, citations, latency)


def read_sources(qa) -> dict[str, str]:
    """The text of every report the index was built from, by the source name chunks carry.

    The text citations' offsets point into: the file for .txt/.md, the converted
    text for .html/.docx/.pdf, as the index keeps it.
    """
    return {r.source: qa.report_text(r.source) for r in qa.reports()}


def build_systems(names: list[str] | tuple[str, ...], qa) -> list[System]:
    """The named systems over ``qa``'s index (``qa``: the service, see PipelineSystem).

    ``ours`` is ``qa``; ``bm25`` and ``dense`` are ``qa`` with that retrieval
    mode, reading the same index folder (the mode is not part of the index);
    LangChain borrows ``qa``'s embedder.
    """
    unknown = [n for n in names if n not in SYSTEM_NAMES]
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEM_NAMES)}")
    qa.load()
    systems: list[System] = []
    for name in names:
        if name == "ours":
            systems.append(PipelineSystem("ours", qa))
        elif name in ("bm25", "dense"):
            variant = qa.with_retrieval_mode(name)
            variant.load()
            systems.append(PipelineSystem(name, variant))
        else:
            systems.append(LangChainBaseline(read_sources(qa), qa.embedder))
    return systems
