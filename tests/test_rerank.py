"""The reranking seam with real models: tiny cross-encoders built here from the report,
scored against real hits from the real index, and models that are not on this machine.
Nothing is downloaded: the network is blocked for the whole module.
"""
from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
from tiny_cross_encoder import build_tiny_cross_encoder, swap_token_embeddings, tiny_pair_tokenizer
from tiny_models import NetworkBlocked, offline_hub

from core.errors import ModelUnavailable, ReportQAError
from core.types import Hit, passage_text
from retrieval.rerank import CrossEncoderReranker, Reranker, make_reranker

QUESTION = "全市建成了多少个便民服务站？"
ANSWER_NUMBER = "1726"  # 全市建成便民服务站1726个
OTHER_NUMBER = "2952"  # a number found in one other passage the question retrieves


# --- no network, no shared caches --------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory):
    """Hub offline mode, an empty private HF cache, and sockets that refuse to connect."""
    with offline_hub(tmp_path_factory.mktemp("hf-home"), unset=("REPORTQA_RERANKER",)):
        yield


def test_network_is_blocked_in_this_module():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("huggingface.co", 443), timeout=1)


# --- real hits, tiny real models ---------------------------------------------------------------

@pytest.fixture(scope="module")
def hits(qa) -> list[Hit]:
    found = qa.retrieve(QUESTION, top_k=10)
    texts = [passage_text(h.chunk) for h in found]
    # What the ordering tests rely on: one passage with each number, and neither in the same one.
    assert sum(ANSWER_NUMBER in t for t in texts) == 1, texts
    assert sum(OTHER_NUMBER in t for t in texts) == 1, texts
    assert not any(ANSWER_NUMBER in t and OTHER_NUMBER in t for t in texts)
    return found


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory):
    """Randomly initialised (seed 0): real model, arbitrary but fixed scores."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("ce") / "tiny-zh-bert-reranker")


@pytest.fixture(scope="module")
def plain(plain_dir) -> CrossEncoderReranker:
    return CrossEncoderReranker(str(plain_dir))


@pytest.fixture(scope="module")
def prefers_answer_dir(tmp_path_factory):
    """Fine-tuned to score passages containing 1726 above all others, whatever the question."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("ce") / "prefers-1726", prefer=ANSWER_NUMBER,
                                    words=(OTHER_NUMBER,))


@pytest.fixture(scope="module")
def prefers_other_dir(prefers_answer_dir, tmp_path_factory):
    """The same model with the embeddings of 1726 and 2952 exchanged: it now prefers 2952."""
    return swap_token_embeddings(prefers_answer_dir, tmp_path_factory.mktemp("ce") / "prefers-2952",
                                 ANSWER_NUMBER, OTHER_NUMBER)


def _texts(hits: list[Hit]) -> list[str]:
    return [passage_text(h.chunk) for h in hits]


@pytest.mark.slow
def test_tiny_model_folder_has_the_layout_of_a_downloaded_reranker(plain_dir, prefers_answer_dir):
    names = {p.name for p in plain_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert "modules.json" not in names  # a plain transformers folder, as bge-reranker-base is on the hub
    tokenizer = tiny_pair_tokenizer((ANSWER_NUMBER,))
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(QUESTION, "全市建成便民服务站1726个")["input_ids"])
    assert tokens[:3] == ["[CLS]", "全", "市"] and tokens[-1] == "[SEP]"
    assert ANSWER_NUMBER in tokens and tokens.count("[SEP]") == 2


@pytest.mark.slow
def test_scores_are_one_float_per_passage_and_deterministic(plain, plain_dir, hits, tmp_path):
    texts = _texts(hits)
    scores = plain.score(QUESTION, texts)
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float32
    assert scores.shape == (len(texts),)
    assert np.all(np.isfinite(scores))
    assert len(set(scores.tolist())) == len(texts)  # different passages, different scores
    np.testing.assert_array_equal(plain.score(QUESTION, texts), scores)
    # One pair at a time gives the same numbers as a padded batch.
    np.testing.assert_allclose(CrossEncoderReranker(str(plain_dir), batch_size=1).score(QUESTION, texts), scores,
                               atol=1e-5)
    # A fresh load of the folder, and the same model built again, score alike; another seed does not.
    np.testing.assert_array_equal(CrossEncoderReranker(str(plain_dir)).score(QUESTION, texts), scores)
    rebuilt = build_tiny_cross_encoder(tmp_path / "again")
    np.testing.assert_array_equal(CrossEncoderReranker(str(rebuilt)).score(QUESTION, texts), scores)
    other_seed = build_tiny_cross_encoder(tmp_path / "seed-1", seed=1)
    assert not np.allclose(CrossEncoderReranker(str(other_seed)).score(QUESTION, texts), scores)
    assert plain.score(QUESTION, []).shape == (0,)


@pytest.mark.slow
def test_rerank_returns_top_k_of_the_input_sorted_by_model_score(plain, hits):
    scores = dict(zip((h.chunk.chunk_id for h in hits), plain.score(QUESTION, _texts(hits)).tolist()))
    by_id = {h.chunk.chunk_id: h for h in hits}
    for top_k in (1, 3, len(hits), len(hits) + 5):
        reranked = plain.rerank(QUESTION, hits, top_k=top_k)
        assert len(reranked) == min(top_k, len(hits))
        ids = [h.chunk.chunk_id for h in reranked]
        assert len(set(ids)) == len(ids) and set(ids) <= set(by_id)
        assert all(isinstance(h, Hit) for h in reranked)
        # score is the reranker's; everything the retriever measured is kept.
        assert [h.score for h in reranked] == pytest.approx([scores[i] for i in ids], abs=1e-6)
        assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)
        assert [replace(h, score=by_id[h.chunk.chunk_id].score) for h in reranked] == [by_id[i] for i in ids]
        # The best top_k of all: nothing left out scores higher than anything kept.
        left_out = [s for i, s in scores.items() if i not in ids]
        assert not left_out or max(left_out) <= reranked[-1].score
    assert plain.rerank(QUESTION, hits, top_k=len(hits))[:3] == plain.rerank(QUESTION, hits, top_k=3)


@pytest.mark.slow
def test_passage_with_the_answer_moves_to_the_top_when_the_model_prefers_it(prefers_answer_dir, hits):
    reranker = CrossEncoderReranker(str(prefers_answer_dir))
    worst_first = hits[::-1]  # the answering passage starts anywhere but first
    assert ANSWER_NUMBER not in worst_first[0].chunk.text
    for given in (worst_first, hits):
        reranked = reranker.rerank(QUESTION, given, top_k=5)
        assert ANSWER_NUMBER in reranked[0].chunk.text
        assert reranked[0].score > reranked[1].score + 1.0, [h.score for h in reranked]
    assert {h.chunk.chunk_id for h in reranker.rerank(QUESTION, hits, top_k=len(hits))} == {
        h.chunk.chunk_id for h in hits}


@pytest.mark.slow
def test_the_order_comes_from_the_model(prefers_answer_dir, prefers_other_dir, hits):
    """Same question, same hits, two models that differ only in which number they favour: two winners."""
    first = CrossEncoderReranker(str(prefers_answer_dir)).rerank(QUESTION, hits, top_k=3)
    second = CrossEncoderReranker(str(prefers_other_dir)).rerank(QUESTION, hits, top_k=3)
    assert ANSWER_NUMBER in first[0].chunk.text and OTHER_NUMBER not in first[0].chunk.text
    assert OTHER_NUMBER in second[0].chunk.text and ANSWER_NUMBER not in second[0].chunk.text


@pytest.mark.slow
def test_sentence_transformers_saved_layout_loads_too(plain, plain_dir, hits, tmp_path):
    """A model saved by CrossEncoder.save (modules.json and friends) gives the same scores."""
    from sentence_transformers import CrossEncoder

    saved = tmp_path / "saved-by-sentence-transformers"
    CrossEncoder(str(plain_dir), device="cpu", local_files_only=True).save(str(saved))
    assert (saved / "modules.json").is_file()
    texts = _texts(hits)
    np.testing.assert_allclose(CrossEncoderReranker(str(saved)).score(QUESTION, texts), plain.score(QUESTION, texts),
                               atol=1e-6)


@pytest.mark.slow
def test_concurrent_first_use_loads_once_and_scores_alike(plain_dir, plain, hits, monkeypatch):
    reranker = CrossEncoderReranker(str(plain_dir))
    loads = []
    original = reranker._load_offline

    def counted():
        loads.append(threading.get_ident())
        return original()

    monkeypatch.setattr(reranker, "_load_offline", counted)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: reranker.rerank(QUESTION, hits, top_k=5), range(8)))
    assert len(loads) == 1
    expected = plain.rerank(QUESTION, hits, top_k=5)
    assert all(r == expected for r in results)


# --- the seam ----------------------------------------------------------------------------------

def test_constructor_and_factory_load_nothing():
    reranker = CrossEncoderReranker("no-such-org/no-such-reranker")  # cheap: no error until first use
    assert isinstance(reranker, Reranker)
    assert reranker.name == "cross-encoder:no-such-org/no-such-reranker"
    for spec in (None, "", "   "):
        assert make_reranker(spec) is None
    for spec in ("BAAI/bge-reranker-base", " cross-encoder:BAAI/bge-reranker-base "):
        made = make_reranker(spec)
        assert isinstance(made, CrossEncoderReranker) and made.name == "cross-encoder:BAAI/bge-reranker-base"


def test_bad_arguments_are_named():
    reranker = CrossEncoderReranker("no-such-org/no-such-reranker")
    assert reranker.rerank(QUESTION, [], top_k=3) == []  # nothing to rerank: the model is not needed
    with pytest.raises(ValueError, match="top_k must be > 0, got 0"):
        reranker.rerank(QUESTION, [], top_k=0)
    with pytest.raises(ValueError, match="batch_size must be > 0, got 0"):
        CrossEncoderReranker("no-such-org/no-such-reranker", batch_size=0)


# --- models that are not on this machine -------------------------------------------------------

def _assert_unavailable_message(exc: ModelUnavailable, model_ref: str) -> None:
    assert isinstance(exc, ReportQAError)
    assert model_ref in exc.message and model_ref in exc.message_zh
    assert "REPORTQA_RERANKER" in exc.message
    assert "REPORTQA_RERANKER" in exc.message_zh
    assert "Traceback" not in exc.message


def test_model_not_in_the_local_cache_is_unavailable(hits):
    reranker = CrossEncoderReranker("no-such-org/no-such-reranker")
    with pytest.raises(ModelUnavailable) as info:
        reranker.rerank(QUESTION, hits, top_k=3)
    _assert_unavailable_message(info.value, "no-such-org/no-such-reranker")
    assert "hf download no-such-org/no-such-reranker" in info.value.message
    # Every entry point reports the same error, every time (a failed load is not cached as a model).
    for call in (reranker.load, lambda: reranker.score(QUESTION, ["全市建成便民服务站1726个"]),
                 lambda: reranker.rerank(QUESTION, hits, top_k=3)):
        with pytest.raises(ModelUnavailable):
            call()


@pytest.mark.parametrize("contents", [{}, {"notes.txt": "not a model"}, {"config.json": "{}"}],
                         ids=["empty", "stray-file", "empty-config"])
def test_folder_without_a_model_is_unavailable(tmp_path, contents):
    folder = tmp_path / "models" / "not-a-reranker"
    folder.mkdir(parents=True)
    for name, text in contents.items():
        (folder / name).write_text(text, encoding="utf-8")
    with pytest.raises(ModelUnavailable) as info:
        make_reranker(str(folder)).score(QUESTION, ["全市建成便民服务站1726个"])
    _assert_unavailable_message(info.value, str(folder))
    assert "folder" in info.value.message
    assert "BAAI/bge-reranker-base" in info.value.message  # what to copy here, and how


def test_missing_folder_path_is_unavailable(tmp_path):
    missing = tmp_path / "models" / "never-copied"
    with pytest.raises(ModelUnavailable) as info:
        make_reranker(str(missing)).load()
    _assert_unavailable_message(info.value, str(missing))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["embedding-model", "two-label-classifier"])
def test_a_model_that_is_not_a_reranker_is_refused(tmp_path, kind):
    """Without this check an embedding model would load with a random scoring head and rank by noise."""
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    tokenizer = tiny_pair_tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)
    model = BertModel(config) if kind == "embedding-model" else BertForSequenceClassification(config)
    folder = tmp_path / kind
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    with pytest.raises(ModelUnavailable) as info:
        CrossEncoderReranker(str(folder)).load()
    _assert_unavailable_message(info.value, str(folder))
    assert ("BertModel" if kind == "embedding-model" else "2 scores per pair") in info.value.message


# ---------------------------------------------------------------- through ReportQA, as configured

@pytest.mark.slow
def test_reportqa_reranks_with_the_configured_cross_encoder(built_settings, prefers_answer_dir):
    from reportqa.service import ReportQA

    plain = ReportQA(built_settings)
    reranked = ReportQA(built_settings.model_copy(update={"reranker": str(prefers_answer_dir), "rerank_candidates": 10}))
    question = "政务服务和审批方面做了哪些工作？"
    candidates = plain.retrieve(question, top_k=10)
    position = next(i for i, h in enumerate(candidates) if ANSWER_NUMBER in h.chunk.text)
    assert position > 0  # retrieval alone does not put it first ...
    after = reranked.retrieve(question, top_k=3)
    assert ANSWER_NUMBER in after[0].chunk.text  # ... the model that prefers 1726 does
    assert {h.chunk.chunk_id for h in after} <= {h.chunk.chunk_id for h in candidates}
    assert reranked.ask("全市建成了多少个便民服务站？").citations[0].quote.count("1726") == 1


def test_reportqa_refuses_a_missing_reranker_with_the_fix(built_settings):
    from reportqa.service import ReportQA

    qa = ReportQA(built_settings.model_copy(update={"reranker": "no-such-org/no-such-reranker"}))
    with pytest.raises(ModelUnavailable, match="REPORTQA_RERANKER"):
        qa.ask("全市建成了多少个便民服务站？")
    with pytest.raises(ModelUnavailable):  # still refused: a half-loaded service never answers without it
        qa.ask("全市建成了多少个便民服务站？")
