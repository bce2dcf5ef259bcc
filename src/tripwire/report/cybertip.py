"""The NCMEC CyberTipline reporting API: an httpx client and an idempotent, resumable submission workflow.

The API (``https://report.cybertip.org/ispws``; test environment ``https://exttest.cybertip.org/ispws``) takes
HTTP Basic auth and answers every call with XML carrying ``responseCode`` (0 is success):

=============  =====================================  ============================================
``GET /status``    —                                  ``reportResponse`` (credentials check)
``POST /submit``   ``<report>`` XML                   ``reportResponse`` with ``reportId``
``POST /upload``   multipart ``id`` + ``file``        ``reportResponse`` with ``fileId``, ``hash`` (MD5)
``POST /fileinfo`` ``<fileDetails>`` XML              ``reportResponse``
``POST /finish``   form ``id``                        ``reportDoneResponse`` with ``files/fileId``
``POST /retract``  form ``id``                        ``reportResponse``
=============  =====================================  ============================================

A report exists for NCMEC only once ``/finish`` succeeds. :class:`CyberTiplineClient` retries network errors,
timeouts, HTTP 5xx and ``responseCode`` 1000 (server error) with exponential backoff and jitter.

:class:`Submitter` drives one report at a time through ``pending -> submitting -> opened -> finished``,
committing each step (with its audit event) before the next request, under a lease so two processes never
drive the same submission. Guarantees:

* every item is in at most one live submission (a unique index), so one decision never yields two reports;
* a crash or a give-up after ``/submit`` leaves ``opened`` with the ``reportId``: the next run resumes the
  remaining uploads, file details and ``/finish``; ``/finish`` answered "already finished" (5102) after a lost
  response counts as finished;
* a definitive failure (the server rejects a file or its details, the media cannot be read, a reviewer
  reverses the decision, or the report is older than ``stale_after_hours``) retracts the open report;
* the only window the protocol cannot close: if ``/submit`` reached NCMEC but its answer was lost, tripwire
  never learns that ``reportId``. It submits again; the first report stays open, is never finished, and so
  never becomes a report (the audit trail records the unknown outcome).
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence, overload

import httpx
from defusedxml import ElementTree as SafeET
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import __version__
from ..errors import UsageError
from ..records import stored_path
from ..review import audit
from ..review.decisions import latest_decisions
from ..review.models import Decision
from ..store.db import Database
from ..store.queries import rows_changed
from .models import NcmecSubmission, NcmecSubmissionItem
from .ncmec import NcmecSettings, ReportPlan, build_file_details, build_report, file_name_of, plan_reports
from .reviewed import REPORTABLE, ReviewedItem, load_items

SERVER_ERROR = 1000
ALREADY_RETRACTED = 5101
ALREADY_FINISHED = 5102
DEFAULT_LEASE = timedelta(minutes=10)


class CyberTiplineError(Exception):
    """The API refused a request (``code``), or it could not be reached (``transient``)."""

    def __init__(self, message: str, *, step: str = "", code: int | None = None, http_status: int | None = None,
                 transient: bool = False) -> None:
        super().__init__(message)
        self.step = step
        self.code = code
        self.http_status = http_status
        self.transient = transient


@dataclass
class TipResponse:
    code: int
    description: str = ""
    report_id: int | None = None
    file_id: str | None = None
    hash: str | None = None
    file_ids: list[str] = field(default_factory=list)
    http_status: int = 200
    attempts: int = 1


def parse_response(body: bytes, http_status: int = 200) -> TipResponse:
    """A ``reportResponse`` or ``reportDoneResponse`` document (parsed without entity expansion)."""
    try:
        root = SafeET.fromstring(body)
    except Exception as exc:  # defusedxml raises ParseError and its own refusals
        raise CyberTiplineError(f"not an XML response (HTTP {http_status}): {body[:200]!r}", http_status=http_status) from exc
    if root.tag not in ("reportResponse", "reportDoneResponse"):
        raise CyberTiplineError(f"unexpected response document <{root.tag}>", http_status=http_status)

    def text(tag: str) -> str | None:
        el = root.find(tag)
        return el.text.strip() if el is not None and el.text else None

    code_text = text("responseCode")
    if code_text is None or not code_text.lstrip("-").isdigit():
        raise CyberTiplineError(f"response without a numeric responseCode: {body[:200]!r}", http_status=http_status)
    report_id = text("reportId")
    return TipResponse(
        code=int(code_text), description=text("responseDescription") or "",
        report_id=int(report_id) if report_id and report_id.isdigit() else None,
        file_id=text("fileId"), hash=(text("hash") or "").lower() or None,
        file_ids=[e.text.strip() for e in root.findall("files/fileId") if e.text],
        http_status=http_status,
    )


class CyberTiplineClient:
    """HTTP Basic client for the CyberTipline API with retries and backoff."""

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 30.0, retries: int = 5,
                 backoff: float = 1.0, max_backoff: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not username or not password:
            raise UsageError("CyberTipline credentials are required (username and password)")
        self.base_url = base_url.rstrip("/")
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, auth=httpx.BasicAuth(username, password), timeout=timeout,
                                  transport=transport, headers={"User-Agent": f"tripwire/{__version__}"})

    @classmethod
    def from_settings(cls, settings: NcmecSettings, **overrides: Any) -> "CyberTiplineClient":
        kwargs: dict[str, Any] = {"timeout": settings.timeout_s, "retries": settings.retries, "backoff": settings.backoff_s}
        kwargs.update(overrides)
        return cls(settings.base_url, settings.username or "", settings.password or "", **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "CyberTiplineClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, step: str, method: str, path: str, **kwargs: Any) -> TipResponse:
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:  # connect errors, timeouts, dropped connections
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if resp.status_code >= 500:
                    problem = f"HTTP {resp.status_code}"
                elif resp.status_code in (401, 403):
                    raise CyberTiplineError(f"{step}: the CyberTipline refused the credentials (HTTP {resp.status_code})",
                                            step=step, http_status=resp.status_code)
                else:
                    parsed = parse_response(resp.content, resp.status_code)
                    parsed.attempts = attempt
                    if parsed.code == SERVER_ERROR:
                        problem = f"responseCode {parsed.code} {parsed.description}".strip()
                    elif parsed.code != 0:
                        raise CyberTiplineError(f"{step}: responseCode {parsed.code} {parsed.description}".strip(),
                                                step=step, code=parsed.code, http_status=resp.status_code)
                    elif resp.status_code >= 400:
                        raise CyberTiplineError(f"{step}: HTTP {resp.status_code}", step=step, http_status=resp.status_code)
                    else:
                        return parsed
            if attempt > self.retries:
                raise CyberTiplineError(f"{step}: gave up after {attempt} attempts ({problem})", step=step, transient=True)
            delay = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
            self._sleep(delay * (0.5 + random.random() / 2))

    def status(self) -> TipResponse:
        """Check that the service is reachable and the credentials work."""
        return self._call("status", "GET", "/status")

    def submit(self, report_xml: bytes) -> TipResponse:
        """Open a report; the response carries its ``reportId``."""
        resp = self._call("submit", "POST", "/submit", content=report_xml,
                          headers={"Content-Type": "text/xml; charset=utf-8"})
        if resp.report_id is None:
            raise CyberTiplineError("submit: the response carries no reportId", step="submit")
        return resp

    def upload(self, report_id: int, file_name: str, data: bytes) -> TipResponse:
        """Attach a file to an open report; the response carries its ``fileId`` and MD5."""
        resp = self._call("upload", "POST", "/upload", data={"id": str(report_id)},
                          files={"file": (file_name, data, "application/octet-stream")})
        if not resp.file_id:
            raise CyberTiplineError("upload: the response carries no fileId", step="upload")
        return resp

    def fileinfo(self, details_xml: bytes) -> TipResponse:
        """Describe an uploaded file (``<fileDetails>``)."""
        return self._call("fileinfo", "POST", "/fileinfo", content=details_xml,
                          headers={"Content-Type": "text/xml; charset=utf-8"})

    def finish(self, report_id: int) -> TipResponse:
        """Complete the report: only now does NCMEC receive it."""
        return self._call("finish", "POST", "/finish", data={"id": str(report_id)})

    def retract(self, report_id: int) -> TipResponse:
        """Withdraw an open (unfinished) report."""
        return self._call("retract", "POST", "/retract", data={"id": str(report_id)})


# -- the persisted workflow ---------------------------------------------------------------------------


class SubmissionBusy(UsageError):
    """Another process holds the submission's lease."""


class MediaUnavailable(UsageError):
    """The bytes of a reported file can be found neither in the evidence store nor at its path."""


@dataclass
class SubmissionOutcome:
    submission_id: int
    key: str
    state: str
    report_id: int | None
    files: int
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PrepareResult:
    new: list[int] = field(default_factory=list)
    #: live submissions that already cover some of the requested items (resumed, never duplicated)
    existing: list[int] = field(default_factory=list)


def _submission(s: Session, sid: int) -> NcmecSubmission:
    sub = s.get(NcmecSubmission, sid)
    if sub is None:
        raise UsageError(f"no CyberTipline submission {sid}")
    return sub


def _now() -> datetime:
    return datetime.now(timezone.utc)


@overload
def _aware(dt: datetime) -> datetime: ...
@overload
def _aware(dt: None) -> None: ...
def _aware(dt: datetime | None) -> datetime | None:
    """``dt`` with UTC as its zone when the database returned it naive (SQLite)."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_dead(owner: str | None) -> bool:
    """A lease held by a process on this host that no longer exists can be taken over at once."""
    if not owner:
        return False
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class Submitter:
    """Reports reviewed items to the CyberTipline, exactly once per item, resumably."""

    def __init__(self, db: Database, client: CyberTiplineClient, settings: NcmecSettings, *, actor: str,
                 evidence: Any = None, lease: timedelta = DEFAULT_LEASE, owner: str | None = None) -> None:
        if not actor:
            raise UsageError("reporting needs the name of the person sending the report (--actor)")
        self.db = db
        self.client = client
        self.settings = settings
        self.actor = actor
        self.evidence = evidence if settings.preserve_evidence else None
        self._evidence_reader = evidence
        self.lease = lease
        self.owner = owner or _owner()

    # -- preparing -----------------------------------------------------------------------------------

    def prepare(self, items: Sequence[ReviewedItem], *, annotations: Sequence[str] = (),
                escalate: str | None = None) -> PrepareResult:
        """Create pending submissions for items not already in a live one (one per reported account)."""
        result = PrepareResult()
        for item in items:
            if item.decision.decision not in REPORTABLE:
                raise UsageError(f"item {item.item_id}: decision {item.decision.decision!r} does not support a report")
        with self.db.session() as s:
            ids = [i.item_id for i in items]
            covered = dict(s.execute(select(NcmecSubmissionItem.live_item_id, NcmecSubmissionItem.submission_id)
                                     .where(NcmecSubmissionItem.live_item_id.in_(ids))).all()) if ids else {}
        result.existing = sorted(set(covered.values()))
        fresh = [i for i in items if i.item_id not in covered]
        for plan in plan_reports(fresh, annotations=annotations, escalate=escalate):
            for item in plan.items:
                if not item.sha256:
                    raise MediaUnavailable(f"item {item.item_id} has no SHA-256 (it was never read): it cannot be reported")
            xml = build_report(plan, self.settings)
            try:
                with self.db.session() as s:
                    sub = NcmecSubmission(key=plan.key, state="pending", base_url=self.client.base_url,
                                          report_xml=xml.decode("utf-8"), subject=plan.subject[:400],
                                          options={"annotations": list(plan.annotations), "escalate": plan.escalate},
                                          created_by=self.actor, created_at=_now(), updated_at=_now(), attempts=0)
                    s.add(sub)
                    s.flush()
                    for item in plan.items:
                        s.add(NcmecSubmissionItem(submission_id=sub.id, item_id=item.item_id, decision_id=item.decision.id,
                                                  live_item_id=item.item_id, sha256=item.sha256,
                                                  file_name=file_name_of(item), state="pending"))
                    s.flush()
                    audit.append(s, "ncmec.prepare", self.actor, subject=f"ncmec:{plan.key}",
                                 data={"submission": sub.id, "items": [i.item_id for i in plan.items],
                                       "decisions": plan.decision_ids, "subject": plan.subject,
                                       "annotations": list(plan.annotations), "base_url": self.client.base_url})
                    result.new.append(sub.id)
            except IntegrityError as exc:
                raise SubmissionBusy("another process prepared a report for some of these items at the same time; "
                                     "run the command again to resume it") from exc
        return result

    # -- driving -------------------------------------------------------------------------------------

    def submit(self, items: Sequence[ReviewedItem], *, annotations: Sequence[str] = (),
               escalate: str | None = None) -> list[SubmissionOutcome]:
        """Prepare and complete reports for ``items``; live submissions already covering some are resumed."""
        prepared = self.prepare(items, annotations=annotations, escalate=escalate)
        return [self.run(sid) for sid in prepared.existing + prepared.new]

    def _claim(self, sid: int) -> None:
        now = _now()
        with self.db.session() as s:
            got = rows_changed(s.execute(update(NcmecSubmission).where(
                NcmecSubmission.id == sid,
                or_(NcmecSubmission.lease_owner.is_(None), NcmecSubmission.lease_until < now,
                    NcmecSubmission.lease_owner == self.owner),
            ).values(lease_owner=self.owner, lease_until=now + self.lease)))
            if got == 1:
                return
            row = _submission(s, sid)
            holder = row.lease_owner
        if _owner_dead(holder):
            with self.db.session() as s:
                got = rows_changed(s.execute(update(NcmecSubmission).where(
                    NcmecSubmission.id == sid, NcmecSubmission.lease_owner == holder,
                ).values(lease_owner=self.owner, lease_until=_now() + self.lease)))
            if got == 1:
                return
        raise SubmissionBusy(f"submission {sid} is being driven by {holder} (lease until "
                             f"{_aware(row.lease_until).isoformat() if row.lease_until else '?'}); try again later")

    def _release(self, sid: int) -> None:
        with self.db.session() as s:
            s.execute(update(NcmecSubmission).where(NcmecSubmission.id == sid, NcmecSubmission.lease_owner == self.owner)
                      .values(lease_owner=None, lease_until=None))

    def _step(self, sid: int, kind: str, data: dict[str, Any], **values: Any) -> NcmecSubmission:
        """Commit a state change of the submission together with its audit event."""
        with self.db.session() as s:
            sub = _submission(s, sid)
            for key, value in values.items():
                setattr(sub, key, value)
            sub.updated_at = _now()
            sub.lease_until = _now() + self.lease
            audit.append(s, kind, self.actor, subject=f"ncmec:{sub.key}",
                         data={"submission": sid, "report_id": sub.report_id, **data})
            s.flush()
            s.expunge(sub)
            return sub

    def _load(self, sid: int) -> tuple[NcmecSubmission, list[NcmecSubmissionItem]]:
        with self.db.session() as s:
            sub = _submission(s, sid)
            rows = list(s.scalars(select(NcmecSubmissionItem).where(NcmecSubmissionItem.submission_id == sid)
                                  .order_by(NcmecSubmissionItem.id)))
            s.expunge_all()
            return sub, rows

    def _reviewed(self, rows: list[NcmecSubmissionItem]) -> tuple[dict[int, ReviewedItem], list[str]]:
        """The items as reviewed now, and the reasons any of them no longer supports the report."""
        with self.db.session() as s:
            latest = latest_decisions(s, [r.item_id for r in rows])
            recorded = {d.id: d for d in s.scalars(select(Decision).where(Decision.id.in_([r.decision_id for r in rows])))}
            items = {i.item_id: i for i in load_items(s, [r.item_id for r in rows],
                                                    {r.item_id: recorded[r.decision_id] for r in rows})}
        problems = []
        for r in rows:
            newest = latest.get(r.item_id)
            if newest is None or (newest.id != r.decision_id and newest.decision not in REPORTABLE):
                problems.append(f"item {r.item_id}: the latest decision is now "
                                f"{newest.decision if newest else 'missing'!r}")
        return items, problems

    def _media(self, row: NcmecSubmissionItem, item: ReviewedItem | None, purpose: str) -> bytes:
        sha = row.sha256
        reader = self._evidence_reader
        if reader is not None and reader.has(sha):
            from ..evidence.store import EvidenceError

            try:
                with self.db.session() as s:
                    return reader.read(s, sha, self.actor, reason=purpose)
            except EvidenceError:
                pass  # purged or unreadable with this key: the original path may still be there
        path = Path(stored_path(item.path, item.path_raw)) if item is not None else None  # the exact bytes
        if path is not None and path.is_file():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == sha:
                return data
            raise MediaUnavailable(f"item {row.item_id}: {path} changed since it was scanned (SHA-256 differs)")
        raise MediaUnavailable(f"item {row.item_id}: its bytes are neither preserved in the evidence store nor "
                               f"readable at {row.file_name if item is None else item.path}")

    def run(self, sid: int) -> SubmissionOutcome:
        """Drive one submission from wherever it stopped to ``finished`` (or ``retracted`` / ``failed``)."""
        self._claim(sid)
        try:
            return self._run(sid)
        finally:
            self._release(sid)

    def _outcome(self, sid: int, message: str = "") -> SubmissionOutcome:
        sub, rows = self._load(sid)
        return SubmissionOutcome(sid, sub.key, sub.state, sub.report_id, len(rows), message or (sub.last_error or ""))

    def _run(self, sid: int) -> SubmissionOutcome:
        sub, rows = self._load(sid)
        if sub.state in ("finished", "retracted", "failed"):
            return self._outcome(sid)
        items, problems = self._reviewed(rows)
        if sub.state in ("pending", "submitting"):
            if problems:
                return self._fail(sid, "decision changed before submission: " + "; ".join(problems))
            try:
                for row in rows:  # every file must be available before a report is opened
                    data = self._media(row, items.get(row.item_id), f"check before NCMEC submission {sub.key}")
                    if self.evidence is not None:
                        with self.db.session() as s:
                            self.evidence.preserve(s, data, self.actor, f"reported to NCMEC (tripwire reference {sub.key})",
                                                   item_id=row.item_id, media_type=items[row.item_id].media_type
                                                   if row.item_id in items else None)
            except MediaUnavailable as exc:
                return self._fail(sid, str(exc))
            if sub.state == "submitting":
                self._step(sid, "ncmec.submit.unknown", {"note": "an earlier /submit may have opened a report whose "
                                                        "response was lost; it is never finished"})
            self._step(sid, "ncmec.submit.start", {"attempt": sub.attempts + 1}, state="submitting",
                       attempts=sub.attempts + 1)
            try:
                resp = self.client.submit(sub.report_xml.encode("utf-8"))
            except CyberTiplineError as exc:
                if exc.transient:
                    self._step(sid, "ncmec.error", {"step": "submit", "error": str(exc)}, last_error=str(exc))
                    raise
                return self._fail(sid, f"the CyberTipline rejected the report: {exc}")
            sub = self._step(sid, "ncmec.submit", {"attempts": resp.attempts}, state="opened", report_id=resp.report_id,
                             submitted_at=_now(), last_error=None)
        # opened: uploads, file details, finish
        assert sub.report_id is not None  # set with state "opened"
        report_id = int(sub.report_id)
        submitted = _aware(sub.submitted_at)
        if submitted and _now() - submitted > timedelta(hours=self.settings.stale_after_hours):
            return self._abandon(sid, f"the report was opened more than {self.settings.stale_after_hours:g} h ago and never finished")
        if problems:
            return self._abandon(sid, "decision changed while the report was open: " + "; ".join(problems))
        try:
            for row in rows:
                item = items.get(row.item_id)
                if row.state == "pending":
                    data = self._media(row, item, f"upload to NCMEC report {report_id}")
                    resp = self.client.upload(report_id, row.file_name, data)
                    md5 = hashlib.md5(data).hexdigest()
                    if resp.hash and resp.hash != md5:
                        raise CyberTiplineError(f"upload: the server's MD5 {resp.hash} differs from the file's {md5}", step="upload")
                    self._item_step(sid, row, "ncmec.upload", {"item": row.item_id, "file_id": resp.file_id,
                                                               "attempts": resp.attempts},
                                    state="uploaded", file_id=resp.file_id, uploaded_md5=resp.hash)
                    row.state, row.file_id = "uploaded", resp.file_id
                if row.state == "uploaded":
                    if item is None:
                        raise MediaUnavailable(f"item {row.item_id} no longer exists")
                    details = build_file_details(item, self.settings, report_id, str(row.file_id))
                    resp = self.client.fileinfo(details)
                    self._item_step(sid, row, "ncmec.fileinfo", {"item": row.item_id, "file_id": row.file_id},
                                    state="detailed", details_xml=details.decode("utf-8"))
                    row.state = "detailed"
            try:
                done = self.client.finish(report_id)
                files = done.file_ids
            except CyberTiplineError as exc:
                if exc.code != ALREADY_FINISHED:
                    raise
                files = []  # the first /finish reached NCMEC; its response was lost
            finished_at = _now()
            self._step(sid, "ncmec.finish", {"files": files, "items": [r.item_id for r in rows]},
                       state="finished", finished_at=finished_at, last_error=None)
        except CyberTiplineError as exc:
            if exc.transient:
                self._step(sid, "ncmec.error", {"step": exc.step, "error": str(exc)}, last_error=str(exc))
                raise
            return self._abandon(sid, f"the CyberTipline rejected {exc.step or 'a step'}: {exc}")
        except MediaUnavailable as exc:
            return self._abandon(sid, str(exc))
        if self.evidence is not None:
            with self.db.session() as s:
                for sha in sorted({r.sha256 for r in rows}):
                    if self.evidence.has(sha):
                        self.evidence.mark_reported(s, sha, self.actor, finished_at, reference=f"NCMEC report {report_id}")
        return self._outcome(sid)

    def _item_step(self, sid: int, row: NcmecSubmissionItem, kind: str, data: dict[str, Any], **values: Any) -> None:
        with self.db.session() as s:
            r = s.get(NcmecSubmissionItem, row.id)
            for key, value in values.items():
                setattr(r, key, value)
            sub = _submission(s, sid)
            sub.updated_at = _now()
            sub.lease_until = _now() + self.lease
            audit.append(s, kind, self.actor, subject=f"ncmec:{sub.key}", data={"submission": sid, "report_id": sub.report_id, **data})

    def _release_items(self, sid: int) -> None:
        with self.db.session() as s:
            s.execute(update(NcmecSubmissionItem).where(NcmecSubmissionItem.submission_id == sid).values(live_item_id=None))

    def _fail(self, sid: int, reason: str) -> SubmissionOutcome:
        """No report was opened (or none we know of): give the items back for a later report."""
        self._step(sid, "ncmec.failed", {"reason": reason}, state="failed", last_error=reason)
        self._release_items(sid)
        return self._outcome(sid, reason)

    def _abandon(self, sid: int, reason: str) -> SubmissionOutcome:
        """Retract the open report so it can never be finished half-done; the items are free again."""
        sub, _ = self._load(sid)
        if sub.report_id is None:
            return self._fail(sid, reason)
        try:
            self.client.retract(int(sub.report_id))
        except CyberTiplineError as exc:
            if exc.code == ALREADY_FINISHED:
                self._step(sid, "ncmec.finish", {"note": "retract found the report already finished"},
                           state="finished", finished_at=_now())
                return self._outcome(sid, "the report had already been finished")
            if exc.code != ALREADY_RETRACTED:
                self._step(sid, "ncmec.error", {"step": "retract", "error": str(exc), "reason": reason},
                           last_error=f"retract failed ({exc}); reason: {reason}")
                raise
        self._step(sid, "ncmec.retract", {"reason": reason}, state="retracted", retracted_at=_now(), last_error=reason)
        self._release_items(sid)
        return self._outcome(sid, reason)

    def retract(self, sid: int, reason: str) -> SubmissionOutcome:
        """Withdraw an unfinished submission on purpose (a person decided not to send it)."""
        self._claim(sid)
        try:
            sub, _ = self._load(sid)
            if sub.state == "finished":
                raise UsageError(f"submission {sid} was finished as NCMEC report {sub.report_id}: it cannot be retracted")
            if sub.state in ("retracted", "failed"):
                return self._outcome(sid)
            return self._abandon(sid, reason)
        finally:
            self._release(sid)

    def recover(self) -> list[SubmissionOutcome]:
        """Resume every unfinished submission (stale ones are retracted); returns what happened to each."""
        with self.db.session() as s:
            ids = list(s.scalars(select(NcmecSubmission.id).where(
                NcmecSubmission.state.in_(("pending", "submitting", "opened"))).order_by(NcmecSubmission.id)))
        out = []
        for sid in ids:
            try:
                out.append(self.run(sid))
            except (SubmissionBusy, CyberTiplineError) as exc:
                sub, rows = self._load(sid)
                out.append(SubmissionOutcome(sid, sub.key, sub.state, sub.report_id, len(rows), str(exc)))
        return out


def list_submissions(db: Database, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Submissions with their items, newest first (for ``tripwire report ncmec-list``)."""
    with db.session() as s:
        q = select(NcmecSubmission).order_by(NcmecSubmission.id.desc())
        if states:
            q = q.where(NcmecSubmission.state.in_(list(states)))
        out = []
        for sub in s.scalars(q):
            rows = list(s.scalars(select(NcmecSubmissionItem).where(NcmecSubmissionItem.submission_id == sub.id)))
            out.append({
                "id": sub.id, "key": sub.key, "state": sub.state, "report_id": sub.report_id, "subject": sub.subject,
                "base_url": sub.base_url, "created_by": sub.created_by, "attempts": sub.attempts,
                "created_at": _aware(sub.created_at).isoformat() if sub.created_at else None,
                "finished_at": _aware(sub.finished_at).isoformat() if sub.finished_at else None,
                "retracted_at": _aware(sub.retracted_at).isoformat() if sub.retracted_at else None,
                "last_error": sub.last_error,
                "items": [{"item_id": r.item_id, "decision_id": r.decision_id, "state": r.state, "file_id": r.file_id}
                          for r in rows],
            })
        return out


__all__ = [
    "ALREADY_FINISHED", "ALREADY_RETRACTED", "CyberTiplineClient", "CyberTiplineError", "MediaUnavailable",
    "PrepareResult", "ReportPlan", "SubmissionBusy", "SubmissionOutcome", "Submitter", "TipResponse",
    "list_submissions", "parse_response",
]
