"""``POST /v1/scan``: the same pipeline as ``tripwire scan``, on uploaded files, in this process.

Each upload is spooled to a private temporary file (the extractors read files), processed by
:class:`~tripwire.pipeline.worker.SourceProcessor` exactly as a scan worker would process it (archives are
expanded within the same caps), flattened with :func:`~tripwire.record.from_worker`, run through the
default stages (bank matching, triage priority) and the policy, and stored in the service case together
with its upload context and, when the policy says so, a review-queue entry — all in one transaction. The
temporary file is deleted before the response is sent: media bytes are never stored.
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

from sqlalchemy import select

from ..config import Config
from ..pipeline.stages import Stage
from ..pipeline.worker import SourceProcessor, Task
from ..policy.policy import Policy, most_severe
from ..record import Record, from_worker
from ..review.models import ItemContext
from ..store.db import Database, path_key
from ..store.queries import write_sources
from .bankops import JoinedDatabase
from .models import QueueEntry

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
    """Runs uploads through the pipeline and stores the results (thread-safe; one per service)."""

    def __init__(self, db: Database, config: Config, policy: Policy, stages: list[Stage], case: str,
                 concurrency: int = 0, spool_dir: str | None = None,
                 bank_schemes: Callable[[], dict[str, str]] | None = None,
                 observe: Callable[[list[str], int, int, float], None] | None = None) -> None:
        self.db = db
        self.config = config
        self.policy = policy
        self.stages = stages
        self.case = case
        self.case_id = db.case_id(case)
        self.spool_dir = spool_dir or _default_spool()
        self.bank_schemes = bank_schemes or (lambda: {})
        self.observe = observe
        self._local = threading.local()
        self._slots = threading.BoundedSemaphore(concurrency or os.cpu_count() or 1)

    def _processor(self) -> SourceProcessor:
        proc = getattr(self._local, "processor", None)
        if proc is None:
            proc = self._local.processor = SourceProcessor(self.config)
        return proc

    def scan(self, uploads: list[Upload], context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Process and store ``uploads``; returns ``{scan_id, action, files: [{filename, item_id, action,
        records}]}`` (records as ``tripwire scan`` writes them, plus ``item_id`` and ``action``)."""
        scan_id = uuid.uuid4().hex
        day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        context = {k: v for k, v in (context or {}).items() if k in CONTEXT_FIELDS and v not in (None, "", [], {})}
        started = time.monotonic()
        files: list[dict[str, Any]] = []
        batch: list[tuple[str, list[tuple[Record, Record, dict]]]] = []
        schemes = self.bank_schemes()
        with self._slots, tempfile.TemporaryDirectory(prefix="tw-scan-", dir=self.spool_dir) as tmp:
            for n, upload in enumerate(uploads, 1):
                name = safe_name(upload.filename, n)
                display = f"upload/{day}/{scan_id}/{n}/{name}"
                raws = self._process(upload, Path(tmp) / str(n), display)
                rows: list[tuple[Record, Record, dict]] = []
                for raw in raws:
                    flat = from_worker(raw)
                    before = set(flat)
                    for stage in self.stages:
                        stage.apply(flat)
                    outcome = self.policy.evaluate(flat, context, schemes.get)
                    flat["policy"] = outcome.as_dict()
                    rows.append((raw, flat, {k: flat[k] for k in flat if k not in before}))
                rows.sort(key=lambda r: (r[1]["path"].count("!/"), r[1]["path"]))
                batch.append((display, rows))
                files.append({"filename": name, "path": display, "rows": rows})
        ids = self._store(batch, context)
        out_files = []
        for f in files:
            records = []
            for _, flat, _ in f["rows"]:
                rec = dict(flat)
                rec["item_id"] = ids.get(flat["path"])
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

    def _process(self, upload: Upload, path: Path, display: str) -> list[Record]:
        with open(path, "wb") as fh:
            os.chmod(path, 0o600)
            shutil.copyfileobj(upload.stream, fh, 1 << 20)
        raws: list[Record] = []

        def send(message: tuple) -> None:
            if message[0] == "record":
                raws.append(message[2])

        try:
            self._processor().process(Task(0, str(path)), send)
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

    def _store(self, batch: list[tuple[str, list[tuple[Record, Record, dict]]]], context: dict[str, Any]) -> dict[str, int]:
        """Items, context and queue entries in ONE transaction; returns path -> item id."""
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            write_sources(JoinedDatabase(self.db, s), self.case_id, batch)  # type: ignore[arg-type]
            keys = {path_key(flat["path"]): flat for _, rows in batch for _, flat, _ in rows}
            ids: dict[str, int] = {}
            key_list = list(keys)
            from ..store.models import ItemRow

            for start in range(0, len(key_list), 500):
                chunk = key_list[start : start + 500]
                for item_id, key in s.execute(select(ItemRow.id, ItemRow.path_key)
                                              .where(ItemRow.case_id == self.case_id, ItemRow.path_key.in_(chunk))):
                    ids[keys[key]["path"]] = item_id
            for path, item_id in ids.items():
                flat = keys[path_key(path)]
                if context:
                    s.add(ItemContext(item_id=item_id, **{k: context.get(k) for k in CONTEXT_FIELDS}))
                policy = flat.get("policy") or {}
                if policy.get("queue"):
                    s.add(QueueEntry(item_id=item_id, state="open", action=policy.get("action") or "review",
                                     rule=policy.get("rule"), priority=float(flat.get("priority") or 0.0),
                                     queued_at=now, updated_at=now))
        return ids


def _scrub(raw: Record, prefix: str, display: str) -> None:
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
