"""Load test (not a test): simulated citizens asking the running app on loopback.

Starts `reportqa serve` as its own process on a free 127.0.0.1 port (the
production queue settings), then N citizens (threads, each with its own gradio_client) ask
questions from the evaluation set through /ask for a bounded time. Reports
throughput, p50/p95 latency, errors and "busy" refusals; writes reports/load.json.

Run: .venv/bin/python bench/load.py --users 20 --users 50 --seconds 20
"""
from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import click  # noqa: E402

from core.stats import percentile  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def citizen(url: str, questions: list[str], deadline: float, offset: int, out: list, lock: threading.Lock) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False, analytics_enabled=False)
    i = offset
    while time.perf_counter() < deadline:
        question = questions[i % len(questions)]
        i += 1
        started = time.perf_counter()
        try:
            result = client.predict(question, api_name="/ask")
            outcome = "error" if "error" in result and "answer" not in result else "ok"
        except Exception as exc:  # a full queue or a failure: counted, never fatal to the run
            outcome = "busy" if "Queue is full" in str(exc) or "busy" in str(exc) else "error"
        with lock:
            out.append((outcome, (time.perf_counter() - started) * 1000))
    client.close()


@click.command()
@click.option("--users", "user_counts", type=int, multiple=True, default=(20, 50), show_default=True)
@click.option("--seconds", type=float, default=20.0, show_default=True, help="How long each level runs.")
def main(user_counts: tuple[int, ...], seconds: float) -> None:
    import subprocess
    import urllib.request

    questions = [json.loads(line)["question"] for line in (ROOT / "data/evals/qa.jsonl").open(encoding="utf-8")]
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen([sys.executable, "-m", "reportqa.cli", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):  # up to a minute for the index check and start-up
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    levels = []
    try:
        for users in user_counts:
            results: list = []
            lock = threading.Lock()
            deadline = time.perf_counter() + seconds
            threads = [threading.Thread(target=citizen, args=(url, questions, deadline, k * 7, results, lock))
                       for k in range(users)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=seconds + 120)
            elapsed = time.perf_counter() - started
            ok = sorted(ms for outcome, ms in results if outcome == "ok")
            level = {
                "users": users, "seconds": round(elapsed, 1), "answers": len(ok),
                "answers_per_s": round(len(ok) / elapsed, 1),
                "p50_ms": round(percentile(ok, 50), 1) if ok else None,
                "p95_ms": round(percentile(ok, 95), 1) if ok else None,
                "busy": sum(1 for o, _ in results if o == "busy"),
                "errors": sum(1 for o, _ in results if o == "error"),
            }
            levels.append(level)
            click.echo(json.dumps(level))
    finally:
        server.terminate()
        server.wait(timeout=30)
    (ROOT / "reports").mkdir(exist_ok=True)
    (ROOT / "reports" / "load.json").write_text(json.dumps(levels, indent=2) + "\n", encoding="utf-8")
    click.echo("| users | answers/s | p50 ms | p95 ms | busy | errors |\n|---|---|---|---|---|---|")
    for level in levels:
        click.echo(f"| {level['users']} | {level['answers_per_s']} | {level['p50_ms']} | {level['p95_ms']} | "
                   f"{level['busy']} | {level['errors']} |")


if __name__ == "__main__":
    main()
