"""ReportQA: the one object the CLI and the UI talk to (load once, ask many)."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from core.embedding import Embedder, make_embedder
from core.errors import IndexMismatch, IndexMissing, InvalidQuestion, ReportFileError, ReportQAError, UnknownScope
from core.text import clean_user_text, clip
from core.types import Answer, Hit, ReportInfo, Scope, Turn
from index.manifest import differences, embedder_info
from index.parts import report_text
from index.store import StoredIndex, check_matches, load_index, read_manifest
from ingest.build import BuildResult, build_index, source_hashes
from retrieval.answer import AnswerSettings, ExtractiveAnswerer, Trace
from retrieval.compose import merge_answers, split_parts
from retrieval.followup import as_turns, resolve_follow_up
from retrieval.grounding import ungrounded_claims
from retrieval.llm import LLMEvent, make_llm_answerer
from retrieval.model import HEURISTIC, AnswerModel
from retrieval.rerank import make_reranker
from retrieval.scope import ReportCatalogue
from retrieval.search import HybridRetriever

from .config import Settings

logger = logging.getLogger(__name__)
MAX_REASONS_SHOWN = 5  # a folder of thousands of new reports is not listed line by line


def validate_question(question: str | None, max_chars: int) -> str:
    """Return the question cleaned (core.text.clean_user_text) and stripped, or raise InvalidQuestion
    with a message for a person."""
    question = clean_user_text(question).strip()
    if not question:
        raise InvalidQuestion("The question is empty; type a question about the report.", "请输入您的问题。")
    if len(question) > max_chars:
        raise InvalidQuestion(
            f"The question is {len(question)} characters long; keep it under {max_chars}.",
            f"问题太长（{len(question)} 字），请精简到 {max_chars} 字以内。",
        )
    if not any(ch.isalnum() for ch in question):
        raise InvalidQuestion(
            "The question has no words in it (only punctuation or emoji); type it in words.",
            "没有识别到文字，请用文字描述您的问题。",
        )
    return question


@dataclass
class IndexStatus:
    built: bool
    reasons: list[str]


@dataclass(frozen=True)
class Loaded:
    """Everything a loaded index answers with, replaced as one (``ReportQA.reload``): a question in
    flight keeps the version it started with."""

    index: StoredIndex
    retriever: HybridRetriever
    answerer: ExtractiveAnswerer
    catalogue: ReportCatalogue  # the indexed reports, to read a scope off a question
    reranker: object | None  # a cross-encoder when one is configured
    llm: object | None  # an LLMAnswerer when an endpoint is configured; nothing is sent otherwise


class ReportQA:
    """Loads the embedder and the index on first use; answers questions."""

    def __init__(self, settings: Settings | None = None, answer_settings: AnswerSettings = AnswerSettings(),
                 model: AnswerModel | None = None):
        self.settings = settings or Settings()
        self.answer_settings = answer_settings
        self._model = model  # the fitted answer model; None: the file settings name, else the heuristic
        self._embedder: Embedder | None = None
        self._loaded: Loaded | None = None
        self._load_lock = threading.Lock()
        self.stale_reasons: list[str] = []  # why the loaded index is not current, when it could not be rebuilt

    def with_retrieval_mode(self, mode: str) -> "ReportQA":
        """The same service over the same index with one retrieval list only ("dense", "bm25"): a baseline."""
        return ReportQA(self.settings.model_copy(update={"retrieval_mode": mode}), self.answer_settings, self._model)

    def using_model(self, model: AnswerModel) -> "ReportQA":
        """The same service, index and embedder, deciding with ``model`` (cross-validation swaps fitted models)."""
        other = ReportQA(self.settings, self.answer_settings, model)
        other._embedder = self._embedder
        state = self._state()
        other._loaded = replace(state, answerer=ExtractiveAnswerer(state.index, self.answer_settings, model))
        return other

    @property
    def model(self) -> AnswerModel:
        """The answer model: given, else the file REPORTQA_ANSWER_MODEL names (a bad file is refused with the
        fix), else the hand-set heuristic when no file was ever trained."""
        if self._model is None:
            path = self.settings.answer_model_path
            try:
                self._model = AnswerModel.load(path) if path.is_file() else HEURISTIC
            except ValueError as exc:
                raise ReportQAError(str(exc), "回答模型文件损坏，请联系管理员（reportqa train）。") from None
        return self._model

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            s = self.settings
            self._embedder = make_embedder(s.embedder, s.query_prefix, s.passage_prefix)
        return self._embedder

    def _wanted(self, manifest=None) -> tuple[dict, dict, dict[str, str]]:
        """What the index should be built from; files whose size and mtime the manifest
        recorded are not hashed again (10,000 reports: 0.3 s instead of 2 s at start-up)."""
        raw = self.settings.raw_path
        hashes = source_hashes([raw], raw, manifest.sources if manifest else ()) if raw.is_dir() else {}
        return embedder_info(self.embedder), self.settings.chunker.to_dict(), hashes

    def index_status(self) -> IndexStatus:
        """Whether a matching index is on disk, and if not, why."""
        try:
            manifest = read_manifest(self.settings.index_path)
        except IndexMissing as exc:
            return IndexStatus(False, [exc.message])
        reasons = differences(manifest, *self._wanted(manifest))
        return IndexStatus(not reasons, reasons)

    def ingest(self, paths=None, progress=lambda _: None, on_file=lambda done, total, name: None) -> BuildResult:
        """Build a new index version from ``paths`` (default: the raw folder); it is used from the next question
        on (a service already loaded swaps it in: ``reload``).

        Only new or changed reports are parsed and embedded (ingest.build);
        ``on_file(done, total, name)`` is called as each file is done.
        """
        s, raw = self.settings, self.settings.raw_path
        result = build_index(list(paths or [raw]), raw, s.index_path, self.embedder, s.chunker, progress,
                             vectors=s.vector_store, on_file=on_file, limits=s.parse_limits)
        if self._loaded is not None:  # serving already: swap the new version in whole
            self.reload()
        return result

    def ensure_index(self, progress=lambda _: None, on_file=lambda done, total, name: None) -> BuildResult | None:
        """Rebuild the index when it is missing, damaged or stale (what `serve` does); see ``ingest``."""
        status = self.index_status()
        if status.built:
            try:
                self.load()
                return None
            except IndexMissing as exc:  # damaged files behind a good manifest
                status = IndexStatus(False, [exc.message])
        for reason in status.reasons[:MAX_REASONS_SHOWN]:
            progress(f"building the index: {reason}")
        if len(status.reasons) > MAX_REASONS_SHOWN:
            progress(f"building the index: … and {len(status.reasons) - MAX_REASONS_SHOWN} more changes")
        try:
            result = self.ingest(progress=progress, on_file=on_file)
        except OSError as exc:  # a read-only or full data folder: keep serving what is there
            if not self._serve_stale(status.reasons, exc, progress):
                raise ReportQAError(f"Cannot build the index in {self.settings.index_path}: {exc.strerror or exc}. "
                                    "Make the data folder writable and start again.",
                                    "无法建立索引（数据文件夹不可写），请联系管理员。") from None
            return None
        self.load()
        return result

    def _serve_stale(self, reasons: list[str], exc: OSError, progress) -> bool:
        """Load the last good index although it is out of date (it could not be rebuilt); False when there is none."""
        try:
            self.load(stale_ok=True)
        except ReportQAError:
            return False
        self.stale_reasons = list(reasons)
        progress(f"warning: could not rebuild the index ({exc.strerror or exc}: {exc.filename or ''}); "
                 f"serving the last good version, which is out of date: {'; '.join(reasons[:MAX_REASONS_SHOWN])}")
        return True

    def load(self, stale_ok: bool = False) -> None:
        """Load and check the index; raise IndexMissing or IndexMismatch with the fix.

        ``stale_ok``: load a version built from other report files (not from
        another embedder or chunker), when it cannot be rebuilt.
        """
        with self._load_lock:
            if self._loaded is None:
                self._loaded = self._load_state(stale_ok)

    def reload(self) -> None:
        """Load the index version on disk now and swap it in whole: questions in flight finish on the
        version they started with, the next ones use the new one. Raises like ``load`` (the old one stays)."""
        state = self._load_state(stale_ok=False)
        with self._load_lock:
            self._loaded = state

    def _state(self) -> Loaded:
        self.load()
        return self._loaded

    def _load_state(self, stale_ok: bool) -> Loaded:
        index = load_index(self.settings.index_path, self.settings.vector_store)
        embedder, chunker, sources = self._wanted(index.manifest)
        try:
            check_matches(index.manifest, embedder, chunker, sources, self.settings.index_path)
        except IndexMismatch:  # built from other report files is servable; with another model it is not
            if not stale_ok or differences(index.manifest, embedder, chunker, index.manifest.source_hashes()):
                raise
        reranker = make_reranker(self.settings.reranker)
        if reranker is not None:
            reranker.load()  # a missing model is refused now, with the fix, not on a citizen's question
        answerer = ExtractiveAnswerer(index, self.answer_settings, self.model)
        answerer.warm_up()
        return Loaded(index, HybridRetriever(index, mode=self.settings.retrieval_mode), answerer,
                      ReportCatalogue(tuple(index.manifest.indexed())), reranker,
                      make_llm_answerer(self.settings.llm_endpoint))

    @property
    def index(self) -> StoredIndex:
        return self._state().index

    @property
    def loaded_index(self) -> StoredIndex | None:
        """The index answering now, or None before the first load (a health check must not start one)."""
        state = self._loaded
        return state.index if state else None

    def titles(self) -> list[str]:
        """Titles of the indexed reports, for the page header."""
        return [r.display_title for r in self.reports()]

    def reports(self) -> list[ReportInfo]:
        """The indexed reports: source, title, issuer, year, url (what a Scope can name)."""
        return self.index.manifest.indexed()

    def report_text(self, source: str) -> str:
        """The whole text of an indexed report, as its citations' offsets point into it (converted text for
        .html/.docx/.pdf); ReportFileError for a source that is not indexed or whose text is gone."""
        report = next((r for r in self.reports() if r.source == source), None)
        if report is None:
            raise ReportFileError(f"{source!r} is not an indexed report", "没有这份报告。")
        return report_text(self.settings.index_path, report)

    def check_scope(self, scope: Scope | None) -> None:
        """Raise UnknownScope naming each report, issuer or year of ``scope`` that no indexed report has."""
        problems = self._state().catalogue.unknown(scope) if scope else []
        if problems:
            field, missing, known = problems[0]
            names = {"source": ("report", "报告"), "issuer": ("issuing body", "发布机关"), "year": ("year", "年份")}[field]
            raise UnknownScope(
                f"{', '.join(map(str, missing))} not in the index; known: {', '.join(map(str, known)) or 'none'}",
                f"没有找到{names[1]}：{'、'.join(clip(v, 60) for v in map(str, missing))}。"
                f"已收录的{names[1]}：{'、'.join(map(str, known[:20])) or '无'}",
                field,
            )

    @staticmethod
    def _grounded(answer: Answer) -> Answer:
        """Check, before an answer is shown, that its numbers and 《titles》 are in its citations.

        The extractive answerer quotes whole sentences, so a violation is a
        bug: it is logged and the answer falls back to the cited sentences alone.
        """
        problems = ungrounded_claims(answer.text, [c.chunk.text for c in answer.citations])
        if answer.refused or not problems:
            return answer
        logger.error("ungrounded answer to %r: %s not in its citations; showing the quotes only", clip(answer.question),
                     problems)
        return replace(answer, text="\n".join(f"{c.quote}[{c.n}]" for c in answer.citations))

    def retrieve(self, question: str, top_k: int | None = None, history: Sequence[Turn | dict] | None = None,
                 scope: Scope | None = None) -> list[Hit]:
        """The passages a question retrieves (after resolving a follow-up), best first.

        Within ``scope`` if given; else within the reports the question (or the
        conversation before it) names by place and year, when several reports
        are indexed (ReportCatalogue.infer_in_conversation).
        """
        query = resolve_follow_up(validate_question(question, self.settings.max_question_chars), history)
        state = self._state()
        return self._search(state, self.embedder.encode_queries([query])[0], query, top_k or self.settings.top_k,
                            scope or self._named_scope(state, query, history))

    def trace(self, question: str, history: Sequence[Turn | dict] | None = None, scope: Scope | None = None) -> Trace:
        """Every stage of answering a one-part question, for the evaluation and for ``reportqa train``."""
        question = validate_question(question, self.settings.max_question_chars)
        state = self._state()
        query = resolve_follow_up(question, history)
        query_vector = self.embedder.encode_queries([query])[0]
        hits = self._search(state, query_vector, query, self.settings.top_k,
                            scope or self._named_scope(state, query, history))
        return state.answerer.trace(query, hits, query_vector, asked=question)

    @staticmethod
    def _named_scope(state: Loaded, query: str, history: Sequence[Turn | dict] | None) -> Scope | None:
        """The reports the question, or the conversation before it, names by place and year."""
        return state.catalogue.infer_in_conversation(query, [t.question for t in as_turns(history)])

    def _search(self, state: Loaded, query_vector, query: str, top_k: int, scope: Scope | None = None) -> list[Hit]:
        """Hybrid retrieval, then the reranker (when configured) over a deeper candidate list."""
        if state.reranker is None:
            return state.retriever.search(query_vector, query, top_k=top_k, scope=scope)
        candidates = state.retriever.search(query_vector, query, top_k=max(self.settings.rerank_candidates, top_k),
                                            scope=scope)
        return state.reranker.rerank(query, candidates, top_k)

    def ask(self, question: str, history: Sequence[Turn | dict] | None = None, scope: Scope | None = None) -> Answer:
        """Answer one question from the reports, or refuse plainly.

        ``history``: earlier turns, oldest first; a follow-up (那2024年呢？) is
        joined to the previous question before retrieval. A question with two
        or three parts (办了多少件？满意率多少？) gets each part answered, or
        named as not covered. With an LLM configured, its checked answer (or
        the extractive one when the check fails); see ``ask_stream``.
        ``scope`` narrows the search to some reports (a file, an issuer, a year).
        """
        final = None
        for event in self.ask_stream(question, history, scope):
            final = event
        return final.answer

    def ask_stream(self, question: str, history: Sequence[Turn | dict] | None = None,
                   scope: Scope | None = None) -> Iterator[LLMEvent]:
        """The answer as it is composed: partial texts, then a final event with the Answer.

        The extractive answer is always computed first: it is the answer when
        no LLM is configured, and the fallback when the LLM's reply fails its
        checks, times out or errors.
        """
        question = validate_question(question, self.settings.max_question_chars)
        state = self._state()  # one version for the whole question, even if a new one is swapped in meanwhile
        extractive, hits = self._extractive(state, question, history, scope)
        if state.llm is None:
            yield LLMEvent(text=extractive.text, answer=extractive)
            return
        query = extractive.resolved_question or question
        for event in state.llm.stream(query, hits, extractive):
            if event.final:
                timed = replace(event.answer, timings_ms={**extractive.timings_ms, **event.answer.timings_ms})
                event = replace(event, answer=self._grounded(timed))
            yield event

    def _extractive(self, state: Loaded, question: str, history: Sequence[Turn | dict] | None,
                    scope: Scope | None = None) -> tuple[Answer, list[Hit]]:
        """The extractive answer and the passages it was chosen from (every part's, best first)."""
        t0 = time.perf_counter()
        parts = split_parts(question)
        turns = list(history or [])
        answers, hits, retrieve_ms = [], {}, 0.0
        for part in parts:
            answer, part_hits, part_ms = self._answer_one(state, part, turns, scope)
            answers.append(answer)
            hits.update((h.chunk.chunk_id, h) for h in part_hits if h.chunk.chunk_id not in hits)
            retrieve_ms += part_ms
            # The next part follows up on this one as understood (follow-up resolved), not as typed.
            turns.append(Turn(answer.resolved_question or part, answer.text))
        answer = answers[0] if len(parts) == 1 else merge_answers(question, parts, answers)
        total_ms = (time.perf_counter() - t0) * 1000
        answer = replace(self._grounded(answer), question=question,
                         timings_ms={"retrieve": retrieve_ms, "answer": total_ms - retrieve_ms})
        return answer, list(hits.values())

    def _answer_one(self, state: Loaded, question: str, history: Sequence[Turn | dict],
                    scope: Scope | None = None) -> tuple[Answer, list[Hit], float]:
        """Retrieve for one (resolved) question and answer it; returns the answer, its hits and retrieval ms."""
        t0 = time.perf_counter()
        query = resolve_follow_up(question, history)
        query_vector = self.embedder.encode_queries([query])[0]
        hits = self._search(state, query_vector, query, self.settings.top_k,
                            scope or self._named_scope(state, query, history))
        retrieve_ms = (time.perf_counter() - t0) * 1000
        answer = state.answerer.answer(query, hits, query_vector, asked=question)
        return replace(answer, resolved_question=query if query != question else ""), hits, retrieve_ms


__all__ = ["ReportQA", "validate_question"]
