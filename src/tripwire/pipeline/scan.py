"""``tripwire scan``: walk the inputs, skip what a previous run finished, extract in workers, store, report.

Workers run the pipeline's extraction half; this process runs its stage half (matching, triage, policy) and
stores items, sources and review-queue entries (:class:`~.pipeline.Pipeline`).

Exactly-once: a source's items and the marker saying the source is finished are committed together, so a
run killed at any moment (SIGKILL included) leaves each source either wholly stored or not at all, and the
same command afterwards processes precisely the sources that are missing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..config import Config
from ..errors import UsageError
from ..media.walk import Source, walk
from ..progress import ScanProgress
from ..records import RawRecord
from ..report.writer import Summary, write_reports
from ..store import queries
from ..store.db import Database, path_key
from .pipeline import Batch, Pipeline
from .pool import WorkerPool
from .worker import Task, new_record

#: commit at least this often (seconds) and at most this many items per transaction: a kill loses at most
#: ~0.1 s of finished work, and at the parent's ceiling (~5,000 items/s) a commit still carries ~500 items
COMMIT_INTERVAL_S = 0.1
COMMIT_MAX_ITEMS = 500


@dataclass
class ScanResult:
    case: str
    sources_total: int
    sources_skipped: int
    items_written: int
    summary: Summary | None
    seconds: float


class _Committer:
    """Buffers finished sources and commits them in batches (one transaction per batch)."""

    def __init__(self, db: Database, case_id: int, pipeline: Pipeline) -> None:
        self.db, self.case_id, self.pipeline = db, case_id, pipeline
        self.batch: Batch = []
        self.pending_items = 0
        self.last = time.monotonic()
        self.written = 0

    def add(self, source: str, raws: list[RawRecord]) -> None:
        rows = self.pipeline.finish(raws)
        self.batch.append((source, rows))
        self.pending_items += len(rows)
        if self.pending_items >= COMMIT_MAX_ITEMS or time.monotonic() - self.last >= COMMIT_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            self.pipeline.store(self.db, self.case_id, self.batch)
            self.written += self.pending_items
        self.batch, self.pending_items, self.last = [], 0, time.monotonic()


def _unique(sources: Iterable[Source]) -> Iterator[Source]:
    seen: set[str] = set()
    for s in sources:
        if s.path not in seen:
            seen.add(s.path)
            yield s


def read_path_list(stream: Iterable[str]) -> list[str]:
    """Paths from a newline-separated list (``tripwire scan -``); blank lines are ignored."""
    return [line.rstrip("\r\n") for line in stream if line.strip()]


def worker_pool(config: Config, workers: int | None = None) -> WorkerPool:
    """The pool :func:`run_scan` extracts in (``workers`` processes, default one per core); started early by a
    caller that has other set-up to do meanwhile (see :meth:`WorkerPool.start`)."""
    return WorkerPool(workers or os.cpu_count() or 1, config)


def run_scan(paths: list[str], db: Database, case: str, out: str | Path | None, config: Config,
             workers: int | None = None, quiet: bool = False, pool: WorkerPool | None = None) -> ScanResult:
    """Scan ``paths`` into ``case``; ``pool`` (from :func:`worker_pool`, closed here) or one of ``workers``."""
    if not paths:
        raise UsageError("nothing to scan: give at least one path (or - to read paths from stdin)")
    started = time.monotonic()
    case_id = db.case_id(case)
    sources = list(_unique(walk(paths)))
    done = queries.done_sources(db, case_id)
    pending = [s for s in sources if path_key(s.path) not in done]
    committer = _Committer(db, case_id, Pipeline.from_config(config, db))
    progress = ScanProgress(len(pending), quiet=quiet)
    try:
        for source in pending:
            if source.error is not None:
                committer.add(source.path, [new_record(source.path, source.path, error=source.error)])
                progress.item()
                progress.source_done()
        files = [s for s in pending if s.error is None]
        if files:
            buffers: dict[int, list[RawRecord]] = {}
            by_id = {i: s.path for i, s in enumerate(files)}
            pool = pool or worker_pool(config, workers)
            for kind, task_id, payload in pool.run(Task(i, s.path) for i, s in enumerate(files)):
                if kind == "record":
                    buffers.setdefault(task_id, []).append(payload)
                    progress.item()
                else:
                    committer.add(by_id[task_id], buffers.pop(task_id, []))
                    progress.source_done()
        committer.flush()
    finally:
        progress.close()
        if pool is not None:
            pool.close()  # started early but nothing to extract: stop it (run() closes it otherwise)
    from ..match.cluster import assign_case_clusters
    from ..match.series import assign_series

    assign_case_clusters(db, case_id, config)  # near-duplicate clusters need the whole case
    assign_series(db, case_id, config)  # new items join series of this case and of earlier cases
    from .rematch import sync_stored_index

    sync_stored_index(db, config)  # the stored hashes a later bank change is re-matched against
    summary = None
    if out is not None:
        summary = write_reports(queries.iter_records(db, case_id), out, case,
                                duplicates=lambda: queries.duplicate_groups(db, case_id))
    return ScanResult(case, len(sources), len(sources) - len(pending), committer.written, summary,
                      time.monotonic() - started)
