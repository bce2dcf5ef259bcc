"""``POST /v1/scan``: the same :class:`~tripwire.pipeline.pipeline.Pipeline` as ``tripwire scan``, on uploads.

Each upload is spooled to a private temporary file (the extractors read files), extracted by a scan worker
process (:class:`~.workers.ExtractionPool`: archives are expanded within the same caps, and an item that takes
longer than the per-item time limit is killed and recorded as ``timeout``, so a hostile upload holds a scan
slot for at most that long), run through the same stages and policy (with the upload's context), and stored
in the service case with the same review-queue entries as a local scan, plus its upload context — all in one
transaction. The temporary file is deleted before the response is sent: media bytes are never stored.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable

from sqlalchemy.orm import Session

from ..config import Config
from ..match.series import assign_series
from ..pipeline.pipeline import Batch, Pipeline, by_depth
from ..pipeline.stages import Stage
from ..policy.policy import Policy, most_severe
from ..policy.stage import PolicyStage
from ..records import RawRecord, shown
from ..review.models import ItemContext
from ..store.db import Database
from .workers import ExtractionPool

CONTEXT_FIELDS = ("platform", "post_id", "url", "account_id", "account_handle", "profile_url", "ip_events", "extra")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


@dataclass
class Upload:
    filename: str
    stream: IO[bytes]


def safe_name(name: str | None, n: int) -> str:
    """The client's file name as a display name: base name only, no control characters, bounded."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip(" .") or f"file-{n}"
    return base[:200]


class Scanner:
    """Runs uploads through the pipeline and stores the results (thread-safe; one per service).

    ``concurrency`` scans run at once (the rest wait); extraction uses ``concurrency + 1`` worker processes,
    so when a worker is killed for overrunning ``item_timeout_s`` (default: ``[limits] item_timeout_s``) the
    next upload finds a warm one while the replacement starts. Call :meth:`close` to stop them.
    """

    def __init__(self, db: Database, config: Config, policy: Policy, stages: list[Stage], case: str,
                 concurrency: int = 0, spool_dir: str | None = None,
                 bank_schemes: Callable[[], dict[str, str]] | None = None,
                 observe: Callable[[list[str], int, int, float], None] | None = None,
                 item_timeout_s: float | None = None) -> None:
        self.db = db
        self.config = config
        self.policy = policy
        self.case = case
        self.case_id = db.case_id(case)
        self.spool_dir = spool_dir or _default_spool()
        self.bank_schemes = bank_schemes or (lambda: {})
        self.pipeline = Pipeline(config, stages, PolicyStage(policy, lambda bank: self.bank_schemes().get(bank)))
        self.observe = observe
        slots = concurrency or os.cpu_count() or 1
        self._slots = threading.BoundedSemaphore(slots)
        self.workers = ExtractionPool(config, slots + 1, item_timeout_s)

    def close(self) -> None:
        self.workers.close()

    def scan(self, uploads: list[Upload], context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Process and store ``uploads``; returns ``{scan_id, action, files: [{filename, item_id, action,
        records}]}`` (records as ``tripwire scan`` writes them, plus ``item_id`` and ``action``)."""
        scan_id = uuid.uuid4().hex
        day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        context = {k: v for k, v in (context or {}).items() if k in CONTEXT_FIELDS and v not in (None, "", [], {})}
        started = time.monotonic()
        files: list[dict[str, Any]] = []
        batch: Batch = []
        with self._slots, tempfile.TemporaryDirectory(prefix="tw-scan-", dir=self.spool_dir) as tmp:
            for n, upload in enumerate(uploads, 1):
                name = safe_name(upload.filename, n)
                display = f"upload/{day}/{scan_id}/{n}/{name}"
                rows = self.pipeline.finish(self._process(upload, Path(tmp) / str(n), display), context)
                rows.sort(key=lambda r: by_depth(r[1]))
                batch.append((display, rows))
                files.append({"filename": name, "path": display, "rows": rows})
        ids = self._store(batch, context)
        series_of = assign_series(self.db, self.case_id, self.config, item_ids=ids.values()).series_of
        out_files = []
        for f in files:
            records = []
            for _, flat, _ in f["rows"]:
                rec: dict[str, Any] = dict(shown(flat))  # a member name that is not UTF-8 as \xNN (records.shown_path)
                rec["item_id"] = ids.get(flat["path"])
                if rec["item_id"] in series_of:
                    rec["series"] = series_of[rec["item_id"]]
                rec["action"] = flat["policy"]["action"]
                records.append(rec)
            action = most_severe(r["action"] for r in records)
            top = records[0] if records else {}
            out_files.append({"filename": f["filename"], "item_id": top.get("item_id"), "action": action,
                              "records": records})
        overall = most_severe(f["action"] for f in out_files)
        seconds = time.monotonic() - started
        if self.observe is not None:
            errors = sum(1 for f in out_files for r in f["records"] if r.get("error"))
            total = sum(len(f["records"]) for f in out_files)
            self.observe([f["action"] for f in out_files], total - errors, errors, seconds)
        return {"scan_id": scan_id, "case": self.case, "action": overall, "files": out_files,
                "seconds": round(seconds, 4)}

    def _process(self, upload: Upload, path: Path, display: str) -> list[RawRecord]:
        with open(path, "wb") as fh:
            os.chmod(path, 0o600)
            shutil.copyfileobj(upload.stream, fh, 1 << 20)
        try:
            raws = self.workers.extract(str(path))
        finally:
            path.unlink(missing_ok=True)
        prefix = str(path)
        for raw in raws:
            for key in ("path", "source"):
                value = raw.get(key)
                if isinstance(value, str) and value.startswith(prefix):
                    raw[key] = display + value[len(prefix):]
            _scrub(raw, prefix, display)
        return raws

    def _store(self, batch: Batch, context: dict[str, Any]) -> dict[str, int]:
        """Items, queue entries and the upload context in ONE transaction; returns path -> item id."""

        def add_context(s: Session, ids: dict[str, int]) -> None:
            if context:
                for item_id in ids.values():
                    s.add(ItemContext(item_id=item_id, **{k: context.get(k) for k in CONTEXT_FIELDS}))

        return self.pipeline.store(self.db, self.case_id, batch, then=add_context)


def _scrub(raw: RawRecord, prefix: str, display: str) -> None:
    """Replace the spool path in error messages with the display path (no server paths leak)."""
    err = raw.get("error")
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        err["message"] = err["message"].replace(prefix, display)
    for entry in (raw.get("facts") or {}).values():
        e = entry.get("error") if isinstance(entry, dict) else None
        if isinstance(e, dict) and isinstance(e.get("message"), str):
            e["message"] = e["message"].replace(prefix, display)


def _default_spool() -> str | None:
    """RAM-backed /dev/shm when it has room (uploads then never touch a disk), else the system temp folder."""
    shm = "/dev/shm"
    try:
        if os.path.isdir(shm) and os.access(shm, os.W_OK):
            st = os.statvfs(shm)
            if st.f_bavail * st.f_frsize >= 1 << 30:
                return shm
    except OSError:
        pass
    return None
