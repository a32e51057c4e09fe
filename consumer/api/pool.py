"""The HTTP API's processing threads: a bounded pool, one anonymizer (and so one detector) per thread and
preset, and a bounded queue before them.

A request's work is queued only while fewer than `queue_depth` wait; past that
it is refused at once (`AtCapacity`: 503 with Retry-After) instead of piling up
and answering late. Work still waiting when its deadline passes, or whose
client went away, is dropped unstarted (`DeadlinePassed`). Work under way is
not interrupted: the pipeline holds no lock a late answer could leave behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from consumer.detection.strategy import Preset
from consumer.errors import SetupError
from consumer.processing.pipeline import Anonymizer
from schemas import ModelInfo

log = logging.getLogger(__name__)
T = TypeVar("T")


class AtCapacity(Exception):
    """Every thread is busy and the queue is full."""


class DeadlinePassed(Exception):
    """The request's deadline passed before its work could finish."""


class Bench:
    """One processing thread's anonymizers, built on first use of each preset. Never shared."""

    def __init__(self, build: Callable[[Preset], Anonymizer], default: Preset) -> None:
        self._build = build
        self._anonymizers: dict[Preset, Anonymizer] = {}
        self.model = self.anonymizer(default).detector.info  # its models load before the thread reports ready

    def anonymizer(self, preset: Preset) -> Anonymizer:
        if preset not in self._anonymizers:
            self._anonymizers[preset] = self._build(preset)
        return self._anonymizers[preset]

    def close(self) -> None:
        for anonymizer in self._anonymizers.values():
            anonymizer.detector.close()
        self._anonymizers.clear()


@dataclass
class Job(Generic[T]):
    work: Callable[[Bench], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop
    deadline: float  # time.monotonic()
    started: bool = False  # a thread took it
    abandoned: bool = False  # its request stopped waiting (deadline, or the client went away)

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        def resolve() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the event loop is closed: nobody is waiting any more
            self.loop.call_soon_threadsafe(resolve)


@dataclass
class PoolState:
    """How many requests wait and how many are being worked on (read by the metrics)."""

    queued: int = 0
    busy: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class RequestPool:
    """`threads` processing threads, each with its own `Bench`, behind a queue of at most `queue_depth`."""

    def __init__(self, threads: int, queue_depth: int, open_bench: Callable[[], Bench]) -> None:
        self.threads = threads
        self._queue: queue.Queue[Job[Any] | None] = queue.Queue()
        self._queue_depth = queue_depth
        self._open_bench = open_bench
        self.state = PoolState()
        self._ready = threading.Semaphore(0)
        self._failure: BaseException | None = None
        self.model: ModelInfo | None = None  # what the default preset runs, once a thread loaded it
        self._threads = [
            threading.Thread(target=self._serve, name=f"http-processing-{n}", daemon=True) for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def wait_ready(self) -> None:
        """Block until every thread has loaded its models. Raises SetupError when one could not."""
        for _ in self._threads:
            self._ready.acquire()
        if self._failure is not None:
            self.close()
            if isinstance(self._failure, SetupError):
                raise self._failure
            raise SetupError(f"a processing thread could not start: {self._failure!r}") from self._failure

    async def run(self, work: Callable[[Bench], T], timeout_s: float) -> T:
        """`work` run on a processing thread with its bench. Raises AtCapacity when the queue is full,
        DeadlinePassed after `timeout_s`, and whatever `work` raises."""
        loop = asyncio.get_running_loop()
        job: Job[T] = Job(work, loop.create_future(), loop, time.monotonic() + timeout_s)
        with self.state.lock:
            idle = self.threads - self.state.busy
            if self.state.queued >= self._queue_depth + max(0, idle):
                raise AtCapacity
            self.state.queued += 1
            self._queue.put_nowait(job)
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout_s)
        except TimeoutError:
            self._abandon(job)
            raise DeadlinePassed from None
        except asyncio.CancelledError:  # the client went away
            self._abandon(job)
            raise

    def _abandon(self, job: Job[Any]) -> None:
        """Its request stopped waiting: work not started gives its place in the queue back at once (a thread
        that takes it later drops it); work under way finishes, unheard."""
        with self.state.lock:
            job.abandoned = True
            if not job.started:
                self.state.queued -= 1

    def close(self) -> None:
        """Let the threads finish the work queued, then stop them."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        try:
            bench = self._open_bench()
        except BaseException as exc:  # reported by wait_ready
            self._failure = exc
            self._ready.release()
            return
        self.model = bench.model
        self._ready.release()
        try:
            while (job := self._queue.get()) is not None:
                with self.state.lock:
                    if job.abandoned:  # its place in the queue was given back when its request gave up
                        continue
                    job.started = True
                    self.state.queued -= 1
                    self.state.busy += 1
                try:
                    self._work(bench, job)
                finally:
                    with self.state.lock:
                        self.state.busy -= 1
        finally:
            bench.close()

    def _work(self, bench: Bench, job: Job[Any]) -> None:
        if time.monotonic() > job.deadline:  # its request is about to hear DeadlinePassed: not worth starting
            job.settle(error=DeadlinePassed())
            return
        try:
            result = job.work(bench)
        except Exception as exc:  # answered to its request: a problem document, or 500 for a bug
            job.settle(error=exc)
        else:
            job.settle(result)
