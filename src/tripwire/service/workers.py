"""Extraction of uploads in long-lived worker processes, each item under the per-item deadline.

Decoders run untrusted bytes; one that spins inside C code ignores signals and cannot be stopped from its
own thread. ``POST /v1/scan`` therefore never decodes in a request thread: uploads are extracted by worker
processes of :class:`tripwire.pipeline.pool.WorkerPool` (the pool ``tripwire scan`` uses), which kills a
worker that spends longer than the deadline on one item, records a ``timeout`` for that item (the rest of an
archive is re-sent to a fresh worker) and starts a replacement. The request then completes with that record.

A :class:`WorkerPool` is batch-shaped (``run`` takes an iterator of tasks and ends when it is exhausted), so
each dispatcher thread here owns a pool of ONE process and feeds it from a shared queue: with one process, the
pool asks for the next task only when that process is idle, so waiting on the queue there never delays the
deadline checks of a busy worker. The processes start with the first upload and live until the service stops,
so no request pays the seconds a fresh worker spends importing.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

from ..config import Config
from ..errors import ItemError
from ..pipeline.pool import WorkerPool
from ..pipeline.worker import Task, new_record
from ..records import RawRecord

log = logging.getLogger(__name__)


@dataclass
class _Job:
    task: Task
    raws: list[RawRecord] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class ExtractionPool:
    """``size`` worker processes shared by all requests; :meth:`extract` is thread-safe and blocking."""

    def __init__(self, config: Config, size: int, item_timeout_s: float | None = None) -> None:
        if item_timeout_s is not None:
            config = dataclasses.replace(config, limits=dataclasses.replace(config.limits, item_timeout_s=float(item_timeout_s)))
        self.config = config
        self.size = max(1, size)
        self.item_timeout_s = config.limits.item_timeout_s
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._ids = itertools.count()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start the dispatchers and their worker processes (done by the first :meth:`extract` otherwise)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the extraction pool is closed")
            if self._threads:
                return
            for n in range(self.size):
                t = threading.Thread(target=self._dispatch, name=f"tripwire-extract-{n}", daemon=True)
                t.start()
                self._threads.append(t)

    def extract(self, path: str) -> list[RawRecord]:
        """Raw records of the file at ``path`` (several for an archive), as a scan worker produces them; an item
        that overruns the deadline is a record with the error ``timeout``."""
        self.start()
        job = _Job(Task(next(self._ids), path))
        self._queue.put(job)
        job.done.wait()
        return job.raws

    def close(self, timeout: float = 5.0) -> None:
        """Let queued jobs finish, then stop the dispatchers and their processes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    def _dispatch(self) -> None:
        while True:
            current: list[_Job] = []

            def tasks() -> Iterator[Task]:
                while True:
                    job = self._queue.get()
                    if job is None:
                        return
                    current[:] = [job]
                    yield job.task

            pool = WorkerPool(1, self.config)
            try:
                for kind, task_id, payload in pool.run(tasks()):
                    job = current[0] if current else None
                    if job is None or task_id != job.task.id:  # cannot happen with one process; never misroute
                        log.error("extraction event for unknown task %s dropped", task_id)
                        continue
                    if kind == "record":
                        job.raws.append(payload)
                    elif kind == "done":
                        current.clear()
                        job.done.set()
                return  # the queue was closed
            except Exception as exc:  # a broken pipe in the pool itself: fail the job, start a fresh pool
                log.exception("extraction dispatcher failed; restarting it")
                for job in current:
                    job.raws.append(new_record(job.task.path, job.task.path, error=ItemError(
                        "worker_crashed", f"extraction failed: {exc.__class__.__name__}: {exc}")))
                    job.done.set()
