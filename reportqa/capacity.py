"""How much the server answers at once, and from whom: the answer pool, its queue and the per-address rate limit.

An answer is ~25 ms of CPU, most of it the embedding model's C code, which
runs outside Python's GIL; so a few threads keep every core busy and more only
make each answer slower. ``AnswerSlots`` caps the answers computed at once at
the number of cores, for every door (REST, the page, the staff evaluation);
``AnswerPool`` runs REST questions on that many threads, keeps at most
``queue`` more waiting and turns the next one away at once (``Busy``: HTTP 503
with Retry-After) instead of letting it hang. It also turns a question away at
once when the answers ahead of it would keep it waiting longer than half its
timeout (their number ÷ workers × the moving average of one answer's time):
on a slow or busy machine a client learns at once to come back, rather than
after waiting out the timeout. ``RateLimiter`` is a token bucket per client
address.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Busy(Exception):
    """Too many questions are waiting (or one waited too long): try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: int):
        super().__init__(f"busy; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class AnswerSlots:
    """At most ``workers`` answers computed at once, in whichever thread asks (a counting semaphore)."""

    def __init__(self, workers: int):
        if workers <= 0:
            raise ValueError(f"workers must be > 0, got {workers}")
        self.workers = workers
        self._semaphore = threading.BoundedSemaphore(workers)

    def __enter__(self) -> "AnswerSlots":
        self._semaphore.acquire()
        return self

    def __exit__(self, *_exc) -> None:
        self._semaphore.release()


class SlottedService:
    """The service (reportqa.service.ReportQA) with each answer computed inside one of ``slots``; everything
    else is the service's own.

    A streamed answer holds a slot for each step only (the extractive answer is
    one step; an LLM's reply one step a token), so a reader who walks away
    mid-stream leaks nothing.
    """

    def __init__(self, qa, slots: AnswerSlots):
        self._qa = qa
        self.slots = slots

    def __getattr__(self, name: str) -> Any:
        return getattr(self._qa, name)

    def ask(self, *args, **kwargs):
        with self.slots:
            return self._qa.ask(*args, **kwargs)

    def ask_stream(self, *args, **kwargs) -> Iterator:
        events = self._qa.ask_stream(*args, **kwargs)
        try:
            while True:
                with self.slots:
                    try:
                        event = next(events)
                    except StopIteration:
                        return
                yield event
        finally:
            events.close()


class AnswerPool:
    """REST questions: ``workers`` threads computing, at most ``queue`` more waiting, the rest turned away.

    ``run`` is called from the event loop; admission is counted there, so the
    count needs no lock. A question still waiting for a thread when
    ``queue_timeout_s`` is up is turned away then (``Busy``), and never computed.
    """

    def __init__(self, workers: int, queue: int, queue_timeout_s: float, clock: Callable[[], float] = time.monotonic,
                 answer_s: float = 0.03):
        if workers <= 0 or queue < 0 or queue_timeout_s <= 0:
            raise ValueError(f"need workers > 0, queue >= 0, queue_timeout_s > 0; got {workers}, {queue}, "
                             f"{queue_timeout_s}")
        self.workers, self.capacity, self.queue_timeout_s = workers, workers + queue, queue_timeout_s
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="reportqa-answer")
        self._clock = clock
        self.admitted = 0  # running + waiting
        self.running = 0
        self._answer_s = answer_s  # moving average of one answer's time in a thread: Retry-After, admission

    @property
    def waiting(self) -> int:
        return max(self.admitted - self.running, 0)

    def retry_after_s(self) -> int:
        """Seconds until the questions now admitted are likely done: a client asking again then gets in."""
        return max(1, math.ceil(self.admitted * self._answer_s / self.workers))

    def expected_wait_s(self) -> float:
        """How long one more question would likely wait for a thread: with every thread taken, that many answers
        (of the average time) must finish first, ``workers`` at a time."""
        return max(0, self.admitted + 1 - self.workers) / self.workers * self._answer_s

    def admit(self) -> None:
        """Take a place in the queue, or raise Busy at once: when the queue is full, or when the questions
        ahead would keep this one waiting more than half the queue timeout."""
        if self.admitted >= self.capacity or self.expected_wait_s() > self.queue_timeout_s / 2:
            raise Busy(self.retry_after_s())
        self.admitted += 1

    def release(self) -> None:
        self.admitted -= 1

    async def run(self, work: Callable[[], T], admitted: bool = False) -> T:
        """``work()`` on a pool thread, awaited; Busy when the queue is full or the wait too long.

        ``admitted``: the caller has already called ``admit`` and will ``release``.
        """
        if not admitted:
            self.admit()
        queued_at = self._clock()
        loop = asyncio.get_running_loop()
        state = {"started": False, "expired": False}
        claim = threading.Lock()  # the worker starting it and the timer giving up on it: exactly one wins

        def job() -> T:
            started = self._clock()
            with claim:
                if state["expired"] or started - queued_at > self.queue_timeout_s:
                    state["expired"] = True
                    raise Busy(self.retry_after_s())
                state["started"] = True
            loop.call_soon_threadsafe(self._started)
            try:
                return work()
            finally:
                loop.call_soon_threadsafe(self._finished, self._clock() - started)

        try:
            future = loop.run_in_executor(self._executor, job)
            try:  # turned away when its wait reaches the timeout, not later when a worker gets to it
                return await asyncio.wait_for(asyncio.shield(future), self.queue_timeout_s)
            except asyncio.TimeoutError:
                with claim:
                    state["expired"] = not state["started"]
                if state["expired"]:
                    future.cancel()
                    raise Busy(self.retry_after_s()) from None
                return await future  # it started in time: its answer is on the way
        finally:
            if not admitted:
                self.release()

    def _started(self) -> None:
        self.running += 1

    def _finished(self, seconds: float) -> None:
        self.running -= 1
        self._answer_s = 0.9 * self._answer_s + 0.1 * seconds

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class RateLimiter:
    """A token bucket per client address: ``burst`` questions at once, then ``per_minute`` a minute.

    Idle addresses are forgotten once their bucket is full again, so the table
    holds only clients seen in the last ``burst / rate`` seconds (at most
    ``max_clients``; past that the longest idle go first).
    """

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 100_000):
        if per_minute < 0 or burst <= 0:
            raise ValueError(f"need per_minute >= 0 and burst > 0, got {per_minute}, {burst}")
        self.per_minute, self.burst = per_minute, burst
        self._rate = per_minute / 60.0
        self._clock, self._max_clients = clock, max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when counted)
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, client: str) -> float:
        """Spend one token of ``client``'s bucket: 0.0 when allowed, else the seconds until one is there."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            if now >= self._next_sweep or len(self._buckets) >= self._max_clients:
                self._sweep(now)
            tokens, then = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self._rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self._rate

    def _sweep(self, now: float) -> None:
        refill_s = self.burst / self._rate
        self._buckets = {c: b for c, b in self._buckets.items() if now - b[1] < refill_s}
        if len(self._buckets) >= self._max_clients:  # a flood of addresses: keep the most recent half
            recent = sorted(self._buckets.items(), key=lambda item: item[1][1])[len(self._buckets) // 2:]
            self._buckets = dict(recent)
        self._next_sweep = now + min(refill_s, 60.0)


__all__ = ["AnswerPool", "AnswerSlots", "Busy", "RateLimiter", "SlottedService"]
