"""What a worker process does with one top-level source: read, extract, expand archives, report records.

Workers only compute; they never touch the database. Each item is announced (``start``) before work on it
begins, so that when the parent kills a worker stuck in a decoder it knows exactly which item hung, records
a timeout for it, and re-sends the source with the finished items (and the hung one) skipped.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Callable, Iterable, Sequence

from ..config import Config, Limits
from ..errors import ItemError
from ..extractor import Extractor
from ..media.archive import Budget, named_members
from ..media.item import Item
from ..media.objectstore import is_uri, open_object
from ..media.sniff import SNIFF_BYTES, is_archive, sniff
from ..records import FactEntry, RawRecord
from ..signals.digests import digest_file, digest_stream
from .extractors import default_extractors

#: what a worker sends: ("start", task id, path), ("record", task id, RawRecord) or ("done", task id, None)
Message = tuple[str, int, Any]
Send = Callable[[Message], None]
#: makes one extraction half's extractors in a worker (a module-level function: it is pickled to the worker)
ExtractorFactory = Callable[[Config], Sequence[Extractor]]


@dataclass(frozen=True)
class Task:
    id: int
    path: str
    #: display paths already recorded by an earlier attempt (or that hung it): not processed again
    skip: frozenset[str] = field(default_factory=frozenset)


def new_record(path: str, source: str, size: int | None = None, media_type: str | None = None,
               error: ItemError | None = None) -> RawRecord:
    return {
        "path": path,
        "source": source,
        "size": size,
        "media_type": media_type,
        "error": error.as_dict() if error else None,
        "facts": {},
    }


def run_extractors(item: Item, extractors: Iterable[Extractor], record: RawRecord) -> RawRecord:
    """Run every extractor; the first failure becomes the item's error, the others still run.

    Facts under a key the extractor did not declare are dropped and recorded as its ``extractor_error``
    (the keys it did declare are kept): an undeclared key could overwrite another extractor's fact.
    """
    for extractor in extractors:
        entry: FactEntry = {"version": extractor.version, "data": {}, "error": None}
        try:
            data = extractor.extract(item) or {}
            undeclared = sorted(set(data) - set(extractor.produces))
            entry["data"] = {k: v for k, v in data.items() if k not in undeclared} if undeclared else data
            if undeclared:
                entry["error"] = {"code": "extractor_error",
                                  "message": f"{extractor.name}: undeclared fact(s) {', '.join(undeclared)} dropped"}
        except ItemError as exc:
            entry["error"] = exc.as_dict()
        except MemoryError:
            entry["error"] = {"code": "decompression_bomb", "message": f"{extractor.name}: out of memory"}
        except Exception as exc:  # one broken extractor must not stop the batch
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            entry["error"] = {
                "code": "extractor_error",
                "message": f"{extractor.name}: {exc.__class__.__name__}: {exc} ({os.path.basename(tb.filename)}:{tb.lineno})",
            }
        record["facts"][extractor.name] = entry
        if entry["error"] and record["error"] is None:
            record["error"] = entry["error"]
    return record


class SourceProcessor:
    """Turns one top-level file into records (one, or many for an archive)."""

    def __init__(self, config: Config, extractors: list[Extractor] | None = None) -> None:
        self.config = config
        self.limits: Limits = config.limits
        self.extractors = extractors if extractors is not None else default_extractors(config)

    def process(self, task: Task, send: Send) -> None:
        path = task.path
        send(("start", task.id, path))
        remote = is_uri(path)
        try:
            size, fh = open_object(path, self.config) if remote else (os.path.getsize(path), open(path, "rb"))
            with fh:
                head = fh.read(SNIFF_BYTES)
                media_type = sniff(head)
                big = size > self.limits.max_decode_bytes
                data = None if big else head + fh.read(size + 1 - len(head))  # never more than the size listed
        except OSError as exc:
            send(("record", task.id, new_record(path, path, error=ItemError("unreadable", f"cannot read: {exc.strerror or exc}"))))
            return
        if data is not None:
            item = Item(path, data, len(data), self.limits, media_type)
            record = self._item_record(item, path)
            if record["error"] is None and size == 0:
                record["error"] = ItemError("empty_file", "the file has zero bytes").as_dict()
            if is_archive(media_type):
                self._expand(task, data, media_type, path, 1, Budget(self.limits), record, send)
            send(("record", task.id, record))
            return
        # Too large to hold in memory: digest from disk (or the object's stream); local archives are still
        # expanded by streaming, those in object storage are not (that needs seeks: a download first).
        record = new_record(path, path, size, media_type)
        try:
            if remote:
                with open_object(path, self.config)[1] as stream:
                    digests = digest_stream(stream)
            else:
                digests = digest_file(path)
            record["facts"]["digests"] = {"version": "1", "data": digests, "error": None}
        except OSError as exc:
            record["error"] = ItemError("unreadable", f"cannot read: {exc.strerror or exc}").as_dict()
        if is_archive(media_type) and remote:
            record["error"] = record["error"] or ItemError(
                "too_large", f"{size} bytes exceeds the decode cap of {self.limits.max_decode_bytes}: an archive in object storage is digested, not expanded").as_dict()
        elif is_archive(media_type):
            self._expand(task, path, media_type, path, 1, Budget(self.limits), record, send)
        elif media_type.startswith("image/"):
            record["error"] = ItemError("too_large", f"{size} bytes exceeds the decode cap of {self.limits.max_decode_bytes}").as_dict()
        send(("record", task.id, record))

    def _item_record(self, item: Item, source: str) -> RawRecord:
        record = new_record(item.path, source, item.size, item.media_type)
        return run_extractors(item, self.extractors, record)

    def _expand(self, task: Task, archive: str | bytes, media_type: str, display: str, depth: int,
                budget: Budget, archive_record: RawRecord, send: Send) -> None:
        try:
            for unique, member in named_members(archive, media_type, display, self.limits, budget):
                if unique in task.skip:
                    continue
                send(("start", task.id, unique))
                if member.data is None:
                    send(("record", task.id, new_record(unique, task.path, member.size, None, member.error)))
                    continue
                item = Item(unique, member.data, member.size, self.limits)
                record = self._item_record(item, task.path)
                if member.error and record["error"] is None:
                    record["error"] = member.error.as_dict()
                if is_archive(item.media_type):
                    if depth >= self.limits.max_archive_depth:
                        record["error"] = record["error"] or ItemError(
                            "archive_too_deep", f"nested deeper than {self.limits.max_archive_depth} archives: not expanded").as_dict()
                    else:
                        self._expand(task, member.data, item.media_type, unique, depth + 1, budget, record, send)
                send(("record", task.id, record))
        except ItemError as exc:
            if archive_record["error"] is None:
                archive_record["error"] = exc.as_dict()


def worker_main(conn: Connection, config: Config, extractors: ExtractorFactory | None = None) -> None:
    """Process tasks from ``conn`` until it closes (the parent exited or was killed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us cleanly
    # the parent waits for a finished worker to exit: skip the interpreter's final garbage collection over
    # numpy, Pillow and the extractors (~0.1 s), as `tripwire scan` does (cli/scan.py)
    atexit.register(gc.freeze)
    processor = SourceProcessor(config, list(extractors(config)) if extractors else None)
    send = conn.send
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            processor.process(task, send)
        except (BrokenPipeError, EOFError, OSError):
            return
        send(("done", task.id, None))
