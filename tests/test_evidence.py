"""The evidence store: encrypted at rest, unreadable without the key, retention and legal hold, audited reads."""

from __future__ import annotations

import base64
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from evidence_helpers import KEY, OTHER_KEY, env, events  # noqa: F401  (env is a fixture)
from helpers import image_bytes, synth_image, tripwire

from tripwire.config import Config
from tripwire.evidence.store import EvidenceError, EvidenceStore, generate_key, key_fingerprint, parse_key
from tripwire.evidence.models import EvidenceObject
from tripwire.review import audit



def test_encrypted_at_rest_and_unreadable_without_the_key(env, tmp_path):
    db, store = env
    data = image_bytes(synth_image(3), "PNG")
    with db.session() as s:
        sha = store.preserve(s, data, "analyst-1", "reported to NCMEC")
    blob = store.path_of(sha).read_bytes()
    assert data not in blob and data[:64] not in blob and len(blob) == len(data) + 4 + 1 + 8 + 12 + 16
    assert (store.path_of(sha).stat().st_mode & 0o777) == 0o600
    with db.session() as s:
        assert store.read(s, sha, "analyst-1", reason="check") == data
        with pytest.raises(EvidenceError, match="encrypted with key"):
            EvidenceStore(store.root, OTHER_KEY).read(s, sha, "analyst-2")
        with pytest.raises(EvidenceError, match="no evidence key"):
            EvidenceStore(store.root, None).read(s, sha, "analyst-2")
    # a file moved onto another object's address, or altered, fails authentication
    with db.session() as s:
        other = store.preserve(s, b"second benign object", "analyst-1", "test")
    store.path_of(other).write_bytes(blob)
    with db.session() as s, pytest.raises(EvidenceError, match="authentication failed"):
        store.read(s, other, "analyst-1")
    tampered = bytearray(blob)
    tampered[-20] ^= 1
    store.path_of(sha).write_bytes(bytes(tampered))
    with db.session() as s, pytest.raises(EvidenceError, match="authentication failed"):
        store.read(s, sha, "analyst-1")
    assert not list(store.root.rglob("*.tmp"))  # writes are atomic: no temporary files left


def test_every_read_is_in_the_audit_trail(env):
    db, store = env
    with db.session() as s:
        sha = store.preserve(s, b"benign bytes", "analyst-1", "test")
    for who in ("analyst-1", "analyst-2", "analyst-1"):
        with db.session() as s:
            store.read(s, sha, who, reason=f"review by {who}")
    reads = events(db, "evidence.read")
    assert [(e.actor, e.subject, e.data["reason"]) for e in reads] == [
        ("analyst-1", f"evidence:{sha}", "review by analyst-1"),
        ("analyst-2", f"evidence:{sha}", "review by analyst-2"),
        ("analyst-1", f"evidence:{sha}", "review by analyst-1")]
    assert len(events(db, "evidence.preserve")) == 1
    with db.session() as s:
        assert audit.verify(s).ok


def test_purge_respects_retention_and_legal_hold(env):
    db, store = env
    now = datetime.now(timezone.utc)
    with db.session() as s:
        expired = store.preserve(s, b"object one", "a", "test", retain_until=now - timedelta(days=1))
        kept = store.preserve(s, b"object two", "a", "test")  # default: one year from now
        held = store.preserve(s, b"object three", "a", "test", retain_until=now - timedelta(days=1))
        store.hold(s, held, "counsel", "preservation request 2026-17")
        reported = store.preserve(s, b"object four", "a", "test", retain_until=now - timedelta(days=1))
        info = store.mark_reported(s, reported, "a", reported_at=now - timedelta(days=10), reference="NCMEC report 1")
    assert info.retain_until == now - timedelta(days=10) + timedelta(days=365)  # one year from the report
    with db.session() as s:
        purged = store.purge(s, now=now)
        assert store.has(expired)  # the file goes only once the purge commits
    assert [p.sha256 for p in purged] == [expired]
    assert not store.has(expired) and store.has(kept) and store.has(held) and store.has(reported)
    with db.session() as s:
        assert s.get(EvidenceObject, expired).purged_at is not None
        with pytest.raises(EvidenceError, match="purged"):
            store.read(s, expired, "a")
    # a year and a day later only the legal hold keeps its object
    with db.session() as s:
        later = {p.sha256 for p in store.purge(s, now=now + timedelta(days=366))}
    assert later == {kept, reported} and store.has(held)
    with db.session() as s:
        store.release(s, held, "counsel", "matter closed")
    with db.session() as s:
        assert [p.sha256 for p in store.purge(s, now=now + timedelta(days=366))] == [held]
    assert [e.subject for e in events(db, "evidence.purge")] == [f"evidence:{x}" for x in (expired, kept, reported, held)]
    with db.session() as s:
        assert audit.verify(s).ok


def test_purge_that_rolls_back_deletes_nothing_and_leftovers_are_swept(env):
    db, store = env
    now = datetime.now(timezone.utc)
    with db.session() as s:
        sha = store.preserve(s, b"object five", "a", "test", retain_until=now - timedelta(days=1))
    with pytest.raises(RuntimeError):
        with db.session() as s:
            store.purge(s, now=now)
            raise RuntimeError("interrupted")
    assert store.has(sha)
    with db.session() as s:
        assert s.get(EvidenceObject, sha).purged_at is None
    # a preserve whose transaction rolled back leaves a file with no row: swept once older than the grace period
    with pytest.raises(RuntimeError):
        with db.session() as s:
            orphan = store.preserve(s, b"object six", "a", "test")
            raise RuntimeError("rolled back")
    assert store.has(orphan)
    with db.session() as s:
        assert orphan not in {p.sha256 for p in store.purge(s, now=now)}  # too recent: maybe still in flight
    old = time.time() - 7200
    os.utime(store.path_of(orphan), (old, old))
    with db.session() as s:
        swept = store.purge(s, now=now)
    assert any(p.sha256 == orphan and p.orphan for p in swept) and not store.has(orphan)


def test_keys_come_from_env_or_file_never_from_the_config(tmp_path):
    text = generate_key()
    assert len(parse_key(text)) == 32 and parse_key(KEY.hex()) == KEY and parse_key(KEY) == KEY
    assert parse_key(base64.b64encode(KEY).decode()) == KEY
    with pytest.raises(EvidenceError):
        parse_key("too short")
    keyfile = tmp_path / "key"
    keyfile.write_text(text + "\n")
    cfg = Config(sections={"evidence": {"root": str(tmp_path / "ev"), "key_file": str(keyfile)}})
    store = EvidenceStore.from_config(cfg, environ={})
    assert store.key_id == key_fingerprint(parse_key(text))
    env_store = EvidenceStore.from_config(cfg, environ={"TRIPWIRE_EVIDENCE_KEY": KEY.hex()})
    assert env_store.key_id == key_fingerprint(KEY)
    with pytest.raises(EvidenceError, match="never put the evidence key"):
        EvidenceStore.from_config(Config(sections={"evidence": {"root": "x", "key": text}}), environ={})
    with pytest.raises(EvidenceError, match="no evidence key"):
        EvidenceStore.from_config(Config(sections={"evidence": {"root": "x"}}), environ={})
    assert EvidenceStore.from_config(Config(sections={"evidence": {"root": "x"}}), environ={}, require_key=False).key_id is None


def test_evidence_cli(tmp_path):
    db = tmp_path / "t.db"
    keyfile = tmp_path / "evidence.key"
    env = {**os.environ, "TRIPWIRE_EVIDENCE_DIR": str(tmp_path / "ev"), "TRIPWIRE_EVIDENCE_KEY_FILE": str(keyfile),
           "TRIPWIRE_ACTOR": "analyst-9"}
    env.pop("TRIPWIRE_EVIDENCE_KEY", None)
    assert tripwire("evidence", "keygen", "--out", str(keyfile), env=env).returncode == 0
    assert (keyfile.stat().st_mode & 0o777) == 0o600
    assert tripwire("evidence", "keygen", "--out", str(keyfile), env=env).returncode == 2  # never overwritten
    media = tmp_path / "pic.png"
    media.write_bytes(image_bytes(synth_image(5), "PNG"))
    proc = tripwire("evidence", "preserve", str(media), "--reason", "test", "--db", str(db), env=env)
    assert proc.returncode == 0, proc.stderr
    sha = proc.stdout.split()[0]
    out = tmp_path / "back.png"
    proc = tripwire("evidence", "get", sha, "--out", str(out), "--reason", "legal request 1", "--db", str(db), env=env)
    assert proc.returncode == 0, proc.stderr and out.read_bytes() == media.read_bytes()
    assert tripwire("evidence", "hold", sha, "--reason", "request 1", "--db", str(db), env=env).returncode == 0
    listed = tripwire("evidence", "list", "--json", "--db", str(db), env=env)
    assert '"legal_hold": true' in listed.stdout
    purge = tripwire("evidence", "purge", "--now", "2099-01-01T00:00:00Z", "--db", str(db), env=env)
    assert purge.returncode == 0 and purge.stdout.startswith("0 object(s) purged")
    assert tripwire("evidence", "release", sha, "--reason", "closed", "--db", str(db), env=env).returncode == 0
    purge = tripwire("evidence", "purge", "--now", "2099-01-01T00:00:00Z", "--db", str(db), env=env)
    assert purge.stdout.startswith("1 object(s) purged"), purge.stdout
    trail = tripwire("audit", "log", "--db", str(db), env=env)
    kinds = trail.stdout
    for kind in ("evidence.preserve", "evidence.read", "evidence.hold", "evidence.release", "evidence.purge"):
        assert kind in kinds, (kind, trail.stdout, trail.stderr)
