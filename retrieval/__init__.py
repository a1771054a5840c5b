"""Retrieval: a question into Hits, then into an Answer with Citations (or a refusal)."""
from .answer import AnswerSettings, ExtractiveAnswerer
from .llm import LLMAnswerer, LLMEndpoint, LLMEvent
from .rerank import CrossEncoderReranker, Reranker
from .scope import ReportCatalogue
from .search import HybridRetriever

__all__ = [
    "AnswerSettings", "ExtractiveAnswerer", "LLMAnswerer", "LLMEndpoint", "LLMEvent",
    "CrossEncoderReranker", "Reranker", "ReportCatalogue", "HybridRetriever",
]
