"""Staff evaluation: the question set, metrics, the systems compared, and the report."""
from .dataset import CATEGORIES, EvalItem, LoadError, LoadResult, Turn, append_item, load_eval_set
from .models import CitedPassage, ItemResult, Passage, Response
from .report import write_outputs
from .runner import EvalRun, run_eval, summarise
from .systems import SYSTEM_NAMES, LangChainBaseline, PipelineSystem, System, build_systems, read_sources

__all__ = [
    "CATEGORIES", "EvalItem", "LoadError", "LoadResult", "Turn", "append_item", "load_eval_set",
    "CitedPassage", "ItemResult", "Passage", "Response",
    "write_outputs",
    "EvalRun", "run_eval", "summarise",
    "SYSTEM_NAMES", "LangChainBaseline", "PipelineSystem", "System", "build_systems", "read_sources",
]
