"""Loading sentence-transformers models strictly offline, with errors that say how to fix it.

Shared by the embedder and the reranker: a hub name must already be in the
local Hugging Face cache, a folder must hold a model; nothing is downloaded.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, TypeVar

from .errors import ModelUnavailable

Model = TypeVar("Model")


def looks_like_path(ref: str) -> bool:
    """A folder reference (./m, /m, ~/m, a/b/c or anything that exists) rather than a hub name (org/name)."""
    return ref.startswith((".", "/", "~")) or Path(ref).expanduser().exists() or ref.count("/") > 1


def load_offline(ref: str, loader: Callable[[str], Model], unavailable: Callable[[str], ModelUnavailable]) -> Model:
    """``loader(name_or_folder)`` with local files only; any failure becomes ``unavailable(why)``."""
    path = Path(ref).expanduser()
    is_path = looks_like_path(ref)
    if is_path and not path.is_dir():
        raise unavailable(f"there is no model folder at {path}")
    try:
        return loader(str(path) if is_path else ref)
    except Exception as exc:  # the libraries raise OSError, ValueError or Hugging Face errors
        detail = str(exc).splitlines()[0] if str(exc) else "no detail"
        where = f"the folder {path}" if is_path else "the local Hugging Face cache"
        raise unavailable(f"it is not in {where} ({type(exc).__name__}: {detail})") from None


def unavailable(kind: str, ref: str, why: str, env_var: str, example: str, without: str, message_zh: str) -> ModelUnavailable:
    """The error for a model that cannot be loaded offline: what, why, and how to copy one here."""
    name = example if ref.startswith((".", "/", "~")) else ref
    fetch = f" (on a machine with network: `hf download {name} --local-dir ./models/{name.split('/')[-1]}`)"
    return ModelUnavailable(
        f"{kind} {ref!r} is not available offline: {why}. This machine does not download models. "
        f"Copy the model folder here{fetch} and set {env_var}=/path/to/that/folder, or unset {env_var} {without}.",
        message_zh,
    )


class LazyOfflineModel:
    """A model loaded on first use, once, under a lock; subclasses define ``_load_offline``."""

    def __init__(self) -> None:
        self._model = None
        self._lock = threading.Lock()

    def _load_offline(self):
        raise NotImplementedError

    def _load(self):
        with self._lock:
            if self._model is None:
                self._model = self._load_offline()
        return self._model

