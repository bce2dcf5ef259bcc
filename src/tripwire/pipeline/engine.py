"""Where the extraction half of a scan runs: one small interface, two engines (local processes, Ray).

``tripwire scan`` lists its inputs, skips the sources a previous run finished, extracts the rest and stores
them (:mod:`.scan`). Only the middle part depends on where the work runs, so an :class:`Engine` gets a
:class:`Listing` (what to scan) and a :class:`DoneFilter` (what is finished) and yields one :class:`Finished`
per source; the scanning process runs the stage half and commits, whatever the engine. The local engine
(:class:`LocalEngine`) uses :class:`~.pool.WorkerPool`; the Ray engine (:mod:`.ray_engine`) runs the same
:class:`~.worker.SourceProcessor` in Ray actors. Another engine (Dask, say) is one more class with ``run``
and ``close``.

This module imports neither the store nor the stage half, so that ``tripwire scan`` can start its worker
processes (:func:`.engines.make_engine`) before it imports SQLAlchemy and the models: the workers' own start-up then
overlaps all of that (issue 12).

Both engines list lazily: the listing is walked in chunks and never held whole in memory, and the finished
sources are looked up a chunk at a time (:meth:`DoneFilter.done`), so 10⁸ inputs cost the memory of a chunk.
Both are exactly-once in the database whatever they repeat: a source's items and its done-marker commit in
one transaction, by upserts keyed on (case, path), so a source extracted twice (a retried Ray task, a
re-run after a kill) is stored once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import TYPE_CHECKING, Iterable, Iterator, Protocol, Sequence

from ..config import Config
from ..media.objectstore import is_uri
from ..media.walk import Source, walk
from ..records import RawRecord
from .pool import Passed, WorkerPool
from .worker import ExtractorFactory, Task, new_record

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported where it is used: `tripwire scan` starts its workers first
    from ..store.db import Database

#: sources listed, looked up and handed out together (memory and database round trips per chunk)
CHUNK = 512


@dataclass(frozen=True)
class Finished:
    """One source, done: its raw records, or ``raws is None`` when an earlier run had stored it (skipped)."""

    source: str
    raws: list[RawRecord] | None


@dataclass(frozen=True)
class Listing:
    """What a scan covers: the command line's paths (files, folders, ``s3://`` URIs), walked lazily.

    Picklable, so that a Ray read task walks it where it runs. Overlapping arguments (a folder and a file in
    it, a path given twice) are reduced to their roots up front, so the walk never yields a source twice
    without having to remember every source it yielded.
    """

    paths: tuple[str, ...]
    config: Config = field(default_factory=Config)

    @classmethod
    def of(cls, paths: Iterable[str], config: Config) -> "Listing":
        return cls(tuple(roots(paths)), config)

    def __iter__(self) -> Iterator[Source]:
        return walk(self.paths, self.config)

    def chunks(self, size: int = CHUNK) -> Iterator[list[Source]]:
        it = iter(self)
        while chunk := list(islice(it, size)):
            yield chunk


def roots(paths: Iterable[str]) -> list[str]:
    """The arguments with duplicates and arguments inside an argument folder removed, order kept."""
    absolute = list(dict.fromkeys(p.rstrip("/") if is_uri(p) else os.path.abspath(p) for p in paths))
    folders = [a for a in absolute if not is_uri(a) and os.path.isdir(a)]
    uris = [a + "/" for a in absolute if is_uri(a)]

    def covered(a: str) -> bool:
        if is_uri(a):
            return any(a.startswith(u) for u in uris)
        return any(a != f and a.startswith(f.rstrip(os.sep) + os.sep) for f in folders)

    return [a for a in absolute if not covered(a)]


class DoneFilter:
    """The sources of a case already stored, looked up per chunk; picklable (it carries the URL, not a connection).

    In the scanning process it uses the scan's own database; unpickled in a Ray actor it opens its own
    connection on first use, so the cluster's case database must be reachable from every node (PostgreSQL;
    a SQLite file only on one machine).
    """

    def __init__(self, db: Database, case_id: int) -> None:
        self.url, self.case_id = db.url, case_id
        self._db: Database | None = db
        self._owned = False

    def __getstate__(self) -> dict[str, object]:
        return {"url": self.url, "case_id": self.case_id}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.url, self.case_id = str(state["url"]), int(str(state["case_id"]))
        self._db, self._owned = None, True

    def done(self, paths: Sequence[str]) -> set[str]:
        """Those of ``paths`` whose source is stored in the case."""
        from ..store.db import Database, path_key
        from ..store.queries import done_among

        if self._db is None:
            self._db = Database(self.url)
        keys = {path_key(p): p for p in paths}
        return {keys[k] for k in done_among(self._db, self.case_id, list(keys))}

    def close(self) -> None:
        if self._db is not None and self._owned:
            self._db.dispose()
            self._db = None


def error_record(source: Source) -> RawRecord:
    """The one record of a source that is an error (a dangling link, an unreadable folder, a listing failure)."""
    assert source.error is not None
    return new_record(source.path, source.path, error=source.error)


class Engine(Protocol):
    """Runs the extraction half over a listing; yields each source once it is finished or known done."""

    def run(self, listing: Listing, done: DoneFilter) -> Iterator[Finished]: ...

    def close(self) -> None: ...


class LocalEngine:
    """Worker processes on this machine (:class:`~.pool.WorkerPool`: per-item deadline, crash isolation)."""

    def __init__(self, workers: int | None, config: Config, extractors: ExtractorFactory | None = None) -> None:
        self.pool = WorkerPool(workers or os.cpu_count() or 1, config, extractors)

    def run(self, listing: Listing, done: DoneFilter) -> Iterator[Finished]:
        by_id: dict[int, str] = {}
        counter = iter(range(1 << 62))

        def tasks() -> Iterator[Task | Passed]:
            for chunk in listing.chunks():
                stored = done.done([s.path for s in chunk])
                for source in chunk:
                    if source.path in stored:  # skipped and error sources pass through the pool, in order
                        yield ("passed", -1, Finished(source.path, None))
                    elif source.error is not None:
                        yield ("passed", -1, Finished(source.path, [error_record(source)]))
                    else:
                        task_id = next(counter)
                        by_id[task_id] = source.path
                        yield Task(task_id, source.path)

        stream = tasks()
        for first in stream:  # no worker is started before there is a file to extract (a finished resume)
            if isinstance(first, Task):
                break
            yield first[2]
        else:
            return
        buffers: dict[int, list[RawRecord]] = {}
        for kind, task_id, payload in self.pool.run(chain([first], stream)):
            if kind == "passed":
                yield payload
            elif kind == "record":
                buffers.setdefault(task_id, []).append(payload)
            else:
                yield Finished(by_id.pop(task_id), buffers.pop(task_id, []))

    def close(self) -> None:
        self.pool.close()


def read_path_list(stream: Iterable[str]) -> list[str]:
    """Paths from a newline-separated list (``tripwire scan -``); blank lines are ignored."""
    return [line.rstrip("\r\n") for line in stream if line.strip()]
