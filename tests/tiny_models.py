"""Real, tiny embedding models built on the spot for tests; nothing is downloaded.

``build_tiny_sentence_transformer(path)`` trains a small WordPiece tokenizer on
the bundled report, wraps it in a randomly initialised (seeded)
``StaticEmbedding`` and saves a complete sentence-transformers folder, the same
layout a model downloaded from the hub has. Loading that folder exercises the
real ``SentenceTransformer`` loading code path.
"""
from __future__ import annotations

import contextlib
import socket
import string
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
REPORT = REPO_ROOT / "data" / "raw" / "dalian-2023-law-based-government-report.txt"

TINY_DIM = 32
UNK = "[UNK]"
PAD = "[PAD]"
# Characters every text may contain even if the report does not: ASCII (for
# prompts such as "query: ") and full-width punctuation (for typed questions).
_EXTRA_CHARS = string.ascii_lowercase + string.digits + string.punctuation + "？！，。：；、“”（）《》"


def train_tiny_tokenizer(corpus_path: Path = REPORT, vocab_size: int = 2000):
    """A BERT-style WordPiece tokenizer; every CJK character is its own token.

    The trainer breaks ties between equally frequent merges in hash order, so
    its multi-character pieces (here only digit runs: CJK text is split per
    character first) vary from run to run. Only the single-character pieces it
    learns are kept, numbered in sorted order: the same corpus always gives the
    same vocabulary and ids, and the same model weights for a given seed.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    def blank() -> Tokenizer:
        tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
        # handle_chinese_chars puts spaces around every CJK character, so Chinese
        # text becomes one token per character instead of one [UNK] per run.
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        return tokenizer

    lines = [line for line in Path(corpus_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    trained = blank()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=[PAD, UNK],
                                        initial_alphabet=list(_EXTRA_CHARS), show_progress=False)
    trained.train_from_iterator(lines, trainer=trainer)

    tokens = {t for t in trained.get_vocab() if len(t.removeprefix("##")) == 1}
    # Word-internal pieces for the extra characters, so "query" is q ##u ##e ##r ##y, not [UNK].
    tokens |= set(_EXTRA_CHARS) | {"##" + c for c in _EXTRA_CHARS}
    vocab = {token: i for i, token in enumerate([PAD, UNK, *sorted(tokens)])}
    tokenizer = blank()
    tokenizer.model = models.WordPiece(vocab=vocab, unk_token=UNK)
    return tokenizer


def build_tiny_sentence_transformer(path, *, dim: int = TINY_DIM, seed: int = 0,
                                    prompts: dict[str, str] | None = None) -> Path:
    """Save a real, deterministic sentence-transformers model (StaticEmbedding, ``dim``-dim) to ``path``.

    ``prompts`` (e.g. ``{"query": "query: ", "document": "passage: "}``) is
    stored in the model's configuration, as e5-style hub models do.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import StaticEmbedding

    path = Path(path)
    tokenizer = train_tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's RNG
        torch.manual_seed(seed)
        module = StaticEmbedding(tokenizer, embedding_dim=dim)
    model = SentenceTransformer(modules=[module], device="cpu", prompts=prompts)
    path.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    return path


class NetworkBlocked(RuntimeError):
    pass


def _blocked(*args, **kwargs):
    raise NetworkBlocked(f"test tried to open a network connection: {args[1:] or kwargs}")


@contextlib.contextmanager
def offline_hub(hf_home: Path, unset: tuple[str, ...] = ()):
    """Hub offline mode, an empty private HF cache at ``hf_home``, and sockets that refuse to connect."""
    import huggingface_hub.constants as hub_constants

    with pytest.MonkeyPatch.context() as mp:
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            mp.setenv(var, "1")
        mp.setenv("HF_HOME", str(hf_home))
        mp.setenv("HF_HUB_CACHE", str(hf_home / "hub"))
        for var in unset:
            mp.delenv(var, raising=False)
        # huggingface_hub reads these at import time; the library may already be imported.
        mp.setattr(hub_constants, "HF_HUB_OFFLINE", True)
        mp.setattr(hub_constants, "HF_HUB_CACHE", str(hf_home / "hub"))
        mp.setattr(socket.socket, "connect", _blocked)
        mp.setattr(socket.socket, "connect_ex", _blocked)
        mp.setattr(socket, "create_connection", _blocked)
        yield

