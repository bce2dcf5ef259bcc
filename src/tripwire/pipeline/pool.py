"""A pool of worker processes with a per-item deadline.

``concurrent.futures`` cannot stop one stuck task: a decoder spinning inside C code ignores signals and a
killed worker breaks the whole executor. This pool keeps one pipe per worker, watches the time since each
worker last announced an item, kills a worker that overruns, records a ``timeout`` (or ``worker_crashed``)
for the item it was on, and re-sends the rest of that source to a fresh worker.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Iterator

from ..config import Config
from ..errors import ItemError
from .worker import ExtractorFactory, Message, Task, new_record, worker_main

Event = Message
#: an event the task iterator hands through the pool unchanged, in its place among the tasks: ("passed", -1, payload)
Passed = tuple[str, int, Any]
#: how long a new worker may take to start (imports) before its first "start" message
STARTUP_GRACE_S = 120.0
#: the thread-count variables of the BLAS libraries numpy may use
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class _Worker:
    proc: Any
    conn: Any
    task: Task | None = None
    current: str | None = None
    deadline: float = 0.0
    received: set[str] = field(default_factory=set)
    #: a fresh process spends seconds importing before its first item: that is not the item's time
    started: bool = False


class WorkerPool:
    """Run tasks on ``size`` processes; yields ("record", task_id, record) and ("done", task_id, None).

    The task iterator may also yield :data:`Passed` events (a source known done, an error source): they are
    yielded as they are met, so an iterator that yields few tasks is still consumed lazily.
    """

    def __init__(self, size: int, config: Config, extractors: ExtractorFactory | None = None) -> None:
        self.size = max(1, size)
        self.config = config
        self.extractors = extractors
        self.timeout = config.limits.item_timeout_s
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        #: released workers (told to exit), reaped by :meth:`close`
        self._exiting: list[_Worker] = []

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=worker_main, args=(child, self.config, self.extractors), daemon=True,
                                 name="tripwire-worker")
        # one BLAS thread per worker (the pool already uses every core): the child reads this at its numpy import
        saved = {var: os.environ.get(var) for var in _BLAS_THREADS}
        for var in _BLAS_THREADS:
            os.environ.setdefault(var, "1")
        try:
            proc.start()
        finally:
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
        child.close()
        return _Worker(proc, parent)

    def start(self) -> None:
        """Spawn the workers now (idempotent): a fresh worker spends ~1 s importing, which then overlaps
        whatever the caller does before :meth:`run` (opening the database, walking the inputs)."""
        if not self._workers:
            self._workers = [self._spawn() for _ in range(self.size)]

    def release(self) -> None:
        """Tell every worker to exit, without waiting: after a finished run they wind down (a process exit takes
        tens of ms) while the caller stores, clusters and writes reports; :meth:`close` reaps them."""
        for w in self._workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        self._exiting += self._workers
        self._workers = []

    def close(self) -> None:
        self.release()
        for w in self._exiting:
            w.proc.join(timeout=2)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()
        self._exiting = []

    def _fail(self, w: _Worker, code: str, message: str, requeue: deque[Task]) -> Iterator[Event]:
        """The worker is dead or killed: record its current item, re-queue the rest of its source."""
        task = w.task
        assert task is not None
        hung = w.current or task.path
        yield ("record", task.id, new_record(hung, task.path, error=ItemError(code, message)))
        if hung != task.path:  # inside an archive: the other members still need processing
            requeue.appendleft(Task(task.id, task.path, task.skip | frozenset(w.received) | {hung}))
        else:
            yield ("done", task.id, None)
        try:
            w.proc.kill()
        except OSError:
            pass
        w.proc.join()
        w.conn.close()
        self._workers[self._workers.index(w)] = self._spawn()

    def run(self, tasks: Iterator[Task | Passed]) -> Iterator[Event]:
        self.start()
        requeue: deque[Task] = deque()
        exhausted = False
        try:
            while True:
                for w in self._workers:
                    if w.task is not None:
                        continue
                    task = requeue.popleft() if requeue else None
                    while task is None and not exhausted:
                        got = next(tasks, None)
                        exhausted = got is None
                        if isinstance(got, tuple):
                            yield got
                        else:
                            task = got
                    if task is None:
                        break
                    w.task, w.current, w.received = task, None, set()
                    w.deadline = time.monotonic() + self.timeout + (0.0 if w.started else STARTUP_GRACE_S)
                    w.conn.send(task)
                busy = [w for w in self._workers if w.task is not None]
                if not busy:
                    return
                now = time.monotonic()
                wait_s = max(0.0, min(0.5, min(w.deadline for w in busy) - now))
                ready = set(wait([w.conn for w in busy], timeout=wait_s))
                for w in busy:
                    if w.conn not in ready:
                        continue
                    try:
                        while w.conn.poll():
                            kind, task_id, payload = w.conn.recv()
                            w.started = True
                            if kind == "start":
                                w.current = payload
                                w.deadline = time.monotonic() + self.timeout
                            elif kind == "record":
                                w.received.add(payload["path"])
                                yield ("record", task_id, payload)
                            elif kind == "done":
                                w.task = None
                                yield ("done", task_id, None)
                                break
                    except (EOFError, OSError):
                        code = w.proc.exitcode
                        yield from self._fail(w, "worker_crashed", f"worker process died (exit code {code}) while processing this item", requeue)
                now = time.monotonic()
                for w in list(self._workers):
                    if w.task is not None and now > w.deadline:
                        yield from self._fail(w, "timeout", f"no result within {self.timeout:g} s: worker killed", requeue)
        except BaseException:  # interrupted, or the caller stopped early: the workers go now
            self.close()
            raise
        finally:
            self.release()  # every task done: they exit by themselves (a no-op after close)
