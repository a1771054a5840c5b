"""Retrieval: a question into Hits, then into an Answer with Citations (or a refusal)."""
from .answer import AnswerSettings, ExtractiveAnswerer
from .llm import LLMAnswerer, LLMEvent
from .models import REFUSAL_MESSAGE, Answer, Citation, Hit, Turn
from .rerank import CrossEncoderReranker, Reranker
from .search import HybridRetriever

__all__ = [
    "AnswerSettings", "ExtractiveAnswerer", "LLMAnswerer", "LLMEvent",
    "REFUSAL_MESSAGE", "Answer", "Citation", "Hit", "Turn",
    "CrossEncoderReranker", "Reranker", "HybridRetriever",
]
