"""``tripwire scan``: walk the inputs, skip what a previous run finished, extract in workers, store, report.

Workers run the pipeline's extraction half — local worker processes or Ray actors (:mod:`.engine`); this
process runs its stage half (matching, triage, policy) and stores items, sources and review-queue entries
(:class:`~.pipeline.Pipeline`). The inputs are listed lazily, a chunk at a time, and counted by a second
listing in a thread for the progress display's ETA.

Exactly-once: a source's items and the marker saying the source is finished are committed together, so a
run killed at any moment (SIGKILL included) leaves each source either wholly stored or not at all, and the
same command afterwards processes precisely the sources that are missing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..errors import UsageError
from ..progress import ScanProgress
from ..records import RawRecord
from ..report.writer import Summary, write_case_reports
from ..store import queries
from ..store.db import Database
from .engine import DoneFilter, Engine, Listing
from .engines import make_engine
from .pipeline import Batch, Pipeline
from .worker import ExtractorFactory

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


def _count(listing: Listing, progress: ScanProgress, stop: threading.Event) -> None:
    """Count the sources alongside the scan (a second, lazy listing), so that progress can show an ETA."""
    n = 0
    for n, _ in enumerate(listing, 1):
        if stop.is_set():
            return
    progress.set_total(n)


def run_scan(paths: list[str], db: Database, case: str, out: str | Path | None, config: Config,
             workers: int | None = None, quiet: bool = False, engine: str | Engine = "local",
             ray_address: str | None = None, extractors: ExtractorFactory | None = None) -> ScanResult:
    """Scan ``paths`` into ``case`` on ``engine`` (``local`` worker processes or ``ray``; :mod:`.engine`), or on
    an engine the caller made (and perhaps started) already with :func:`make_engine`; it is closed here.

    ``extractors`` replaces the default extractor set in the workers (see :func:`make_engine`).
    """
    if not paths:
        raise UsageError("nothing to scan: give at least one path (or - to read paths from stdin)")
    started = time.monotonic()
    # a bad choice fails before the case exists
    runner = make_engine(engine, workers, config, ray_address, extractors) if isinstance(engine, str) else engine
    try:
        case_id = db.case_id(case)
        listing = Listing.of(paths, config)
        done = DoneFilter(db, case_id)
        committer = _Committer(db, case_id, Pipeline.from_config(config, db))
        progress = ScanProgress(None, quiet=quiet)
        stop = threading.Event()
        if not quiet:  # the count only serves the display
            threading.Thread(target=_count, args=(listing, progress, stop), name="tripwire-count", daemon=True).start()
        try:
            for finished in runner.run(listing, done):
                if finished.raws is None:
                    progress.skip()
                    continue
                committer.add(finished.source, finished.raws)
                progress.item(len(finished.raws))
                progress.source_done()
            committer.flush()
        finally:
            stop.set()
            progress.close()
            done.close()
        total = progress.done + progress.skipped
        from ..match.cluster import assign_case_clusters
        from ..match.series import assign_series

        assign_case_clusters(db, case_id, config)  # near-duplicate clusters need the whole case
        assign_series(db, case_id, config)  # new items join series of this case and of earlier cases
        from .rematch import sync_stored_index

        sync_stored_index(db, config)  # the stored hashes a later bank change is re-matched against
        summary = None
        if out is not None:
            summary = write_case_reports(db, case_id, out, case)
    finally:
        runner.close()  # after the reports: finished local workers exit meanwhile (WorkerPool.release)
    return ScanResult(case, total, progress.skipped, committer.written, summary, time.monotonic() - started)

