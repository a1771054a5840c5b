"""Load test (not a test): simulated clients asking the running server on loopback, REST beside Gradio's /ask.

1. Measures what one answer costs alone, in a process of its own (`ReportQA.ask`
   over the evaluation questions, one at a time: wall and CPU time), and from it
   the machine's limit: cores ÷ CPU time of an answer.
2. Starts `reportqa serve` as its own process on a free 127.0.0.1 port (the
   production settings, except the per-address rate limit, which would count
   every simulated client as the one address 127.0.0.1).
3. For each door and number of clients, runs the clients for a bounded time:
   asyncio clients (aiohttp, one connection each) in separate processes of at
   most --per-process clients, so the load generator costs little of the 2
   cores it shares with the server. A client asks an evaluation question, waits
   for the whole answer, and asks the next at once; after a 503 it waits what
   Retry-After says (1 s for Gradio's, which sends none).
   - ``gradio``: Gradio's /ask through its call API (POST /gradio_api/call/ask,
     then the result's event stream), through Gradio's queue;
   - ``rest``: POST /api/v1/ask.

Writes reports/load.json and the "load" key of reports/bench.json, and prints
the README table.

Run: .venv/bin/python bench/load.py                      (50 and 150 clients, 20 s each door and level)
     .venv/bin/python bench/load.py --users 50 --seconds 10 --door rest
"""
from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import click  # noqa: E402

from core.stats import percentile  # noqa: E402

DOORS = ("gradio", "rest")
ASK = {"gradio": "gradio_api/call/ask", "rest": "api/v1/ask"}
REQUEST_TIMEOUT_S = 120
COST_CHILD = ("import json, sys; sys.path.insert(0, sys.argv[1]); from bench.load import answer_cost; "
              "print(json.dumps(answer_cost()))")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _questions() -> list[str]:
    return [json.loads(line)["question"] for line in (ROOT / "data/evals/qa.jsonl").open(encoding="utf-8")]


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------- what one answer costs alone

def answer_cost() -> dict:
    """Answer every evaluation question once, one at a time, in this (fresh) process: wall and CPU ms each."""
    from reportqa.runtime import prepare_process

    prepare_process()
    from reportqa.service import ReportQA

    qa = ReportQA()
    qa.load()
    questions = _questions()
    for question in questions[:20]:
        qa.ask(question)  # warm: jieba, the first allocations
    wall, cpu = [], []
    for question in questions:
        w, c = time.perf_counter(), time.process_time()
        qa.ask(question)
        wall.append((time.perf_counter() - w) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {"questions": len(questions), "wall_ms_mean": round(sum(wall) / len(wall), 1),
            "wall_ms_p50": round(percentile(wall, 50), 1), "cpu_ms_mean": round(sum(cpu) / len(cpu), 1)}


# ---------------------------------------------------------------- the clients

async def _ask_rest(session, base: str, question: str) -> tuple[str, float | None]:
    async with session.post(base + ASK["rest"], json={"question": question}) as reply:
        body = await reply.read()
        if reply.status == 200 and b'"answer"' in body:
            return "ok", None
        if reply.status == 503:
            return "busy", float(reply.headers.get("Retry-After", "1"))
        return f"error {reply.status}", None


async def _ask_gradio(session, base: str, question: str) -> tuple[str, float | None]:
    async with session.post(base + ASK["gradio"], json={"data": [question, "", "", None]}) as reply:
        if reply.status == 503:
            await reply.read()
            return "busy", 1.0
        if reply.status != 200:
            return f"error {reply.status}", None
        event_id = (await reply.json())["event_id"]
    async with session.get(f"{base}{ASK['gradio']}/{event_id}") as stream:
        event = None
        async for raw in stream.content:
            line = raw.decode("utf-8").strip()
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = json.loads(line[5:])
                if event == "complete" and isinstance(data, list) and "answer" in data[0]:
                    return "ok", None
                return "busy" if "busy" in json.dumps(data) else f"error {event}", 1.0
    return "error no result", None


async def _clients(door: str, base: str, clients: int, offset: int, start_at: float, seconds: float) -> list:
    import aiohttp

    questions = _questions()
    deadline = start_at + seconds
    ask = _ask_rest if door == "rest" else _ask_gradio
    records: list = []

    async def client(k: int) -> None:
        connector = aiohttp.TCPConnector(limit=1, force_close=False)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            i = (offset + k) * 7
            await asyncio.sleep(max(0.0, start_at - time.time()) + 0.01 * k)  # start together, spread by 10 ms
            while time.time() < deadline:
                question = questions[i % len(questions)]
                i += 1
                started = time.perf_counter()
                try:
                    outcome, wait_s = await ask(session, base, question)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    outcome, wait_s = f"error {type(exc).__name__}", None
                records.append((outcome, (time.perf_counter() - started) * 1000, time.time()))
                if wait_s:
                    await asyncio.sleep(min(wait_s, max(0.0, deadline - time.time())))

    await asyncio.gather(*(client(k) for k in range(clients)))
    return records


def _client_process(door: str, base: str, clients: int, offset: int, start_at: float, seconds: float, out) -> None:
    out.put(asyncio.run(_clients(door, base, clients, offset, start_at, seconds)))


def run_level(door: str, base: str, users: int, seconds: float, per_process: int) -> dict:
    """``users`` clients on ``door`` for ``seconds``; their answers, latencies, 503s and errors."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    processes = math.ceil(users / per_process)
    sizes = [users // processes + (1 if p < users % processes else 0) for p in range(processes)]
    start_at = time.time() + 3.0  # time for the processes to start and import
    workers = [context.Process(target=_client_process, args=(door, base, n, sum(sizes[:p]), start_at, seconds, out))
               for p, n in enumerate(sizes)]
    load_before = _load_average()
    for w in workers:
        w.start()
    records = [r for _ in workers for r in out.get(timeout=seconds + REQUEST_TIMEOUT_S + 60)]
    for w in workers:
        w.join(30)
    ok = sorted(ms for outcome, ms, _ in records if outcome == "ok")
    busy = sorted(ms for outcome, ms, _ in records if outcome == "busy")
    errors = [outcome for outcome, _, _ in records if outcome not in ("ok", "busy")]
    # Throughput over the window: answers finished by its end (those still running then are not counted).
    in_window = sum(1 for outcome, _, done in records if outcome == "ok" and done <= start_at + seconds)
    return {
        "door": door, "users": users, "client_processes": processes, "seconds": seconds,
        "answers": len(ok), "answers_per_s": round(in_window / seconds, 1),
        "p50_ms": round(percentile(ok, 50), 1) if ok else None,
        "p95_ms": round(percentile(ok, 95), 1) if ok else None,
        "max_ms": round(ok[-1], 1) if ok else None,
        "busy": len(busy), "busy_p95_ms": round(percentile(busy, 95), 1) if busy else None,
        "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
        "longest_wait_ms": round(max(ms for _, ms, _ in records), 1) if records else None,
        "load_average_before": load_before,
    }


def _wait_until_idle(base: str, timeout_s: float = 120) -> None:
    """Until the server has no REST answer running or waiting (the levels do not overlap)."""
    import urllib.request

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            answers = json.load(urllib.request.urlopen(base + "api/v1/health", timeout=5))["answers"]
            if answers["running"] == 0 and answers["waiting"] == 0:
                break
        except OSError:
            pass
        time.sleep(0.5)
    time.sleep(2.0)  # and Gradio's queue drains


def _serve(port: int) -> subprocess.Popen:
    import urllib.request

    env = {**os.environ, "REPORTQA_RATE_LIMIT_PER_MINUTE": "0"}
    server = subprocess.Popen([sys.executable, "-m", "reportqa.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(1200):  # up to two minutes for the index check and start-up
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"the server did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not answer /api/v1/health within two minutes")


def markdown(result: dict) -> str:
    lines = ["| door | clients | answers/s | p50 | p95 | slowest answer | 503 (p95 time to it) | errors | longest wait |",
             "|---|---|---|---|---|---|---|---|---|"]
    for level in result["levels"]:
        busy = f"{level['busy']} ({level['busy_p95_ms'] / 1000:.2f} s)" if level["busy"] else "0"
        name = "Gradio `/ask`" if level["door"] == "gradio" else "REST `/api/v1/ask`"
        seconds = (lambda ms: f"{ms / 1000:.2f} s" if ms is not None else "–")
        lines.append(f"| {name} | {level['users']} | {level['answers_per_s']} | {seconds(level['p50_ms'])} | "
                     f"{seconds(level['p95_ms'])} | {seconds(level['max_ms'])} | {busy} | {level['errors']} | "
                     f"{seconds(level['longest_wait_ms'])} |")
    return "\n".join(lines)


@click.command()
@click.option("--users", "user_counts", type=int, multiple=True, default=(50, 150), show_default=True)
@click.option("--seconds", type=float, default=20.0, show_default=True, help="How long each door and level runs.")
@click.option("--door", "doors", type=click.Choice(DOORS), multiple=True, default=DOORS, show_default=True)
@click.option("--per-process", type=int, default=50, show_default=True, help="Clients per client process.")
def main(user_counts: tuple[int, ...], seconds: float, doors: tuple[str, ...], per_process: int) -> None:
    from reportqa.config import cpu_cores

    cores = cpu_cores()
    click.echo(f"load average before: {_load_average()}", err=True)
    alone = subprocess.run([sys.executable, "-c", COST_CHILD, str(ROOT)], cwd=ROOT, capture_output=True, text=True,
                           check=True)  # a process of its own: nothing else of this run competes with it
    cost = json.loads(alone.stdout.splitlines()[-1])
    limit = round(cores / (cost["cpu_ms_mean"] / 1000), 1)
    click.echo(f"one answer alone: {cost}; machine limit {cores} cores / {cost['cpu_ms_mean']} ms = {limit}/s",
               err=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}/"
    server = _serve(port)
    levels = []
    try:
        for users in user_counts:
            for door in doors:
                _wait_until_idle(base)
                level = run_level(door, base, users, seconds, per_process)
                levels.append(level)
                click.echo(json.dumps(level, ensure_ascii=False), err=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    by = {(level["door"], level["users"]): level for level in levels}
    ratios = {}
    for users in user_counts:
        rest, gradio = by.get(("rest", users)), by.get(("gradio", users))
        if rest and gradio and gradio["answers_per_s"]:
            ratios[f"rest_over_gradio_at_{users}"] = round(rest["answers_per_s"] / gradio["answers_per_s"], 2)
        if rest:
            ratios[f"rest_over_machine_limit_at_{users}"] = round(rest["answers_per_s"] / limit, 2)
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M"), "cores": cores, "load_average_after": _load_average(),
        "answer_alone": cost, "machine_limit_answers_per_s": limit, "ratios": ratios, "levels": levels,
    }
    (ROOT / "reports").mkdir(exist_ok=True)
    (ROOT / "reports" / "load.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
    bench = ROOT / "reports" / "bench.json"
    numbers = json.loads(bench.read_text(encoding="utf-8")) if bench.exists() else {}
    numbers["load"] = {k: result[k] for k in ("when", "cores", "answer_alone", "machine_limit_answers_per_s",
                                              "ratios")} | {"levels": [
        {k: level[k] for k in ("door", "users", "answers_per_s", "p50_ms", "p95_ms", "busy", "errors",
                               "longest_wait_ms")} for level in levels]}
    bench.write_text(json.dumps(numbers, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(markdown(result))
    click.echo(json.dumps(ratios))


if __name__ == "__main__":
    main()
