"""The Ray engine: the extraction half of ``tripwire scan`` on a Ray cluster, through Ray Data.

The dataset is one streaming pipeline, so nothing is ever held whole:

1. a read task walks the :class:`~.engine.Listing` lazily (local folders on a filesystem every node sees, or
   ``s3://`` prefixes) and emits blocks of :data:`BLOCK` source paths; Ray Data's backpressure pauses the walk
   while the actors are behind;
2. :class:`_Extract` actors (``map_batches`` with a class: the extractors are built once per actor, not per
   batch) skip sources the case already holds, extract the rest with the same
   :class:`~.worker.SourceProcessor` the local worker processes run, and return each source's raw records;
3. the scanning process (the Ray driver) iterates the results and runs the pipeline's stage half and the
   batched commit exactly as a local scan does (:mod:`.scan`).

Failures: an actor whose process dies (killed, out of memory, its node lost) is restarted by Ray (on another
node when its own is gone) and the block it held is run again; a lost read task is re-run from the start of
the listing. Either way a source may be extracted twice but is stored once:
the actor skips sources already stored, and the commit is an upsert keyed on (case, path) that writes a
source's items and its done-marker in one transaction. A killed driver stops the job (its actors go with
it); the same command again resumes from the done-markers, as a local scan does.

Differences from the local engine: the per-item deadline of :class:`~.pool.WorkerPool` (a stuck decoder is
killed after ``item_timeout_s``) has no counterpart here: a hung item holds its actor. A file that kills its
worker every time is recorded as ``worker_crashed`` after :data:`MAX_ATTEMPTS` attempts (:class:`_Attempts`),
as the local pool records it after one.

This module imports Ray at import time; it is imported only when ``--engine ray`` is chosen.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from typing import Any, Iterator

import pyarrow as pa
import ray
from ray.data import DataContext
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..config import Config
from ..errors import ItemError
from ..records import RawRecord
from .engine import DoneFilter, Finished, Listing
from .worker import ExtractorFactory, Message, SourceProcessor, Task, new_record

#: sources per block of the listing: the unit Ray Data queues, applies backpressure to and hands to one actor
#: call; small, so that the actors share the work evenly, a slow source delays few others and a retry is cheap
BLOCK = 8
#: the byte size at which Ray Data cuts blocks: about BLOCK paths of the listing
BLOCK_BYTES = BLOCK * 256
#: attempts on one source whose worker died each time before it is recorded as ``worker_crashed``
MAX_ATTEMPTS = 3


class _Attempts:
    """Blocks and sources in flight, counted across actor restarts (a Ray actor on the driver's node).

    Ray re-runs a block whose actor died, as often as it takes: that survives lost nodes, but a file that
    kills its worker every time would be re-run forever. A block registers before its work and unregisters
    after, so a block found registered is a re-run: its sources are then registered one by one while they are
    extracted, and a source in flight when its worker died :data:`MAX_ATTEMPTS` times is recorded as
    ``worker_crashed`` instead of being extracted again, as the local pool records it. Only what is in flight
    is held.
    """

    def __init__(self) -> None:
        self.open: dict[str, int] = {}

    def begin(self, key: str) -> int:
        self.open[key] = self.open.get(key, 0) + 1
        return self.open[key]

    def end(self, keys: list[str]) -> None:
        for key in keys:
            self.open.pop(key, None)


class _ListingDatasource(Datasource):
    """One read task that walks the listing lazily, a block of source paths at a time."""

    def __init__(self, listing: Listing) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.listing = listing

    def estimate_inmemory_data_size(self) -> int | None:
        return None  # unknown until walked: that is the point

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        listing = self.listing

        def read() -> Iterator[pa.Table]:
            for chunk in listing.chunks(BLOCK):
                # paths as bytes: a file name that is not UTF-8 survives the trip (Arrow strings must be UTF-8)
                yield pa.table({
                    "path": pa.array([os.fsencode(s.path) for s in chunk], pa.binary()),
                    "code": pa.array([s.error.code if s.error else None for s in chunk], pa.string()),
                    "message": pa.array([s.error.message if s.error else None for s in chunk], pa.string()),
                })

        metadata = BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None)
        return [ReadTask(read, metadata)]


class _Extract:
    """A Ray actor running the extraction half: extractors built once, then batch after batch of sources."""

    def __init__(self, config: Config, extractors: ExtractorFactory | None, done: DoneFilter, attempts: Any) -> None:
        self.processor = SourceProcessor(config, list(extractors(config)) if extractors else None)
        self.done = done
        self.attempts = attempts

    def _extract(self, path: str) -> list[RawRecord]:
        raws: list[RawRecord] = []

        def send(message: Message) -> None:
            if message[0] == "record":
                raws.append(message[2])

        self.processor.process(Task(0, path), send)
        return raws

    def __call__(self, batch: pa.Table) -> pa.Table:
        paths = [os.fsdecode(p) for p in batch.column("path").to_pylist()]
        block = "block:" + paths[0] if paths else "block:"
        rerun = ray.get(self.attempts.begin.remote(block)) > 1
        stored = self.done.done(paths)
        out: list[bytes | None] = []
        for path, code, message in zip(paths, batch.column("code").to_pylist(), batch.column("message").to_pylist()):
            if path in stored:
                out.append(None)
            elif code is not None:
                out.append(pickle.dumps([new_record(path, path, error=ItemError(code, message))]))
            elif rerun and ray.get(self.attempts.begin.remote(path)) >= MAX_ATTEMPTS:  # its earlier runs all died
                crashed = ItemError("worker_crashed", f"the worker process died on each of {MAX_ATTEMPTS} attempts at this file")
                out.append(pickle.dumps([new_record(path, path, error=crashed)]))
            else:
                out.append(pickle.dumps(self._extract(path)))
                if rerun:  # done: only a source that was in flight when a worker died stays counted
                    self.attempts.end.remote([path])
        self.attempts.end.remote([block, *paths] if rerun else [block])
        return pa.table({"path": batch.column("path"), "raws": pa.array(out, pa.binary())})


class RayEngine:
    """Extraction on Ray: a local Ray started with ``workers`` CPUs, or the cluster at ``address``."""

    def __init__(self, workers: int | None, config: Config, address: str | None = None,
                 extractors: ExtractorFactory | None = None) -> None:
        self.config, self.extractors = config, extractors
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=address, num_cpus=None if address else (workers or os.cpu_count() or 1),
                     include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                     configure_logging=True)
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        # the actors' spreading is a remote argument (deprecated in favour of named ones, of which there is none
        # for a scheduling strategy yet); the listing is one read task, which Ray Data warns about
        warnings.filterwarnings("ignore", message=r".*`ray_remote_args` is deprecated")
        warnings.filterwarnings("ignore", message=r"The minimum number of concurrent actors")
        context = DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        # Ray Data merges a task's output into blocks of up to 128 MiB: the listing's blocks of BLOCK paths
        # (a few KiB) must stay apart, or one actor gets the whole listing
        context.target_max_block_size = BLOCK_BYTES
        # every CPU of the cluster when not told otherwise (an actor each)
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]

    def run(self, listing: Listing, done: DoneFilter) -> Iterator[Finished]:
        ds = ray.data.read_datasource(_ListingDatasource(listing), override_num_blocks=1, num_cpus=0)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        attempts = ray.remote(num_cpus=0, scheduling_strategy=here)(_Attempts).remote()  # type: ignore[call-overload]
        ds = ds.map_batches(
            _Extract, batch_size=BLOCK, batch_format="pyarrow", concurrency=self.workers, num_cpus=1,
            fn_constructor_kwargs={"config": self.config, "extractors": self.extractors, "done": done,
                                   "attempts": attempts},
            scheduling_strategy="SPREAD",  # actors over the nodes (best effort): a lost node costs a share
        )
        for batch in ds.iter_batches(batch_size=BLOCK, batch_format="pyarrow"):
            for path, raws in zip(batch.column("path").to_pylist(), batch.column("raws").to_pylist()):
                yield Finished(os.fsdecode(path), None if raws is None else pickle.loads(raws))

    def close(self) -> None:
        if self._started:
            ray.shutdown()
