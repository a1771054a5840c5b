"""A real, tiny cross-encoder (reranker) built on the spot for tests; nothing is downloaded.

``build_tiny_cross_encoder(path)`` saves a 2-layer, 32-wide
``BertForSequenceClassification`` (one relevance logit per question/passage
pair) and a ``BertTokenizerFast`` whose vocabulary comes from the report,
as ``tokenizer.json`` + ``config.json`` + ``model.safetensors``: the layout of
a hub reranker such as BAAI/bge-reranker-base after ``hf download``, so
``CrossEncoder(path)`` takes the same loading path a named model takes.

With ``prefer="1726"`` the model is fine-tuned for a few steps to score
passages containing that word above passages without it, whatever the
question: the order it gives real passages is then known in advance.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from tiny_models import PAD, REPORT, UNK, train_tiny_tokenizer

EVAL_QUESTIONS = REPORT.parent.parent / "evals" / "qa.jsonl"
CLS, SEP, MASK = "[CLS]", "[SEP]", "[MASK]"
TINY_HIDDEN = 32
MAX_LENGTH = 512


def tiny_pair_tokenizer(words: tuple[str, ...] = ()):
    """The report's per-character WordPiece tokenizer with BERT's pair specials, as ``BertTokenizerFast``.

    ``words`` become whole-word pieces (``"1726"`` is one token instead of
    1 ##7 ##2 ##6), like the frequent numbers in a real BERT vocabulary.
    """
    from tokenizers import models
    from transformers import BertTokenizerFast

    tokenizer = train_tiny_tokenizer()
    vocab = dict(tokenizer.get_vocab())
    for token in (CLS, SEP, MASK, *words):
        vocab.setdefault(token, len(vocab))
    tokenizer.model = models.WordPiece(vocab=vocab, unk_token=UNK)
    return BertTokenizerFast(tokenizer_object=tokenizer, unk_token=UNK, pad_token=PAD, cls_token=CLS,
                             sep_token=SEP, mask_token=MASK, model_max_length=MAX_LENGTH)


def build_tiny_cross_encoder(path, *, seed: int = 0, prefer: str | None = None, words: tuple[str, ...] = (),
                             steps: int = 50) -> Path:
    """Save a deterministic tiny reranker to ``path``; with ``prefer``, one that favours passages containing it."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    path = Path(path)
    tokenizer = tiny_pair_tokenizer(tuple(dict.fromkeys((*words, *([prefer] if prefer else [])))))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=TINY_HIDDEN, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=2 * TINY_HIDDEN,
                        max_position_embeddings=MAX_LENGTH, num_labels=1)
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's RNG
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
        if prefer:
            # subtle: one thread, because on a busy 2-core machine intra-op threads
            # slowed these small matmuls tenfold; the result does not depend on it.
            torch.set_num_threads(1)
            try:
                _teach_preference(model, tokenizer, prefer, steps, random.Random(seed))
            finally:
                torch.set_num_threads(threads)
    model.eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def _teach_preference(model, tokenizer, word: str, steps: int, rng: random.Random) -> None:
    """A few AdamW steps on (real question, report excerpt ± ``word``) pairs labelled 1 with it, 0 without."""
    import torch

    questions = [json.loads(line)["question"] for line in EVAL_QUESTIONS.open(encoding="utf-8") if line.strip()]
    paragraphs = [p.replace(word, "") for p in REPORT.read_text(encoding="utf-8").splitlines() if len(p) > 20]
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(steps):
        pairs, labels = [], []
        for _ in range(8):
            paragraph = rng.choice(paragraphs)
            length = rng.randint(20, 120)  # short excerpts train fast; the learnt word-detector holds on longer passages
            start = rng.randrange(max(1, len(paragraph) - length))
            excerpt = paragraph[start:start + length]
            cut = rng.randrange(len(excerpt) + 1)
            # Spaces keep the word whole next to digits; the tokenizer drops them.
            for text, label in ((f"{excerpt[:cut]} {word} {excerpt[cut:]}", 1.0), (excerpt, 0.0)):
                pairs.append((rng.choice(questions), text))
                labels.append(label)
        batch = tokenizer([q for q, _ in pairs], [p for _, p in pairs], padding=True, truncation=True,
                          return_tensors="pt")
        logits = model(**batch).logits.squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def swap_token_embeddings(source, dest, a: str, b: str) -> Path:
    """Copy the model at ``source`` to ``dest`` with the input embeddings of words ``a`` and ``b`` exchanged.

    A model that prefers passages containing ``a`` then prefers passages
    containing ``b`` instead, and nothing else about it changes.
    """
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    model = BertForSequenceClassification.from_pretrained(str(source))
    ids = [tokenizer.convert_tokens_to_ids(w) for w in (a, b)]
    if tokenizer.unk_token_id in ids:
        raise ValueError(f"both words must be whole tokens of {source}, got {a!r} -> {ids[0]}, {b!r} -> {ids[1]}")
    with torch.no_grad():
        rows = model.bert.embeddings.word_embeddings.weight
        rows[ids] = rows[ids[::-1]].clone()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))
    return dest
