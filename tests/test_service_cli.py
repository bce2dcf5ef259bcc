"""The command line: ``keys create|list|revoke``, ``audit verify`` catching a tampered database, and
``tripwire serve`` as a real server on a loopback port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from helpers import tripwire
from service_helpers import free_port
from sqlalchemy import delete, update

from tripwire.review import audit
from tripwire.review.models import AuditEvent
from tripwire.store.db import open_db


def test_keys_create_list_revoke(db_url):
    created = tripwire("keys", "create", "--role", "reviewer", "--name", "rev one", "--db", db_url)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("twk_") and len(key.split("_", 2)[2]) >= 40
    assert "cannot be shown again" in created.stderr
    as_json = json.loads(tripwire("keys", "create", "--role", "auditor", "--name", "aud", "--rate", "5", "--json", "--db", db_url).stdout)
    assert as_json["role"] == "auditor"
    listed = tripwire("keys", "list", "--json", "--db", db_url)
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == ["rev one", "aud"] and rows[1]["rate_per_s"] == 5.0
    assert key not in listed.stdout and key.split("_", 2)[2] not in listed.stdout
    assert tripwire("keys", "create", "--role", "root", "--name", "x", "--db", db_url).returncode == 2
    revoked = tripwire("keys", "revoke", key, "--db", db_url)
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(tripwire("keys", "list", "--json", "--db", db_url).stdout)[0]["revoked_at"]
    assert tripwire("keys", "revoke", key, "--db", db_url).returncode == 2  # already revoked
    db = open_db(db_url)
    with db.session() as s:
        result = audit.verify(s)
        kinds = [e.kind for e in s.query(AuditEvent).order_by(AuditEvent.seq)]
    db.dispose()
    assert result.ok and kinds == ["key.create", "key.create", "key.revoke"]


@pytest.mark.parametrize("tamper", ["edit", "reorder"])
def test_audit_verify_catches_tampering(db_url, tamper):
    db = open_db(db_url)
    with db.session() as s:
        for i in range(6):
            audit.append(s, "decision", f"reviewer-{i % 2}#abc", subject=f"item:{i}", data={"decision": "not_abuse", "n": i})
    ok = tripwire("audit", "verify", "--db", db_url)
    assert ok.returncode == 0 and "6 events" in ok.stderr
    with db.session() as s:
        if tamper == "edit":
            s.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(data={"decision": "confirmed_abuse", "n": 3}))
        elif tamper == "delete":
            s.execute(delete(AuditEvent).where(AuditEvent.seq == 4))
        else:
            s.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(seq=-4))
            s.execute(update(AuditEvent).where(AuditEvent.seq == 5).values(seq=4))
            s.execute(update(AuditEvent).where(AuditEvent.seq == -4).values(seq=5))
    db.dispose()
    bad = tripwire("audit", "verify", "--db", db_url)
    assert bad.returncode == 3, bad.stderr
    assert "BROKEN" in bad.stderr and "event 4" in bad.stderr
    report = json.loads(tripwire("audit", "verify", "--json", "--db", db_url).stdout)
    assert report["ok"] is False and report["first_bad_seq"] == 4 and report["events"] == 3
    log = tripwire("audit", "log", "--kind", "decision", "--limit", "2", "--db", db_url)
    assert [json.loads(line)["seq"] for line in log.stdout.splitlines()] == [1, 2]


def test_serve_runs_a_real_server(tmp_path):
    db = tmp_path / "svc.db"
    key = tripwire("keys", "create", "--role", "admin", "--name", "ops", "--db", str(db)).stdout.strip()
    port = free_port()
    policy = tmp_path / "policy.toml"
    policy.write_text('[default]\naction = "review"\n')
    env = {**os.environ, "TRIPWIRE_BANKS_INDEX_PATH": str(tmp_path / "idx")}
    proc = subprocess.Popen([sys.executable, "-m", "tripwire", "serve", "--db", str(db), "--port", str(port),
                             "--policy", str(policy), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).text == "ok":
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail(f"server did not start: {proc.stderr.read() if proc.poll() is not None else ''}")
        assert httpx.get(f"{base}/v1/banks", timeout=5).status_code == 401
        h = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{base}/readyz", headers=h, timeout=5).json()["ready"] is True
        assert httpx.get(f"{base}/v1/policy", headers=h, timeout=5).json()["rules"][-1]["action"] == "review"
        assert "server" not in {k.lower() for k in httpx.get(f"{base}/healthz", timeout=5).headers}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    # a clean shutdown: uvicorn re-raises the SIGTERM it handled, so the status is 0 or -SIGTERM, no traceback
    stderr = proc.stderr.read()
    assert proc.returncode in (0, -signal.SIGTERM) and "Traceback" not in stderr, stderr


def test_serve_refuses_a_bad_policy(tmp_path):
    policy = tmp_path / "bad.toml"
    policy.write_text('[[rule]]\nname = "x"\naction = "delete"\n')
    r = tripwire("serve", "--db", str(tmp_path / "x.db"), "--policy", str(policy), "--port", str(free_port()))
    assert r.returncode == 2 and "action must be one of" in r.stderr
