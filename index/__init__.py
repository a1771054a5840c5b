"""The index on disk: manifest, per-report parts, versions (a writer and a reader), vector stores."""
from .manifest import FORMAT_VERSION, Manifest, differences, embedder_info
from .milvus import MilvusStore
from .parts import Part, read_part, report_text, write_part
from .store import StoredIndex, check_matches, load_index, read_manifest, write_index
from .vectors import DenseStore, FaissStore, ScopeRows, VectorStoreConfig

__all__ = [
    "FORMAT_VERSION", "Manifest", "differences", "embedder_info",
    "Part", "read_part", "report_text", "write_part",
    "StoredIndex", "check_matches", "load_index", "read_manifest", "write_index",
    "DenseStore", "FaissStore", "MilvusStore", "ScopeRows", "VectorStoreConfig",
]
