"""What replicas on one PostgreSQL share, piece by piece (the two-server test is test_service_replicas.py):
rate-limit buckets reconciled through the database, exact login throttling, bank changes announced by NOTIFY,
one audit chain from concurrent processes, and /readyz's index lag (SQLite too)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import pytest
from service_helpers import make_config, make_settings
from sqlalchemy import select

from tripwire.banks.store import BankStore
from tripwire.policy.policy import Policy
from tripwire.review import audit
from tripwire.review.models import AuditEvent
from tripwire.service.ratelimit import LOGIN_RATE_PER_S, SharedRateLimiter
from tripwire.service.replicas import BankChangeListener, replica_id
from tripwire.service.state import Service
from tripwire.store.db import open_db

def test_a_key_spent_on_one_replica_is_short_on_the_other(pg_url):
    db = open_db(pg_url)
    # a slow refill (0.1/s), so that the test's own duration hardly moves the levels
    a = SharedRateLimiter(db, rate=0.1, burst=4.0)
    b = SharedRateLimiter(db, rate=0.1, burst=4.0)
    try:
        assert [a.take("k1") for _ in range(4)] == [0.0] * 4 and a.take("k1") > 0
        a.sync()
        # B has not heard of the key yet: it admits from a full local bucket (the over-admission the bound
        # allows: one burst per replica), then hears that the shared bucket is in debt
        assert [b.take("k1") for _ in range(4)] == [0.0] * 4
        b.sync()
        assert b.take("k1") > 30  # about 4 tokens of debt at 0.1/s: a wait of about 40 s
        # A is refusing already (its own spending); its next round tells it about B's as well
        assert a.take("k1") > 0
        a.sync()
        assert a.take("k1") > 30
        # a key nobody spent is untouched; process-local limiters would have admitted 4 more on each replica
        assert b.take("other") == 0.0
        with db.engine.connect() as conn:
            tokens = conn.exec_driver_sql("SELECT tokens FROM rate_buckets WHERE name = 'k1'").scalar_one()
        assert -4.0 < tokens < -3.0  # the debt, repaid by the refill before anything more is admitted
    finally:
        db.dispose()


def test_login_attempts_are_counted_exactly_across_replicas(pg_url):
    db = open_db(pg_url)
    replicas = [SharedRateLimiter(db), SharedRateLimiter(db)]
    try:
        burst = int(2 * LOGIN_RATE_PER_S)
        waits = [replicas[n % 2].throttle_login("203.0.113.9") for n in range(burst + 1)]
        assert waits[:burst] == [0.0] * burst and waits[burst] > 0  # the 5th attempt, on either replica, waits
        assert replicas[0].throttle_login("198.51.100.7") == 0.0  # per address
    finally:
        db.dispose()


def test_a_bank_write_wakes_every_listener(pg_url, tmp_path):
    writer = open_db(pg_url)
    reader = open_db(pg_url)
    woke = threading.Event()
    listener = BankChangeListener(reader, woke.set)
    listener.start()
    try:
        deadline = time.monotonic() + 10
        while not listener.listening and time.monotonic() < deadline:
            time.sleep(0.02)
        assert listener.listening
        woke.clear()  # the wake-up every (re)connection gives
        store = BankStore(writer)
        store.create_bank("announced", category_scheme="none")
        started = time.monotonic()
        store.add_entries("announced", [{"signal_type": "md5", "value": "0" * 32}])
        assert woke.wait(1.0), "no notification within 1 s of the commit"
        assert time.monotonic() - started < 1.0 and listener.notifications >= 1
    finally:
        listener.close()
        writer.dispose()
        reader.dispose()


def _append(url: str, actor: str, count: int, go: Any) -> None:
    """One writer process: its own connections, then ``count`` events, each in its own transaction."""
    db = open_db(url)
    go.wait()  # every writer starts at the same moment
    for n in range(count):
        with db.session() as s:
            audit.append(s, "test.concurrent", actor, subject=f"n:{n}", data={"n": n})
    db.dispose()


def test_two_processes_appending_at_once_give_one_chain(pg_url):
    """From an empty trail, so the very first event is contested too (no head row to lock yet)."""
    per_process = 40
    open_db(pg_url).dispose()  # migrated once, before the writers race
    ctx = multiprocessing.get_context("fork")  # tripwire is imported already: no start-up per writer
    go = ctx.Event()
    procs = [ctx.Process(target=_append, args=(pg_url, f"writer-{n}", per_process, go)) for n in range(2)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    db = open_db(pg_url)
    try:
        with db.session() as s:
            v = audit.verify(s)
            assert v.ok and v.events == 2 * per_process, v
            actors = list(s.scalars(select(AuditEvent.actor).order_by(AuditEvent.seq)))
        # the two writers really interleaved (else this test would not show anything about concurrency)
        switches = sum(1 for x, y in zip(actors, actors[1:]) if x != y)
        assert switches >= 2, "the writers did not overlap"
    finally:
        db.dispose()


def test_readyz_reports_how_far_the_index_lags(db_url, tmp_path):
    db = open_db(db_url)
    config = make_config(tmp_path)
    settings = make_settings(config, index_lag_bound_s=0.05, replica_id="replica-under-test")
    svc = Service(db, config, settings, Policy.load(None), [])  # not started: no background refresh to race
    try:
        svc.refresh_now()
        ok, checks = svc.readiness()
        assert ok and checks["index"]["lag_s"] == 0 and checks["index"]["behind"] == {"entry_ids": 0, "change_ids": 0}
        assert checks["replica"]["id"] == "replica-under-test" == replica_id(settings)
        store = BankStore(db)  # another writer: this service has not refreshed since
        store.create_bank("elsewhere", category_scheme="none")
        store.add_entries("elsewhere", [{"signal_type": "pdq", "value": "f" * 64}, {"signal_type": "md5", "value": "1" * 32}])
        store.remove_entries("elsewhere", values=["1" * 32])
        time.sleep(0.1)
        ok, checks = svc.readiness()
        assert not ok and not checks["index"]["ok"]
        assert checks["index"]["behind"]["entry_ids"] >= 2 and checks["index"]["behind"]["change_ids"] == 1
        assert checks["index"]["lag_s"] >= 0.1
        svc.refresh_now()
        ok, checks = svc.readiness()
        assert ok and checks["index"]["lag_s"] == 0 and checks["index"]["hashes"] == 1
    finally:
        svc.stop()
        db.dispose()


def test_without_notifications_the_poll_still_catches_a_change(pg_url, tmp_path):
    """The fallback: a replica that hears no NOTIFY (``bank_notify = false``, as behind a transaction pooler, or
    a notification lost with its connection) still matches another writer's entry after its next poll."""
    from fastapi.testclient import TestClient
    from service_helpers import make_keys

    from tripwire.service.app import create_app
    from tripwire.service.state import REFRESH_EVERY_S

    db = open_db(pg_url)
    keys = make_keys(db)
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config, bank_notify=False), database=db)
    try:
        with TestClient(app, base_url="https://testserver") as client:
            assert client.get("/readyz", headers=keys.h("auditor")).json()["replica"]["listening"] is None
            BankStore(open_db(pg_url)).create_bank("polled", category_scheme="none")
            value = "ab" * 16
            BankStore(db).add_entries("polled", [{"signal_type": "md5", "value": value}])
            added = time.monotonic()
            while not client.post("/v1/lookup", headers=keys.h("submitter"),
                                  json={"hashes": [{"signal_type": "md5", "value": value}]}).json()["matched"]:
                assert time.monotonic() - added < 2 * REFRESH_EVERY_S + 1.0, "the poll never caught the change"
                time.sleep(0.02)
    finally:
        db.dispose()


def test_bank_writers_commit_in_id_order(pg_url):
    """While one transaction that drew an entry id is open, a second bank writer waits (migration 0011's lock):
    it cannot commit a higher id first, which a replica catching up by id would take as "everything below is
    applied" and so skip the first writer's entry for good."""
    from sqlalchemy import insert, text
    from sqlalchemy.exc import OperationalError

    from tripwire.banks.models import BankEntry
    from tripwire.store.models import utcnow

    db = open_db(pg_url)
    try:
        bank_id = BankStore(db).create_bank("ordered", category_scheme="none").id
        row = {"bank_id": bank_id, "signal_type": "md5", "added_at": utcnow()}
        with db.engine.connect() as first, db.engine.connect() as second:
            with first.begin():
                first_id = first.execute(insert(BankEntry).values(value="1" * 32, **row).returning(BankEntry.id)).scalar_one()
                with second.begin():
                    second.execute(text("SET LOCAL lock_timeout = '300ms'"))
                    with pytest.raises(OperationalError, match="lock timeout"):
                        second.execute(insert(BankEntry).values(value="2" * 32, **row))
            with second.begin():  # the first committed: now the second goes ahead, with a higher id
                second_id = second.execute(insert(BankEntry).values(value="2" * 32, **row).returning(BankEntry.id)).scalar_one()
        assert second_id > first_id
    finally:
        db.dispose()
