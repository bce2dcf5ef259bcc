"""CyberTipline submission against a local fake server: timeouts, 500s, crashes, rejections, stale reports.

The invariant under every failure: for each decision there is exactly one *finished* report on the server,
or none and a retracted one; a report is never finished twice and never finished half-done.
"""

from __future__ import annotations

import os
import tomllib
from datetime import datetime, timedelta, timezone

import pytest
from fake_cybertip import PASSWORD, USER, FakeCyberTipline
from helpers import tripwire
from reporting_helpers import REPORTER_TOML, add_context, context_for, decide, media_folder, store_files
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tripwire.config import Config
from tripwire.evidence.store import EvidenceStore
from tripwire.report.cybertip import CyberTiplineClient, CyberTiplineError, SubmissionBusy, Submitter, list_submissions
from tripwire.report.models import NcmecSubmission, NcmecSubmissionItem
from tripwire.report.ncmec import NcmecSettings
from tripwire.report.reviewed import NotDecided, reviewed_items
from tripwire.review import audit
from tripwire.review.models import AuditEvent
from tripwire.store.db import open_db


class Crash(BaseException):
    """The process dies (not an Exception: nothing in tripwire may catch it)."""


class CrashAfter:
    """Delegates to a real client; the n-th call of ``step`` completes on the server, then the process dies."""

    def __init__(self, client, step: str, n: int = 1) -> None:
        self._client, self._step, self._n = client, step, n

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name != self._step:
            return attr

        def wrapped(*args, **kwargs):
            result = attr(*args, **kwargs)
            self._n -= 1
            if self._n == 0:
                raise Crash(name)
            return result

        return wrapped


@pytest.fixture
def fake():
    with FakeCyberTipline(stall=0.6) as server:
        yield server


@pytest.fixture
def world(db_url, tmp_path, fake):
    db = open_db(db_url)
    files = media_folder(tmp_path / "media")
    ids = store_files(db, "c1", list(files.values()))
    by = {k: ids[str(p)] for k, p in files.items()}
    for n, key in enumerate(("ai", "camera", "synth")):
        add_context(db, by[key], **context_for(n, account="acct-1" if key != "synth" else "acct-2"))
    decisions = {key: decide(db, by[key], "confirmed_abuse") for key in ("ai", "camera", "synth")}
    settings = NcmecSettings.from_config(Config(sections=tomllib.loads(REPORTER_TOML)), environ={})
    settings.base_url, settings.username, settings.password = fake.url, USER, PASSWORD
    evidence = EvidenceStore(tmp_path / "evidence", bytes(range(32)))
    yield db, by, decisions, settings, evidence
    db.dispose()


def client_for(settings, retries: int = 4) -> CyberTiplineClient:
    return CyberTiplineClient(settings.base_url, USER, PASSWORD, timeout=0.3, retries=retries, backoff=0.0,
                              sleep=lambda _s: None)


def items_of(db, ids=None):
    with db.session() as s:
        return reviewed_items(s, case="c1") if ids is None else reviewed_items(s, item_ids=ids)


def keys_by_decision(db) -> dict[int, list[str]]:
    """decision id -> tripwire references of the submissions that carried it."""
    with db.session() as s:
        rows = s.execute(select(NcmecSubmissionItem.decision_id, NcmecSubmission.key)
                         .join(NcmecSubmission, NcmecSubmission.id == NcmecSubmissionItem.submission_id)).all()
    out: dict[int, list[str]] = {}
    for decision_id, key in rows:
        out.setdefault(decision_id, []).append(key)
    return out


def assert_one_complete_report_per_decision(db, fake, decisions):
    refs = keys_by_decision(db)
    for decision_id in decisions:
        finished = [r for key in refs.get(decision_id, []) for r in fake.finished(key)]
        assert len(finished) == 1, (decision_id, refs.get(decision_id), {k: v.state for k, v in fake.reports.items()})


def expire_leases(db):
    """What happens when a crashed process's lease runs out."""
    with db.session() as s:
        s.execute(update(NcmecSubmission).values(lease_until=datetime.now(timezone.utc) - timedelta(hours=1)))


def events(db, prefix="ncmec."):
    with db.session() as s:
        return [(e.kind, e.data) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq)) if e.kind.startswith(prefix)]


def test_one_complete_report_per_decision_through_timeouts_and_500s(world, fake):
    db, by, decisions, settings, evidence = world
    fake.inject("submit", "500", "timeout_before")
    fake.inject("upload", "timeout_before", "500")
    fake.inject("fileinfo", "500")
    fake.inject("finish", "timeout_after")  # NCMEC finished it but the answer was lost: the retry sees 5102
    submitter = Submitter(db, client_for(settings), settings, actor="analyst-1", evidence=evidence)
    outcomes = submitter.submit(items_of(db))
    assert [o.state for o in outcomes] == ["finished", "finished"]  # acct-1 (2 files) and acct-2 (1 file)
    assert sorted(o.files for o in outcomes) == [1, 2]
    assert_one_complete_report_per_decision(db, fake, decisions.values())
    assert len(fake.reports) == 2  # the submit failures never opened anything
    for report in fake.finished():
        assert all(f["details"] is not None for f in report.files.values())
    # every step is in the audit trail, and the trail verifies
    kinds = [k for k, _ in events(db)]
    assert kinds.count("ncmec.prepare") == 2 and kinds.count("ncmec.submit") == 2 and kinds.count("ncmec.finish") == 2
    assert kinds.count("ncmec.upload") == 3 and kinds.count("ncmec.fileinfo") == 3
    with db.session() as s:
        assert audit.verify(s).ok
    # the reported media is preserved for a year from the report
    with db.session() as s:
        infos = evidence.list(s)
    assert len(infos) == 3 and all(i.reported_at is not None for i in infos)
    assert all(abs((i.retain_until - i.reported_at) - timedelta(days=365)) < timedelta(seconds=1) for i in infos)
    # running it again reports nothing new
    again = Submitter(db, client_for(settings), settings, actor="analyst-1").submit(items_of(db))
    assert [o.state for o in again] == ["finished", "finished"] and len(fake.reports) == 2


def test_lost_submit_response_never_yields_a_second_complete_report(world, fake):
    db, by, decisions, settings, _ = world
    fake.inject("submit", "timeout_after")  # NCMEC opened a report; tripwire never hears its id
    outcome = Submitter(db, client_for(settings), settings, actor="a").submit(items_of(db, [by["synth"]]))[0]
    assert outcome.state == "finished"
    opened = fake.by_reference(outcome.key)
    assert sorted(r.state for r in opened) == ["finished", "open"]  # the orphan is never finished
    assert_one_complete_report_per_decision(db, fake, [decisions["synth"]])


@pytest.mark.parametrize("step,n", [("submit", 1), ("upload", 1), ("fileinfo", 2), ("finish", 1)])
def test_crash_between_submit_and_finish_resumes(world, fake, step, n):
    db, by, decisions, settings, _ = world
    crashing = Submitter(db, CrashAfter(client_for(settings), step, n), settings, actor="a")
    with pytest.raises(Crash):
        crashing.submit(items_of(db, [by["ai"], by["camera"]]))
    with db.session() as s:
        state = s.scalar(select(NcmecSubmission.state))
    assert state in ("submitting", "opened")
    expire_leases(db)
    resumed = Submitter(db, client_for(settings), settings, actor="a").recover()
    assert [o.state for o in resumed] == ["finished"]
    assert_one_complete_report_per_decision(db, fake, [decisions["ai"], decisions["camera"]])
    report = fake.finished()[0]
    detailed = [f for f in report.files.values() if f["details"] is not None]
    assert len(detailed) == 2  # each file described once
    if step == "submit":  # the first report was opened but its id never stored: it stays open, never finished
        assert any(k == "ncmec.submit.unknown" for k, _ in events(db))
        assert sorted(r.state for r in fake.reports.values()) == ["finished", "open"]
    else:
        assert len(fake.reports) == 1


def test_rejected_file_details_retract_the_report_and_free_the_items(world, fake):
    db, by, decisions, settings, _ = world
    fake.inject("fileinfo", "reject")
    submitter = Submitter(db, client_for(settings), settings, actor="a")
    outcome = submitter.submit(items_of(db, [by["synth"]]))[0]
    assert outcome.state == "retracted" and "rejected" in outcome.message
    assert [r.state for r in fake.by_reference(outcome.key)] == ["retracted"]
    assert any(k == "ncmec.retract" for k, _ in events(db))
    # the decision may now be reported again: exactly one complete report results
    second = submitter.submit(items_of(db, [by["synth"]]))[0]
    assert second.state == "finished" and second.key != outcome.key
    assert_one_complete_report_per_decision(db, fake, [decisions["synth"]])


def test_an_outage_leaves_the_report_open_and_resume_completes_it(world, fake):
    db, by, decisions, settings, _ = world
    fake.inject("upload", *["500"] * 3)
    with pytest.raises(CyberTiplineError) as exc:
        Submitter(db, client_for(settings, retries=2), settings, actor="a").submit(items_of(db, [by["synth"]]))
    assert exc.value.transient
    (sub,) = list_submissions(db)
    assert sub["state"] == "opened" and sub["report_id"] and "gave up" in sub["last_error"]
    outcomes = Submitter(db, client_for(settings), settings, actor="a").recover()
    assert [o.state for o in outcomes] == ["finished"]
    assert_one_complete_report_per_decision(db, fake, [decisions["synth"]])


def test_stale_or_reversed_reports_are_retracted(world, fake):
    db, by, decisions, settings, _ = world
    with pytest.raises(Crash):
        Submitter(db, CrashAfter(client_for(settings), "upload"), settings, actor="a").submit(items_of(db, [by["synth"]]))
    with pytest.raises(Crash):
        Submitter(db, CrashAfter(client_for(settings), "upload"), settings, actor="a").submit(items_of(db, [by["camera"]]))
    expire_leases(db)
    with db.session() as s:  # the synth report has been open for two days
        synth_sub = s.scalar(select(NcmecSubmissionItem.submission_id).where(NcmecSubmissionItem.item_id == by["synth"]))
        s.execute(update(NcmecSubmission).where(NcmecSubmission.id == synth_sub)
                  .values(submitted_at=datetime.now(timezone.utc) - timedelta(days=2)))
    decide(db, by["camera"], "not_abuse", reviewer="reviewer-2")  # a second reviewer reverses the decision
    outcomes = {o.submission_id: o for o in Submitter(db, client_for(settings), settings, actor="a").recover()}
    assert outcomes[synth_sub].state == "retracted" and "more than" in outcomes[synth_sub].message
    camera = next(o for sid, o in outcomes.items() if sid != synth_sub)
    assert camera.state == "retracted" and "decision changed" in camera.message
    assert fake.finished() == [] and {r.state for r in fake.reports.values()} == {"retracted"}
    with pytest.raises(NotDecided):
        items_of(db, [by["camera"]])


def test_one_live_submission_per_item_even_across_processes(world, fake):
    db, by, decisions, settings, _ = world
    a = Submitter(db, client_for(settings), settings, actor="a")
    b = Submitter(db, client_for(settings), settings, actor="b")
    first = a.prepare(items_of(db, [by["synth"]]))
    second = b.prepare(items_of(db, [by["synth"]]))
    assert first.new and second.new == [] and second.existing == first.new
    with pytest.raises(IntegrityError):  # the database itself refuses a second live row for the item
        with db.session() as s:
            s.add(NcmecSubmissionItem(submission_id=first.new[0], item_id=by["synth"], decision_id=decisions["synth"],
                                      live_item_id=by["synth"], sha256="0" * 64, file_name="x", state="pending"))
    a._claim(first.new[0])
    with pytest.raises(SubmissionBusy):
        b.run(first.new[0])
    a._release(first.new[0])
    assert b.run(first.new[0]).state == "finished"
    assert_one_complete_report_per_decision(db, fake, [decisions["synth"]])


def test_no_decision_no_report(world, fake):
    db, by, _, settings, _ = world
    decide(db, by["synth"], "needs_escalation")
    with pytest.raises(NotDecided):
        items_of(db, [by["synth"]])
    assert fake.reports == {}


def test_cli_submit_resume_and_list(world, fake, tmp_path):
    db, by, decisions, settings, _ = world
    if db.dialect != "sqlite":
        pytest.skip("the command line runs on SQLite here; the library tests above cover PostgreSQL")
    cfg = tmp_path / "tw.toml"
    cfg.write_text(REPORTER_TOML.replace('environment = "test"', f'base_url = "{fake.url}"\nretries = 1\nbackoff_s = 0.0')
                   + f'\n[evidence]\nroot = "{tmp_path / "ev"}"\n', encoding="utf-8")
    env = {**os.environ, "TRIPWIRE_CONFIG": str(cfg), "TRIPWIRE_NCMEC_USERNAME": USER, "TRIPWIRE_NCMEC_PASSWORD": PASSWORD,
           "TRIPWIRE_EVIDENCE_KEY": bytes(range(32)).hex(), "TRIPWIRE_ACTOR": "analyst-3"}
    fake.inject("upload", "500", "500")  # more than the configured single retry: the run stops, resumable
    proc = tripwire("report", "ncmec", f"item:{by['synth']}", "--submit", "--db", db.url, env=env)
    assert proc.returncode == 1 and "ncmec-resume" in proc.stderr, proc.stderr
    proc = tripwire("report", "ncmec-resume", "--db", db.url, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "finished, NCMEC report" in proc.stdout
    proc = tripwire("report", "ncmec-retract", "999999", "--reason", "entered by mistake", "--db", db.url, env=env)
    assert proc.returncode == 2 and "999999" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = tripwire("report", "ncmec", "c1", "--submit", "--db", db.url, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    listed = tripwire("report", "ncmec-list", "--db", db.url, "--json", env=env)
    assert sorted(r["state"] for r in __import__("json").loads(listed.stdout)) == ["finished", "finished"]
    assert_one_complete_report_per_decision(db, fake, decisions.values())
    ev = tripwire("evidence", "list", "--json", "--db", db.url, env=env)
    assert ev.stdout.count('"reported_at": "20') == 3
    assert tripwire("audit", "verify", "--db", db.url, env=env).returncode == 0
