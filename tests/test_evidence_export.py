"""Evidence export and audited failures (issue 11, item 8): ``evidence get --out`` never follows a link or
writes over a file and creates it 0600; failed reads (wrong key, altered or missing file) are audited; a key
file others can read is warned about."""

from __future__ import annotations

import base64
import time

import pytest
from evidence_helpers import KEY, OTHER_KEY, env, events  # noqa: F401  (env is a fixture)
from helpers import image_bytes, synth_image

from tripwire.config import Config
from tripwire.evidence.store import EvidenceError, EvidenceStore, generate_key
from tripwire.review import audit
from tripwire.store.db import open_db




def _cli_env(tmp_path, monkeypatch, key_mode: int = 0o600):
    keyfile = tmp_path / "evidence.key"
    keyfile.write_text(base64.urlsafe_b64encode(KEY).decode() + "\n")
    keyfile.chmod(key_mode)
    for name, value in {"TRIPWIRE_EVIDENCE_DIR": str(tmp_path / "ev"), "TRIPWIRE_EVIDENCE_KEY_FILE": str(keyfile),
                        "TRIPWIRE_ACTOR": "analyst-9"}.items():
        monkeypatch.setenv(name, value)
    for name in ("TRIPWIRE_EVIDENCE_KEY", "TRIPWIRE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "t.db"
    database = open_db(str(db))
    data = image_bytes(synth_image(8), "PNG")
    with database.session() as s:
        sha = EvidenceStore(tmp_path / "ev", KEY).preserve(s, data, "analyst-9", "test")
    database.dispose()
    return str(db), sha, data


def _get(db: str, sha: str, out):
    from typer.testing import CliRunner

    from tripwire.cli import app

    return CliRunner().invoke(app, ["evidence", "get", sha, "--out", str(out), "--reason", "legal request 7", "--db", db])


def test_evidence_get_never_follows_links_or_overwrites(tmp_path, monkeypatch):
    db, sha, data = _cli_env(tmp_path, monkeypatch)
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file\n")
    victim.chmod(0o644)
    link = tmp_path / "link.png"
    link.symlink_to(victim)  # planted where the analyst will write
    r = _get(db, sha, link)
    assert r.exit_code == 2 and "symbolic link" in r.output
    assert victim.read_text() == "someone else's file\n" and link.is_symlink()
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "created-through-link.png")
    assert _get(db, sha, dangling).exit_code == 2
    assert not (tmp_path / "created-through-link.png").exists()
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"old")
    existing.chmod(0o644)
    r = _get(db, sha, existing)
    assert r.exit_code == 2 and "exists" in r.output
    assert existing.read_bytes() == b"old" and (existing.stat().st_mode & 0o777) == 0o644
    fresh = tmp_path / "fresh.png"
    r = _get(db, sha, fresh)
    assert r.exit_code == 0, r.output
    assert fresh.read_bytes() == data and (fresh.stat().st_mode & 0o777) == 0o600
    database = open_db(db)
    assert len(events(database, "evidence.read")) == 1  # refusals read (and disclosed) nothing
    database.dispose()


def test_failed_evidence_reads_are_audited(env, tmp_path):
    db, store = env
    data = image_bytes(synth_image(9), "PNG")
    with db.session() as s:
        sha = store.preserve(s, data, "analyst-1", "case 12")
    other = EvidenceStore(store.root, OTHER_KEY)  # someone with the wrong key
    with pytest.raises(EvidenceError, match="encrypted with key"):
        with db.session() as s:
            other.read(s, sha, "analyst-2", reason="curious")
    path = store.path_of(sha)
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1  # the file was altered on disk
    path.write_bytes(bytes(blob))
    with pytest.raises(EvidenceError, match="authentication failed"):
        with db.session() as s:
            store.read(s, sha, "analyst-1", reason="review")
    path.unlink()
    with pytest.raises(EvidenceError, match="missing"):
        with db.session() as s:
            store.read(s, sha, "analyst-1", reason="review again")
    failed = events(db, "evidence.read_failed")
    assert [(e.actor, e.subject, e.data["reason"]) for e in failed] == [
        ("analyst-2", f"evidence:{sha}", "curious"), ("analyst-1", f"evidence:{sha}", "review"),
        ("analyst-1", f"evidence:{sha}", "review again")]
    assert "encrypted with key" in failed[0].data["error"] and "authentication failed" in failed[1].data["error"]
    assert failed[0].data["key_id"] == other.key_id
    assert events(db, "evidence.read") == []  # nothing was disclosed
    with db.session() as s:
        assert audit.verify(s).ok


def test_a_failed_read_in_a_transaction_that_already_wrote(env):
    """A caller that read successfully and then handles a failed read in the same transaction holds the write
    lock: the failure is recorded in that transaction (no second one waiting on the first)."""
    db, store = env
    data = image_bytes(synth_image(10), "PNG")
    with db.session() as s:
        sha = store.preserve(s, data, "analyst-1", "case 13")
    started = time.monotonic()
    with db.session() as s:
        assert store.read(s, sha, "analyst-1", reason="first look") == data
        with pytest.raises(EvidenceError, match="encrypted with key"):
            EvidenceStore(store.root, OTHER_KEY).read(s, sha, "analyst-2", reason="second look")
    assert time.monotonic() - started < 5
    assert [e.data["reason"] for e in events(db, "evidence.read_failed")] == ["second look"]
    with db.session() as s:
        assert audit.verify(s).ok


def test_a_key_file_others_can_read_is_warned_about(tmp_path, monkeypatch):
    keyfile = tmp_path / "k"
    keyfile.write_text(generate_key())
    cfg = Config(sections={"evidence": {"root": str(tmp_path / "ev"), "key_file": str(keyfile)}})
    keyfile.chmod(0o644)
    warnings = EvidenceStore.from_config(cfg, environ={}).warnings
    assert len(warnings) == 1 and "readable by its group and all users" in warnings[0] and "chmod 600" in warnings[0]
    keyfile.chmod(0o640)
    assert "readable by its group" in EvidenceStore.from_config(cfg, environ={}).warnings[0]
    keyfile.chmod(0o600)
    assert EvidenceStore.from_config(cfg, environ={}).warnings == []
    (tmp_path / "cli").mkdir()
    db, sha, _ = _cli_env(tmp_path / "cli", monkeypatch, key_mode=0o644)
    r = _get(db, sha, tmp_path / "cli" / "out.png")
    assert r.exit_code == 0 and "warning:" in r.output and "chmod 600" in r.output
